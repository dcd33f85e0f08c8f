//! The event table: for every event type id, its name and parameter layout.
//!
//! The facts (ids, names, parameter names, types and print formats) are the
//! public scap format as described by falcosecurity/libs `event_table.c`;
//! they are written down here in a compact text form of our own, one line per
//! enter/exit pair, because ids are positional: line `k` is enter `2k` and
//! exit `2k + 1`. Parsing the text once at first use keeps the source short
//! and readable.
//!
//! Line syntax: `enter-name[/exit-name] | enter params | exit params`, a
//! parameter is `name:type[:fmt][:table]`, `fmt` is `d` (decimal, default),
//! `x` (hex), `o` (octal) or `n` (none). `-` as a name marks an unused id.

use std::sync::OnceLock;

/// How a parameter is stored and printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PType {
    I8,
    I16,
    I32,
    I64,
    U8,
    U16,
    U32,
    U64,
    Fd,
    Errno,
    Pid,
    FsPath,
    /// Path relative to the dirfd parameter at the given index.
    FsRelPath(u8),
    CharBuf,
    ByteBuf,
    Flags8,
    Flags16,
    Flags32,
    SockAddr,
    SockTuple,
    FdList,
    RelTime,
    AbsTime,
    SigType,
    Uid,
    Gid,
    SigSet,
    Dyn,
    Mode,
    SyscallId,
    CharBufArray,
    CharBufPairArray,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PFmt {
    Dec,
    Hex,
    Oct,
    Na,
}

#[derive(Clone, Debug)]
pub struct ParamInfo {
    pub name: &'static str,
    pub ty: PType,
    pub fmt: PFmt,
    /// Name of the flag table used to render the value symbolically.
    pub table: Option<&'static str>,
}

#[derive(Clone, Debug)]
pub struct EventInfo {
    pub name: &'static str,
    pub params: Vec<ParamInfo>,
    /// Parameters use 4-byte length prefixes (EF_LARGE_PAYLOAD).
    pub large: bool,
}

// Well-known ids the reader's state tracking needs.
pub const GENERIC_E: u16 = 0;
pub const GENERIC_X: u16 = 1;
pub const PROCEXIT_E: u16 = 16;
pub const PROCEXIT_1_E: u16 = 186;
pub const CONTAINER_JSON_E: u16 = 272;
pub const CONTAINER_JSON_2_E: u16 = 324;

/// Internal events (category EC_INTERNAL) that `sysdig -r` reads and
/// numbers but does not print: drop, scapevent, old container, procinfo,
/// k8s, mesos, notification, infra.
pub fn is_internal(ty: u16) -> bool {
    matches!(ty, 148 | 149 | 196 | 228 | 234 | 260 | 270 | 280 | 286)
}

/// Container metadata events (old container, container JSON 1 and 2):
/// `sysdig -r` prints the JSON ones, but they describe a container, they
/// are not something it did, and some carry time 0 — which would start a
/// recording's windows at the epoch.
pub fn is_container_metadata(ty: u16) -> bool {
    matches!(ty, 228 | 229 | 272 | 273 | 324 | 325)
}

