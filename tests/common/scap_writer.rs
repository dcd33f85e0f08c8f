//! A small writer of scap captures (section header, process list, fd list,
//! v2 event blocks), for tests that need events no public capture holds:
//! the event types libs added after id 351, names with control characters,
//! two containers whose ids share a prefix.
//!
//! The layout is the public scap file format (falcosecurity/libs
//! `scap_savefile.c`): blocks of `type, total length, body padded to 4,
//! total length`; little-endian throughout.

/// Event type ids (libs `ppm_events_public.h`).
pub mod ty {
    pub const CLOSE_X: u16 = 5;
    pub const READ_X: u16 = 7;
    pub const SOCKET_X: u16 = 19;
    pub const OPENAT_2_X: u16 = 307;
    pub const CONTAINER_JSON_2_E: u16 = 324;
    pub const USER_ADDED_E: u16 = 354;
    pub const DUP2_X: u16 = 363;
    pub const DUP3_X: u16 = 365;
    pub const ACCEPT4_6_X: u16 = 389;
    pub const PIPE2_X: u16 = 393;
    pub const PRCTL_X: u16 = 401;
    pub const MEMFD_CREATE_X: u16 = 405;
    pub const FINIT_MODULE_X: u16 = 413;
    pub const NEWFSTATAT_X: u16 = 419;
    pub const CLOSE_RANGE_X: u16 = 451;
}

/// PPM encodings of the flags the tests use.
pub const O_RDONLY: u32 = 1;
pub const O_CLOEXEC: u32 = 1 << 12;
pub const AT_FDCWD: i64 = -100;

const SHB: u32 = 0x0A0D_0D0A;
const PL_V9: u32 = 0x215;
const FDL_V2: u32 = 0x218;
const EV_V2: u32 = 0x216;
const EV_V2_LARGE: u32 = 0x221;

/// One parameter value, encoded as the driver stores it.
pub enum P<'a> {
    I64(i64),
    U64(u64),
    U32(u32),
    U8(u8),
    /// A NUL-terminated string (paths, names).
    Str(&'a str),
    Bytes(&'a [u8]),
    /// An IPv4 socket tuple: source address and port, destination.
    Tuple4([u8; 4], u16, [u8; 4], u16),
}

impl P<'_> {
    fn encode(&self) -> Vec<u8> {
        match self {
            P::I64(v) => v.to_le_bytes().to_vec(),
            P::U64(v) => v.to_le_bytes().to_vec(),
            P::U32(v) => v.to_le_bytes().to_vec(),
            P::U8(v) => vec![*v],
            P::Str(s) => {
                let mut b = s.as_bytes().to_vec();
                b.push(0);
                b
            }
            P::Bytes(b) => b.to_vec(),
            P::Tuple4(sip, sport, dip, dport) => {
                let mut b = vec![2u8]; // PPM_AF_INET
                b.extend_from_slice(sip);
                b.extend_from_slice(&sport.to_le_bytes());
                b.extend_from_slice(dip);
                b.extend_from_slice(&dport.to_le_bytes());
                b
            }
        }
    }
}

/// A process for the process-list block.
pub struct Proc<'a> {
    pub tid: u64,
    pub pid: u64,
    pub comm: &'a str,
    pub cwd: &'a str,
    /// `cpuset=/docker/<id>` style cgroup lines, NUL-separated.
    pub cgroups: &'a str,
}

/// Builds a capture in memory.
pub struct ScapWriter {
    out: Vec<u8>,
    ts: u64,
}

fn str16(b: &mut Vec<u8>, s: &str) {
    b.extend_from_slice(&(s.len() as u16).to_le_bytes());
    b.extend_from_slice(s.as_bytes());
}

impl ScapWriter {
    /// A capture with its section header; events get increasing times
    /// from `start_ns`.
    pub fn new(start_ns: u64) -> Self {
        let mut w = ScapWriter {
            out: Vec::new(),
            ts: start_ns,
        };
        let mut body = Vec::new();
        body.extend_from_slice(&0x1A2B_3C4Du32.to_le_bytes());
        body.extend_from_slice(&1u16.to_le_bytes()); // major
        body.extend_from_slice(&0u16.to_le_bytes()); // minor
        body.extend_from_slice(&(-1i64).to_le_bytes()); // section length: unknown
        w.block(SHB, &body);
        w
    }

