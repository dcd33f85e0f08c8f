//! Helpers for the agent's end-to-end tests: real podman containers, a
//! real nats-server, the `chids agent` binary as a child process. Every
//! resource is a guard that cleans up on drop, panics included.
#![allow(dead_code)]

pub mod cgroup_tree;
pub mod cri;
pub mod outbox;

#[allow(unused_imports)]
pub use cgroup_tree::CgroupTree;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Why the test cannot run here, if it cannot.
pub fn skip_reason() -> Option<String> {
    if let Err(e) = chids_live::capture::check_environment() {
        return Some(e.to_string());
    }
    for tool in ["podman", "runc", "nats-server", "busybox", "ldd"] {
        let found = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/bin")])
            .any(|d| d.join(tool).exists());
        if !found {
            return Some(format!(
                "{tool} not installed (scripts/install-test-deps.sh)"
            ));
        }
    }
    None
}

/// Polls `f` until it gives a value, or panics naming `what` at the deadline.
pub fn wait_for<T>(what: &str, deadline: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + deadline;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < end,
            "timed out after {deadline:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A prefix unique to this test process, for names of containers and images.
pub fn prefix() -> String {
    format!("chids-agt-{}", std::process::id())
}

pub fn podman(args: &[&str]) -> Output {
    let out = Command::new("podman")
        .args(["--runtime", "runc", "--cgroup-manager", "cgroupfs"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run podman");
    out
}

pub fn podman_ok(args: &[&str]) -> String {
    let out = podman(args);
    assert!(
        out.status.success(),
        "podman {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A binary's shared libraries (and the loader), from ldd; none when it
/// is static.
pub fn shared_libs(bin: &Path) -> Vec<PathBuf> {
    let out = Command::new("ldd").arg(bin).output().expect("ldd");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            l.split_whitespace()
                .find(|t| t.starts_with('/'))
                .map(PathBuf::from)
        })
        .collect()
}

/// An image imported from a folder (removed on drop).
pub struct Image {
    pub name: String,
}

impl Image {
    /// busybox-static and its applets, plus `extra` files copied in
    /// (host path, path in the image).
    pub fn busybox(name: &str, extra: &[(&Path, &str)]) -> Image {
        Self::busybox_with(name, extra, &[])
    }

    /// As [`Image::busybox`], with `podman import --change` instructions
    /// (e.g. a `CMD`).
    pub fn busybox_with(name: &str, extra: &[(&Path, &str)], changes: &[&str]) -> Image {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("rootfs");
        for d in ["bin", "etc", "tmp", "proc", "sys", "dev", "var/lib/chids"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        let busybox = ["/bin/busybox", "/usr/bin/busybox"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("busybox");
        // busybox-static needs nothing else; a dynamic busybox (the
        // `busybox` package replaces `busybox-static`) brings its libraries.
        std::fs::copy(busybox, root.join("bin/busybox")).unwrap();
        for lib in shared_libs(Path::new(busybox)) {
            let dest = root.join(lib.strip_prefix("/").unwrap());
            std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
            std::fs::copy(&lib, dest).unwrap();
        }
        for applet in [
            "sh", "cat", "ls", "sleep", "cp", "rm", "echo", "date", "true",
        ] {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
        }
        std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
        std::fs::write(root.join("etc/shadow"), "root:*:19000:0:99999:7:::\n").unwrap();
        for (host, inside) in extra {
            let dest = root.join(inside.trim_start_matches('/'));
            std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
            if !dest.exists() {
                std::fs::copy(host, &dest).unwrap();
            }
        }
        let tar = dir.path().join("rootfs.tar");
        let st = Command::new("tar")
            .arg("-C")
            .arg(&root)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .unwrap();
        assert!(st.success());
        let mut args = vec!["import"];
        for c in changes {
            args.extend(["--change", c]);
        }
        args.extend([tar.to_str().unwrap(), name]);
        podman_ok(&args);
        Image {
            name: name.to_string(),
        }
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        let _ = podman(&["rmi", "-f", &self.name]);
    }
}

/// A container (removed on drop).
pub struct Container {
    pub name: String,
    pub id: String,
}

impl Container {
    /// `podman run -d` of `sh -c script` in `image`.
    pub fn run(name: &str, image: &str, script: &str) -> Container {
        Self::run_with(name, image, script, &[])
    }

    /// As [`Container::run`], with more `podman run` options.
    pub fn run_with(name: &str, image: &str, script: &str, options: &[&str]) -> Container {
        let _ = podman(&["rm", "-f", "-t", "0", name]);
        let mut args = vec![
            "run",
            "-d",
            "--name",
            name,
            "--network",
            "none",
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1000:1000",
        ];
        args.extend_from_slice(options);
        args.extend_from_slice(&[image, "sh", "-c", script]);
        let id = podman_ok(&args);
        Container {
            name: name.to_string(),
            id,
        }
    }

    pub fn exec(&self, script: &str) -> Output {
        podman(&["exec", &self.name, "sh", "-c", script])
    }

    /// The container's cgroup directories now (empty when stopped).
    pub fn cgroups(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        find_dirs(Path::new("/sys/fs/cgroup"), &self.id, 0, &mut out);
        out
    }
}

fn find_dirs(dir: &Path, id: &str, depth: u32, out: &mut Vec<PathBuf>) {
    if depth > 8 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            if e.file_name().to_string_lossy().contains(id) {
                out.push(e.path());
            }
            find_dirs(&e.path(), id, depth + 1, out);
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = podman(&["rm", "-f", "-t", "0", &self.name]);
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A nats-server with JetStream, storing in `dir` (killed on drop).
pub struct Nats {
    child: Option<Child>,
    pub port: u16,
    pub dir: PathBuf,
}

impl Nats {
    pub fn start(dir: &Path, port: u16) -> Nats {
        let child = Command::new("nats-server")
            .args(["-js", "-sd"])
            .arg(dir)
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server");
        let n = Nats {
            child: Some(child),
            port,
            dir: dir.to_path_buf(),
        };
        wait_for("nats-server to listen", Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        });
        n
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// Creates a file-backed JetStream stream over `subject`.
    pub fn create_stream(&self, name: &str, subject: &str) {
        let url = self.url();
        Self::rt().block_on(async {
            let c = async_nats::connect(url).await.unwrap();
            let js = async_nats::jetstream::new(c);
            js.create_stream(async_nats::jetstream::stream::Config {
                name: name.to_string(),
                subjects: vec![subject.to_string()],
                duplicate_window: Duration::from_secs(120),
                ..Default::default()
            })
            .await
            .unwrap();
        });
    }

    /// Every message in the stream, parsed as JSON.
    pub fn messages(&self, stream: &str) -> Vec<Value> {
        let url = self.url();
        Self::rt().block_on(async {
            let c = async_nats::connect(url).await.unwrap();
            let js = async_nats::jetstream::new(c);
            let mut s = js.get_stream(stream).await.unwrap();
            let info = s.info().await.unwrap().state.clone();
            let mut out = Vec::new();
            for seq in info.first_sequence..=info.last_sequence {
                if let Ok(m) = s.get_raw_message(seq).await {
                    out.push(serde_json::from_slice(&m.payload).expect("alert is JSON"));
                }
            }
            out
        })
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `chids agent` as a child process (stopped on drop).
pub struct Agent {
    child: Option<Child>,
    pub state: PathBuf,
    pub log: PathBuf,
}

impl Agent {
    pub fn start(state: &Path, args: &[&str]) -> Agent {
        Self::start_with_env(state, args, &[])
    }

    /// As [`Agent::start`], with extra environment variables for the agent.
    pub fn start_with_env(state: &Path, args: &[&str], env: &[(&str, &str)]) -> Agent {
        std::fs::create_dir_all(state).unwrap();
        let log = state.join(format!("agent-{}.log", Instant::now().elapsed().as_nanos()));
        let log = unique(log);
        let err = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_chids"))
            .arg("agent")
            .arg("--state-dir")
            .arg(state)
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .expect("start chids agent");
        Agent {
            child: Some(child),
            state: state.to_path_buf(),
            log,
        }
    }

    /// The status file once the running agent has written it.
    pub fn status(&self) -> Option<Value> {
        let text = std::fs::read_to_string(self.state.join("status.json")).ok()?;
        let v: Value = serde_json::from_str(&text).ok()?;
        let pid = self.child.as_ref().map(|c| c.id() as u64);
        (v["pid"].as_u64() == pid).then_some(v)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then wait (bounded) for a clean exit.
    pub fn stop(&mut self) -> Option<i32> {
        let mut c = self.child.take()?;
        unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(st)) = c.try_wait() {
                return st.code();
            }
            if Instant::now() > end {
                let _ = c.kill();
                let _ = c.wait();
                panic!(
                    "agent did not stop within 30s of SIGTERM:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits (up to `deadline`) for the agent to exit on its own: its exit
    /// code, or None when it is still running.
    pub fn wait_exit(&mut self, deadline: Duration) -> Option<Option<i32>> {
        let end = Instant::now() + deadline;
        while Instant::now() < end {
            if let Ok(Some(st)) = self.child.as_mut()?.try_wait() {
                self.child = None;
                return Some(st.code());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }

    /// Resident memory of the agent process, bytes.
    pub fn rss(&self) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        s.lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap()
            * 1024
    }
}

fn unique(p: PathBuf) -> PathBuf {
    let mut n = 0;
    loop {
        let c = p.with_extension(format!("{n}.log"));
        if !c.exists() {
            return c;
        }
        n += 1;
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let end = Instant::now() + Duration::from_secs(20);
            while Instant::now() < end {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The workload of a status entry, by container name.
pub fn container<'a>(status: &'a Value, name: &str) -> Option<&'a Value> {
    status["containers"]
        .as_array()?
        .iter()
        .find(|c| c["name"] == name)
}

pub fn workload_state(status: &Value, key: &str) -> Option<String> {
    status["workloads"]
        .as_array()?
        .iter()
        .find(|w| w["workload"] == key)
        .and_then(|w| w["state"].as_str())
        .map(str::to_owned)
}

/// A core-NATS subscriber (no JetStream) collecting, on a thread of its
/// own, every message published on a subject from the moment `start`
/// returns.
pub struct CoreSubscriber {
    got: std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl CoreSubscriber {
    pub fn start(url: &str, subject: &str) -> CoreSubscriber {
        use futures_util::StreamExt;
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::{Arc, Mutex};
        let got = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready) = std::sync::mpsc::channel();
        let (url, subject) = (url.to_string(), subject.to_string());
        let (g, s) = (Arc::clone(&got), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            Nats::rt().block_on(async move {
                let c = async_nats::connect(url).await.expect("connect to nats");
                let mut sub = c.subscribe(subject).await.expect("subscribe");
                c.flush().await.expect("flush the subscription");
                ready_tx.send(()).unwrap();
                while !s.load(Ordering::Relaxed) {
                    let next = tokio::time::timeout(Duration::from_millis(200), sub.next());
                    if let Ok(Some(m)) = next.await {
                        let v = serde_json::from_slice(&m.payload).expect("message is JSON");
                        g.lock().unwrap().push(v);
                    }
                }
            })
        });
        ready
            .recv_timeout(Duration::from_secs(20))
            .expect("the subscription is in place");
        CoreSubscriber {
            got,
            stop,
            thread: Some(thread),
        }
    }

    /// Every message received so far.
    pub fn messages(&self) -> Vec<Value> {
        self.got.lock().unwrap().clone()
    }
}

impl Drop for CoreSubscriber {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The records of a JSON-lines file (an agent's `--alerts` file), those
/// that parse; none while the file does not exist.
pub fn json_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect()
}

/// The anomaly alerts of container `name` in an alerts file.
pub fn anomalies_of(path: &Path, name: &str) -> Vec<Value> {
    json_lines(path)
        .into_iter()
        .filter(|a| a["container_name"] == name && a["kind"] == "anomaly")
        .collect()
}