const TABLE: &str = "\
syscall | ID:sysid,nativeID:u16 | ID:sysid
open | name:path,flags:f32:x:file,mode:u32:o | fd:fd,name:path,flags:f32:x:file,mode:u32:o,dev:u32:x
close | fd:fd | res:errno
read | fd:fd,size:u32 | res:errno,data:bbuf
write | fd:fd,size:u32 | res:errno,data:bbuf
brk | size:u32 | res:u64:x
execve | | res:errno,exe:cbuf,args:bbuf,tid:pid,pid:pid,ptid:pid,cwd:cbuf,fdlimit:u64
clone | | res:pid,exe:cbuf,args:bbuf,tid:pid,pid:pid,ptid:pid,cwd:cbuf,fdlimit:i64,flags:f32:x:clone,uid:u32,gid:u32
procexit/NA1 | |
socket | domain:f32:d:af,type:u32,proto:u32 | fd:fd
bind | fd:fd | res:errno,addr:sockaddr
connect | fd:fd,addr:sockaddr | res:errno,tuple:socktuple
listen | fd:fd,backlog:u32 | res:errno
accept | | fd:fd,tuple:socktuple,queuepct:u8
send | fd:fd,size:u32 | res:errno,data:bbuf
sendto | fd:fd,size:u32,tuple:socktuple | res:errno,data:bbuf
recv | fd:fd,size:u32 | res:errno,data:bbuf
recvfrom | fd:fd,size:u32 | res:errno,data:bbuf,tuple:socktuple
shutdown | fd:fd,how:f8:x:shutdown | res:errno
getsockname | |
getpeername | |
socketpair | domain:f32:d:af,type:u32,proto:u32 | res:errno,fd1:fd,fd2:fd,source:u64:x,peer:u64:x
setsockopt | | res:errno,fd:fd,level:f8:d:soklevel,optname:f8:d:sokopt,val:dyn,optlen:u32
getsockopt | | res:errno,fd:fd,level:f8:d:soklevel,optname:f8:d:sokopt,val:dyn,optlen:u32
sendmsg | fd:fd,size:u32,tuple:socktuple | res:errno,data:bbuf
sendmmsg | |
recvmsg | fd:fd | res:errno,size:u32,data:bbuf,tuple:socktuple
recvmmsg | |
accept | flags:i32:x | fd:fd,tuple:socktuple,queuepct:u8
creat | name:path,mode:u32:o | fd:fd,name:path,mode:u32:o,dev:u32:x
pipe | | res:errno,fd1:fd,fd2:fd,ino:u64
eventfd | initval:u64,flags:f32:x | res:fd
futex | addr:u64:x,op:f16:x:futex,val:u64 | res:errno
stat | | res:errno,path:path
lstat | | res:errno,path:path
fstat | fd:fd:n | res:errno
stat64 | | res:errno,path:path
lstat64 | | res:errno,path:path
fstat64 | fd:fd:n | res:errno
epoll_wait | maxevents:errno | res:errno
poll | fds:fdlist,timeout:i64 | res:errno,fds:fdlist
select | | res:errno
select | | res:errno
lseek | fd:fd,offset:u64,whence:f8:d:whence | res:errno
llseek | fd:fd,offset:u64,whence:f8:d:whence | res:errno
ioctl | fd:fd,request:u64:x | res:errno
getcwd | | res:errno,path:cbuf
chdir | | res:errno,path:cbuf
fchdir | fd:fd:n | res:errno
mkdir | path:path,mode:u32:x | res:errno
rmdir | path:path | res:errno
openat | dirfd:fd,name:cbuf,flags:f32:x:file,mode:u32:o | fd:fd
link | oldpath:path,newpath:path | res:errno
linkat | olddir:fd,oldpath:cbuf,newdir:fd,newpath:cbuf | res:errno
unlink | path:path | res:errno
unlinkat | dirfd:fd,name:cbuf | res:errno
pread | fd:fd,size:u32,pos:u64 | res:errno,data:bbuf
pwrite | fd:fd,size:u32,pos:u64 | res:errno,data:bbuf
readv | fd:fd | res:errno,size:u32,data:bbuf
writev | fd:fd,size:u32 | res:errno,data:bbuf
preadv | fd:fd,pos:u64 | res:errno,size:u32,data:bbuf
pwritev | fd:fd,size:u32,pos:u64 | res:errno,data:bbuf
dup | fd:fd | res:fd
signalfd | fd:fd,mask:u32:x,flags:f8:x | res:fd
kill | pid:pid,sig:sig | res:errno
tkill | tid:pid,sig:sig | res:errno
tgkill | pid:pid,tid:pid,sig:sig | res:errno
nanosleep | interval:reltime | res:errno
timerfd_create | clockid:u8,flags:f8:x | res:fd
inotify_init | flags:f8:x | res:fd
getrlimit | resource:f8:d:rlimit | res:errno,cur:i64,max:i64
setrlimit | resource:f8:d:rlimit | res:errno,cur:i64,max:i64
prlimit | pid:pid,resource:f8:d:rlimit | res:errno,newcur:i64,newmax:i64,oldcur:i64,oldmax:i64
switch/NA2 | next:pid |
drop | ratio:u32 | ratio:u32
fcntl | fd:fd,cmd:f8:d:fcntl | res:fd
switch/NA2 | next:pid,pgft_maj:u64,pgft_min:u64,vm_size:u32,vm_rss:u32,vm_swap:u32 |
execve | | res:errno,exe:cbuf,args:bbuf,tid:pid,pid:pid,ptid:pid,cwd:cbuf,fdlimit:u64,pgft_maj:u64,pgft_min:u64,vm_size:u32,vm_rss:u32,vm_swap:u32
clone | | res:pid,exe:cbuf,args:bbuf,tid:pid,pid:pid,ptid:pid,cwd:cbuf,fdlimit:i64,pgft_maj:u64,pgft_min:u64,vm_size:u32,vm_rss:u32,vm_swap:u32,flags:f32:x:clone,uid:u32,gid:u32
brk | addr:u64:x | res:u64:x,vm_size:u32,vm_rss:u32,vm_swap:u32
mmap | addr:u64:x,length:u64,prot:f32:x:prot,flags:f32:x:mmap,fd:fd,offset:u64 | res:u64:x,vm_size:u32,vm_rss:u32,vm_swap:u32
mmap2 | addr:u64:x,length:u64,prot:f32:x:prot,flags:f32:x:mmap,fd:fd,pgoffset:u64 | res:u64:x,vm_size:u32,vm_rss:u32,vm_swap:u32
munmap | addr:u64:x,length:u64 | res:errno,vm_size:u32,vm_rss:u32,vm_swap:u32
splice | fd_in:fd,fd_out:fd,size:u64,flags:f32:x:splice | res:errno
ptrace | request:f16:d:ptrace,pid:pid | res:errno,addr:dyn:x,data:dyn:x
ioctl | fd:fd,request:u64:x,argument:u64:x | res:errno
execve | | res:errno,exe:cbuf,args:bbuf,tid:pid,pid:pid,ptid:pid,cwd:cbuf,fdlimit:u64,pgft_maj:u64,pgft_min:u64,vm_size:u32,vm_rss:u32,vm_swap:u32,env:bbuf
rename | | res:errno,oldpath:path,newpath:path
renameat | | res:errno,olddirfd:fd,oldpath:rel1,newdirfd:fd,newpath:rel3
symlink | | res:errno,target:cbuf,linkpath:path
symlinkat | | res:errno,target:cbuf,linkdirfd:fd,linkpath:rel2
fork | | res:pid,exe:cbuf,args:bbuf,tid:pid,pid:pid,ptid:pid,cwd:cbuf,fdlimit:i64,pgft_maj:u64,pgft_min:u64,vm_size:u32,vm_rss:u32,vm_swap:u32,flags:f32:x:clone,uid:u32,gid:u32
vfork | | res:pid,exe:cbuf,args:bbuf,tid:pid,pid:pid,ptid:pid,cwd:cbuf,fdlimit:i64,pgft_maj:u64,pgft_min:u64,vm_size:u32,vm_rss:u32,vm_swap:u32,flags:f32:x:clone,uid:u32,gid:u32
procexit/NA1 | status:errno,ret:errno,sig:sig,core:u8 |
sendfile | out_fd:fd,in_fd:fd,offset:u64,size:u64 | res:errno,offset:u64
quotactl | cmd:f16,type:f8,id:u32,quota_fmt:f8 | res:errno,special:cbuf,quotafilepath:cbuf,dqb_bhardlimit:u64,dqb_bsoftlimit:u64,dqb_curspace:u64,dqb_ihardlimit:u64,dqb_isoftlimit:u64,dqb_btime:reltime,dqb_itime:reltime,dqi_bgrace:reltime,dqi_igrace:reltime,dqi_flags:f8,quota_fmt_out:f8
setresuid | ruid:uid,euid:uid,suid:uid | res:errno
setresgid | rgid:gid,egid:gid,sgid:gid | res:errno
scapevent | event_type:u32,event_data:u64 |
setuid | uid:uid | res:errno
setgid | gid:gid | res:errno
getuid | | uid:uid
geteuid | | euid:uid
getgid | | gid:gid
getegid | | egid:gid
getresuid | | res:errno,ruid:uid,euid:uid,suid:uid
getresgid | | res:errno,rgid:gid,egid:gid,sgid:gid
execve | | res:errno,exe:cbuf,args:bbuf,tid:pid,pid:pid,ptid:pid,cwd:cbuf,fdlimit:u64,pgft_maj:u64,pgft_min:u64,vm_size:u32,vm_rss:u32,vm_swap:u32,comm:cbuf,env:bbuf
clone | | res:pid,exe:cbuf,args:bbuf,tid:pid,pid:pid,ptid:pid,cwd:cbuf,fdlimit:i64,pgft_maj:u64,pgft_min:u64,vm_size:u32,vm_rss:u32,vm_swap:u32,comm:cbuf,flags:f32:x:clone,uid:u32,gid:u32
fork | | res:pid,exe:cbuf,args:bbuf,tid:pid,pid:pid,ptid:pid,cwd:cbuf,fdlimit:i64,pgft_maj:u64,pgft_min:u64,vm_size:u32,vm_rss:u32,vm_swap:u32,comm:cbuf,flags:f32:x:clone,uid:u32,gid:u32
vfork | | res:pid,exe:cbuf,args:bbuf,tid:pid,pid:pid,ptid:pid,cwd:cbuf,fdlimit:i64,pgft_maj:u64,pgft_min:u64,vm_size:u32,vm_rss:u32,vm_swap:u32,comm:cbuf,flags:f32:x:clone,uid:u32,gid:u32
clone | | res:pid,exe:cbuf,args:bbuf,tid:pid,pid:pid,ptid:pid,cwd:cbuf,fdlimit:i64,pgft_maj:u64,pgft_min:u64,vm_size:u32,vm_rss:u32,vm_swap:u32,comm:cbuf,cgroups:bbuf,flags:f32:x:clone,uid:u32,gid:u32,vtid:pid,vpid:pid
fork | | res:pid,exe:cbuf,args:bbuf,tid:pid,pid:pid,ptid:pid,cwd:cbuf,fdlimit:i64,pgft_maj:u64,pgft_min:u64,vm_size:u32,vm_rss:u32,vm_swap:u32,comm:cbuf,cgroups:bbuf,flags:f32:x:clone,uid:u32,gid:u32,vtid:pid,vpid:pid
vfork | | res:pid,exe:cbuf,args:bbuf,tid:pid,pid:pid,ptid:pid,cwd:cbuf,fdlimit:i64,pgft_maj:u64,pgft_min:u64,vm_size:u32,vm_rss:u32,vm_swap:u32,comm:cbuf,cgroups:bbuf,flags:f32:x:clone,uid:u32,gid:u32,vtid:pid,vpid:pid
container | id:cbuf,type:u32,name:cbuf,image:cbuf |
execve | | res:errno,exe:cbuf,args:bbuf,tid:pid,pid:pid,ptid:pid,cwd:cbuf,fdlimit:u64,pgft_maj:u64,pgft_min:u64,vm_size:u32,vm_rss:u32,vm_swap:u32,comm:cbuf,cgroups:bbuf,env:bbuf
signaldeliver | spid:pid,dpid:pid,sig:sig |
procinfo/NA2 | cpu_usr:u64,cpu_sys:u64 |
getdents | fd:fd:n | res:errno
getdents64 | fd:fd:n | res:errno
setns | fd:fd:n,nstype:f32:x:clone | res:errno
flock | fd:fd:n,operation:f32:x:flock | res:errno
cpu_hotplug/NA2 | cpu:u32,action:u32 |
accept | | fd:fd,tuple:socktuple,queuepct:u8,queuelen:u32,queuemax:u32
accept | flags:i32:x | fd:fd,tuple:socktuple,queuepct:u8,queuelen:u32,queuemax:u32
semop | semid:i32 | res:errno,nsops:u32,sem_num_0:u16,sem_op_0:i16,sem_flg_0:f16:x:semop,sem_num_1:u16,sem_op_1:i16,sem_flg_1:f16:x:semop
semctl | semid:i32,semnum:i32,cmd:f16:x:semctl,val:i32 | res:errno
ppoll | fds:fdlist,timeout:reltime,sigmask:sigset | res:errno,fds:fdlist
mount | flags:f32:x:mount | res:errno,dev:cbuf,dir:path,type:cbuf
umount | flags:f32:x:umount | res:errno,name:path
k8s/NA3 | json:cbuf |
semget | key:i32:x,nsems:i32,semflg:f32:x:semget | res:errno
access | mode:f32:x:access | res:errno,name:path
chroot | | res:errno,path:path
tracer | id:i64,tags:cbufarr,args:cbufpair | id:i64,tags:cbufarr,args:cbufpair
mesos/NA4 | json:cbuf |
container | json:cbuf |
setsid | | res:pid
mkdir | mode:u32:x | res:errno,path:path
rmdir | | res:errno,path:path
notification/NA4 | id:cbuf,desc:cbuf |
execve | | res:errno,exe:cbuf,args:bbuf,tid:pid,pid:pid,ptid:pid,cwd:cbuf,fdlimit:u64,pgft_maj:u64,pgft_min:u64,vm_size:u32,vm_rss:u32,vm_swap:u32,comm:cbuf,cgroups:bbuf,env:bbuf,tty:i32
unshare | flags:f32:x:clone | res:errno
infra/NA4 | source:cbuf,name:cbuf,description:cbuf,scope:cbuf |
execve | filename:path | res:errno,exe:cbuf,args:bbuf,tid:pid,pid:pid,ptid:pid,cwd:cbuf,fdlimit:u64,pgft_maj:u64,pgft_min:u64,vm_size:u32,vm_rss:u32,vm_swap:u32,comm:cbuf,cgroups:bbuf,env:bbuf,tty:i32
page_fault/NA5 | addr:u64:x,ip:u64:x,error:f32:x:pf |
execve | filename:path | res:errno,exe:cbuf,args:bbuf,tid:pid,pid:pid,ptid:pid,cwd:cbuf,fdlimit:u64,pgft_maj:u64,pgft_min:u64,vm_size:u32,vm_rss:u32,vm_swap:u32,comm:cbuf,cgroups:bbuf,env:bbuf,tty:i32,pgid:pid,loginuid:i32,flags:f32:x:execve
setpgid | pid:pid,pgid:pid | res:pid
bpf | cmd:i64 | res_or_fd:dyn
seccomp | op:u64,flags:u64:x | res:errno
unlink | | res:errno,path:path
unlinkat | | res:errno,dirfd:fd,name:rel1,flags:f32:x:unlinkat
mkdirat | | res:errno,dirfd:fd,path:rel1,mode:u32:x
openat | dirfd:fd,name:rel0,flags:f32:x:file,mode:u32:o | fd:fd,dirfd:fd,name:rel1,flags:f32:x:file,mode:u32:o,dev:u32:x
link | | res:errno,oldpath:path,newpath:path
linkat | | res:errno,olddir:fd,oldpath:rel1,newdir:fd,newpath:rel3,flags:f32:x:linkat
fchmodat | | res:errno,dirfd:fd,filename:rel1,mode:mode:o:chmod
chmod | | res:errno,filename:path,mode:mode:o:chmod
fchmod | | res:errno,fd:fd,mode:mode:o:chmod
renameat2 | | res:errno,olddirfd:fd,oldpath:rel1,newdirfd:fd,newpath:rel3,flags:f32:x:renameat2
userfaultfd | | res:errno,flags:f32:x:file
pluginevent | plugin ID:u32,event_data:bbuf |
container | json:cbuf |
openat2 | dirfd:fd,name:rel1,flags:f32:x:file,mode:u32:o,resolve:f32:x:openat2 | fd:fd,dirfd:fd,name:rel1,flags:f32:x:file,mode:u32:o,resolve:f32:x:openat2
mprotect | addr:u64:x,length:u64,prot:f32:x:prot | res:errno
execveat | dirfd:fd,pathname:rel0,flags:f32:x:execveat | res:errno,exe:cbuf,args:bbuf,tid:pid,pid:pid,ptid:pid,cwd:cbuf,fdlimit:u64,pgft_maj:u64,pgft_min:u64,vm_size:u32,vm_rss:u32,vm_swap:u32,comm:cbuf,cgroups:bbuf,env:bbuf,tty:i32,pgid:pid,loginuid:i32,flags:f32:x:execve
copy_file_range | fdin:fd,offin:u64,len:u64 | res:errno,fdout:fd,offout:u64
clone3 | | res:pid,exe:cbuf,args:bbuf,tid:pid,pid:pid,ptid:pid,cwd:cbuf,fdlimit:i64,pgft_maj:u64,pgft_min:u64,vm_size:u32,vm_rss:u32,vm_swap:u32,comm:cbuf,cgroups:bbuf,flags:f32:x:clone,uid:u32,gid:u32,vtid:pid,vpid:pid
open_by_handle_at | | fd:fd,mountfd:fd,flags:f32:x:file,path:path
io_uring_setup | | res:errno,entries:u32,sq_entries:u32,cq_entries:u32,flags:f32:x,sq_thread_cpu:u32,sq_thread_idle:u32,features:f32:x
io_uring_enter | | res:errno,fd:fd,to_submit:u32,min_complete:u32,flags:f32:x,sig:sigset
io_uring_register | | res:errno,fd:fd,opcode:f16,arg:u64:x,nr_args:u32
mlock | | res:errno,addr:u64:x,len:u64
munlock | | res:errno,addr:u64:x,len:u64
mlockall | | res:errno,flags:f32:x:mlockall
munlockall | | res:errno
";