    fn block(&mut self, kind: u32, body: &[u8]) {
        let padded = body.len().div_ceil(4) * 4;
        let total = (12 + padded) as u32;
        self.out.extend_from_slice(&kind.to_le_bytes());
        self.out.extend_from_slice(&total.to_le_bytes());
        self.out.extend_from_slice(body);
        self.out.resize(self.out.len() + padded - body.len(), 0);
        self.out.extend_from_slice(&total.to_le_bytes());
    }

    /// A process-list block (version 9, each entry with its own length).
    pub fn processes(&mut self, procs: &[Proc<'_>]) -> &mut Self {
        let mut body = Vec::new();
        for p in procs {
            let mut e = Vec::new();
            for v in [p.tid, p.pid, 1, p.pid, p.pid] {
                e.extend_from_slice(&v.to_le_bytes()); // tid pid ptid sid vpgid
            }
            str16(&mut e, p.comm);
            str16(&mut e, p.comm); // exe
            str16(&mut e, p.comm); // exepath
            str16(&mut e, ""); // args
            str16(&mut e, p.cwd);
            e.extend_from_slice(&1024u64.to_le_bytes()); // fdlimit
            e.extend_from_slice(&[0u8; 4 * 3]); // flags, uid, gid
            e.extend_from_slice(&[0u8; 4 * 3 + 8 * 2]); // vm sizes, page faults
            str16(&mut e, ""); // env
            e.extend_from_slice(&p.tid.to_le_bytes()); // vtid
            e.extend_from_slice(&p.pid.to_le_bytes()); // vpid
            str16(&mut e, p.cgroups);
            str16(&mut e, "/"); // root
            body.extend_from_slice(&((e.len() + 4) as u32).to_le_bytes());
            body.extend_from_slice(&e);
        }
        self.block(PL_V9, &body);
        self
    }

    /// An fd-list block (version 2): files open in process `tid` at start.
    pub fn files(&mut self, tid: u64, files: &[(u64, &str)]) -> &mut Self {
        let mut body = tid.to_le_bytes().to_vec();
        for (fd, name) in files {
            let mut e = Vec::new();
            e.extend_from_slice(&fd.to_le_bytes());
            e.extend_from_slice(&0u64.to_le_bytes()); // inode
            e.push(1); // SCAP_FD_FILE
            str16(&mut e, name);
            body.extend_from_slice(&((e.len() + 4) as u32).to_le_bytes());
            body.extend_from_slice(&e);
        }
        self.block(FDL_V2, &body);
        self
    }

    /// One event of type `ty` by thread `tid`, 1 µs after the previous one.
    pub fn event(&mut self, tid: i64, ty: u16, params: &[P<'_>]) -> &mut Self {
        self.ts += 1_000;
        let ts = self.ts;
        self.event_at(ts, tid, ty, params, false)
    }

    /// An event with an explicit time; `large` gives 4-byte parameter
    /// lengths (EF_LARGE_PAYLOAD types).
    pub fn event_at(
        &mut self,
        ts: u64,
        tid: i64,
        ty: u16,
        params: &[P<'_>],
        large: bool,
    ) -> &mut Self {
        let values: Vec<Vec<u8>> = params.iter().map(P::encode).collect();
        let mut lens = Vec::new();
        for v in &values {
            if large {
                lens.extend_from_slice(&(v.len() as u32).to_le_bytes());
            } else {
                lens.extend_from_slice(&(v.len() as u16).to_le_bytes());
            }
        }
        let len = 26 + lens.len() + values.iter().map(Vec::len).sum::<usize>();
        let mut body = Vec::new();
        body.extend_from_slice(&0u16.to_le_bytes()); // cpu
        body.extend_from_slice(&ts.to_le_bytes());
        body.extend_from_slice(&tid.to_le_bytes());
        body.extend_from_slice(&(len as u32).to_le_bytes());
        body.extend_from_slice(&ty.to_le_bytes());
        body.extend_from_slice(&(params.len() as u32).to_le_bytes());
        body.extend_from_slice(&lens);
        for v in &values {
            body.extend_from_slice(v);
        }
        self.block(if large { EV_V2_LARGE } else { EV_V2 }, &body);
        self
    }

    pub fn bytes(&self) -> &[u8] {
        &self.out
    }

    /// Writes the capture to `path`.
    pub fn write(&self, path: &std::path::Path) {
        std::fs::write(path, &self.out).unwrap();
    }
}