/// Event types whose parameters carry 4-byte lengths.
const LARGE: &[u16] = &[322, 324];

fn parse_param(spec: &'static str) -> ParamInfo {
    let mut it = spec.split(':');
    let name = it.next().unwrap_or("");
    let ty = match it.next().unwrap_or("") {
        "i8" => PType::I8,
        "i16" => PType::I16,
        "i32" => PType::I32,
        "i64" => PType::I64,
        "u8" => PType::U8,
        "u16" => PType::U16,
        "u32" => PType::U32,
        "u64" => PType::U64,
        "fd" => PType::Fd,
        "errno" => PType::Errno,
        "pid" => PType::Pid,
        "path" => PType::FsPath,
        "rel0" => PType::FsRelPath(0),
        "rel1" => PType::FsRelPath(1),
        "rel2" => PType::FsRelPath(2),
        "rel3" => PType::FsRelPath(3),
        "cbuf" => PType::CharBuf,
        "bbuf" => PType::ByteBuf,
        "f8" => PType::Flags8,
        "f16" => PType::Flags16,
        "f32" => PType::Flags32,
        "sockaddr" => PType::SockAddr,
        "socktuple" => PType::SockTuple,
        "fdlist" => PType::FdList,
        "reltime" => PType::RelTime,
        "abstime" => PType::AbsTime,
        "sig" => PType::SigType,
        "uid" => PType::Uid,
        "gid" => PType::Gid,
        "sigset" => PType::SigSet,
        "dyn" => PType::Dyn,
        "mode" => PType::Mode,
        "sysid" => PType::SyscallId,
        "cbufarr" => PType::CharBufArray,
        "cbufpair" => PType::CharBufPairArray,
        other => panic!("event table: unknown type {other:?} in {spec:?}"),
    };
    let fmt = match it.next() {
        Some("x") => PFmt::Hex,
        Some("o") => PFmt::Oct,
        Some("n") => PFmt::Na,
        _ => PFmt::Dec,
    };
    let table = it.next();
    ParamInfo {
        name,
        ty,
        fmt,
        table,
    }
}

fn parse_params(spec: &'static str) -> Vec<ParamInfo> {
    let spec = spec.trim();
    if spec.is_empty() {
        return Vec::new();
    }
    spec.split(',').map(parse_param).collect()
}

fn build() -> Vec<EventInfo> {
    let mut out = Vec::new();
    for line in TABLE.lines() {
        let mut parts = line.split('|');
        let names = parts.next().unwrap_or("").trim();
        let enter = parts.next().unwrap_or("");
        let exit = parts.next().unwrap_or("");
        let (en, xn) = names.split_once('/').unwrap_or((names, names));
        for (name, params) in [(en, enter), (xn, exit)] {
            let id = out.len() as u16;
            out.push(EventInfo {
                name,
                params: parse_params(params),
                large: LARGE.contains(&id),
            });
        }
    }
    out
}

/// The table, indexed by event type id.
pub fn table() -> &'static [EventInfo] {
    static T: OnceLock<Vec<EventInfo>> = OnceLock::new();
    T.get_or_init(build)
}

pub fn info(ty: u16) -> Option<&'static EventInfo> {
    table().get(ty as usize)
}

/// Syscall names by PPM syscall code, for generic events (`PT_SYSCALLID`).
pub const SYSCALLS: &[&str] = &[
    "<unknown>",
    "restart_syscall",
    "exit",
    "read",
    "write",
    "open",
    "close",
    "creat",
    "link",
    "unlink",
    "chdir",
    "time",
    "mknod",
    "chmod",
    "stat",
    "lseek",
    "getpid",
    "mount",
    "ptrace",
    "alarm",
    "fstat",
    "pause",
    "utime",
    "access",
    "sync",
    "kill",
    "rename",
    "mkdir",
    "rmdir",
    "dup",
    "pipe",
    "times",
    "brk",
    "acct",
    "ioctl",
    "fcntl",
    "setpgid",
    "umask",
    "chroot",
    "ustat",
    "dup2",
    "getppid",
    "getpgrp",
    "setsid",
    "sethostname",
    "setrlimit",
    "getrusage",
    "gettimeofday",
    "settimeofday",
    "symlink",
    "lstat",
    "readlink",
    "uselib",
    "swapon",
    "reboot",
    "mmap",
    "munmap",
    "truncate",
    "ftruncate",
    "fchmod",
    "getpriority",
    "setpriority",
    "statfs",
    "fstatfs",
    "syslog",
    "setitimer",
    "getitimer",
    "uname",
    "vhangup",
    "wait4",
    "swapoff",
    "sysinfo",
    "fsync",
    "setdomainname",
    "adjtimex",
    "mprotect",
    "init_module",
    "delete_module",
    "quotactl",
    "getpgid",
    "fchdir",
    "sysfs",
    "personality",
    "getdents",
    "select",
    "flock",
    "msync",
    "readv",
    "writev",
    "getsid",
    "fdatasync",
    "mlock",
    "munlock",
    "mlockall",
    "munlockall",
    "sched_setparam",
    "sched_getparam",
    "sched_setscheduler",
    "sched_getscheduler",
    "sched_yield",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_rr_get_interval",
    "nanosleep",
    "mremap",
    "poll",
    "prctl",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigpending",
    "rt_sigtimedwait",
    "rt_sigqueueinfo",
    "rt_sigsuspend",
    "getcwd",
    "capget",
    "capset",
    "sendfile",
    "getrlimit",
    "lchown",
    "getuid",
    "getgid",
    "geteuid",
    "getegid",
    "setreuid",
    "setregid",
    "getgroups",
    "setgroups",
    "fchown",
    "setresuid",
    "getresuid",
    "setresgid",
    "getresgid",
    "chown",
    "setuid",
    "setgid",
    "setfsuid",
    "setfsgid",
    "pivot_root",
    "mincore",
    "madvise",
    "gettid",
    "setxattr",
    "lsetxattr",
    "fsetxattr",
    "getxattr",
    "lgetxattr",
    "fgetxattr",
    "listxattr",
    "llistxattr",
    "flistxattr",
    "removexattr",
    "lremovexattr",
    "fremovexattr",
    "tkill",
    "futex",
    "sched_setaffinity",
    "sched_getaffinity",
    "set_thread_area",
    "get_thread_area",
    "io_setup",
    "io_destroy",
    "io_getevents",
    "io_submit",
    "io_cancel",
    "exit_group",
    "epoll_create",
    "epoll_ctl",
    "epoll_wait",
    "remap_file_pages",
    "set_tid_address",
    "timer_create",
    "timer_settime",
    "timer_gettime",
    "timer_getoverrun",
    "timer_delete",
    "clock_settime",
    "clock_gettime",
    "clock_getres",
    "clock_nanosleep",
    "tgkill",
    "utimes",
    "mq_open",
    "mq_unlink",
    "mq_timedsend",
    "mq_timedreceive",
    "mq_notify",
    "mq_getsetattr",
    "kexec_load",
    "waitid",
    "add_key",
    "request_key",
    "keyctl",
    "ioprio_set",
    "ioprio_get",
    "inotify_init",
    "inotify_add_watch",
    "inotify_rm_watch",
    "openat",
    "mkdirat",
    "mknodat",
    "fchownat",
    "futimesat",
    "unlinkat",
    "renameat",
    "linkat",
    "symlinkat",
    "readlinkat",
    "fchmodat",
    "faccessat",
    "pselect6",
    "ppoll",
    "unshare",
    "set_robust_list",
    "get_robust_list",
    "splice",
    "tee",
    "vmsplice",
    "getcpu",
    "epoll_pwait",
    "utimensat",
    "signalfd",
    "timerfd_create",
    "eventfd",
    "timerfd_settime",
    "timerfd_gettime",
    "signalfd4",
    "eventfd2",
    "epoll_create1",
    "dup3",
    "pipe2",
    "inotify_init1",
    "preadv",
    "pwritev",
    "rt_tgsigqueueinfo",
    "perf_event_open",
    "fanotify_init",
    "prlimit64",
    "clock_adjtime",
    "syncfs",
    "setns",
    "getdents64",
    "socket",
    "bind",
    "connect",
    "listen",
    "accept",
    "getsockname",
    "getpeername",
    "socketpair",
    "sendto",
    "recvfrom",
    "shutdown",
    "setsockopt",
    "getsockopt",
    "sendmsg",
    "sendmmsg",
    "recvmsg",
    "recvmmsg",
    "accept4",
    "semop",
    "semget",
    "semctl",
    "msgsnd",
    "msgrcv",
    "msgget",
    "msgctl",
    "shmdt",
    "shmget",
    "shmctl",
    "statfs64",
    "fstatfs64",
    "fstatat64",
    "sendfile64",
    "ugetrlimit",
    "bdflush",
    "sigprocmask",
    "ipc",
    "socketcall",
    "stat64",
    "lstat64",
    "fstat64",
    "fcntl64",
    "mmap2",
    "newselect",
    "sgetmask",
    "ssetmask",
    "sigpending",
    "olduname",
    "umount",
    "signal",
    "nice",
    "stime",
    "llseek",
    "waitpid",
    "pread64",
    "pwrite64",
    "arch_prctl",
    "shmat",
    "sigreturn",
    "fallocate",
    "newfstatat",
    "process_vm_readv",
    "process_vm_writev",
    "fork",
    "vfork",
    "setuid",
    "getuid",
    "setgid",
    "geteuid",
    "getgid",
    "setresuid",
    "setresgid",
    "getresuid",
    "getresgid",
    "finit_module",
    "bpf",
    "seccomp",
    "sigaltstack",
    "getrandom",
    "fadvise64",
    "renameat2",
    "userfaultfd",
    "openat2",
    "umount2",
    "execve",
    "execveat",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_line_up_with_the_public_numbering() {
        let t = table();
        assert_eq!(t.len(), 352);
        assert_eq!(t[3].name, "open");
        assert_eq!(t[152].name, "switch");
        assert_eq!(t[186].name, "procexit");
        assert_eq!(t[222].name, "clone");
        assert_eq!(t[272].name, "container");
        assert_eq!(t[292].name, "execve");
        assert_eq!(t[306].name, "openat");
        assert_eq!(t[351].name, "munlockall");
        assert_eq!(SYSCALLS[47], "gettimeofday");
    }
}
