//! Container identity from the CRI socket of containerd or CRI-O: the
//! kubelet's own view (pod, namespace, container name, image), also where
//! the runtime's state files are not mounted into the agent.
//!
//! The CRI is gRPC over HTTP/2 on a Unix socket. Two unary calls are all
//! the agent needs (`ContainerStatus`, and `PodSandboxStatus` when the
//! kubelet's labels are missing), so this is a small client of its own:
//! HTTP/2 from `h2`, the messages' few fields we read declared with
//! `prost` (field numbers from the CRI's `api.proto`, `runtime.v1`), instead
//! of tonic and a build-time protobuf compiler. Unknown fields are skipped,
//! so newer runtimes answer it too.

use std::cell::Cell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::identity::Identity;

/// The sockets probed when no `--cri-socket` is given (under the host root).
pub(crate) const DEFAULT_SOCKETS: [&str; 3] = [
    "run/containerd/containerd.sock",
    "run/crio/crio.sock",
    "var/run/crio/crio.sock",
];

/// A call that takes longer than this is abandoned (the agent's loop waits
/// on it; a hung runtime must not stall capture for long).
const CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// Larger answers are refused (a status is a few KiB).
const MAX_MESSAGE: usize = 4 << 20;
/// After the socket failed to answer, calls fail at once for this long, so
/// a hung runtime costs one timeout per interval, not one per container.
const RETRY_AFTER: Duration = Duration::from_secs(30);

/// `runtime.v1` messages, only the fields the agent uses (and the test
/// harness sends). Field numbers are the CRI's.
pub mod msg {
    use std::collections::HashMap;

    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct VersionRequest {
        #[prost(string, tag = "1")]
        pub version: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct VersionResponse {
        #[prost(string, tag = "1")]
        pub version: String,
        #[prost(string, tag = "2")]
        pub runtime_name: String,
        #[prost(string, tag = "3")]
        pub runtime_version: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct ContainerStatusRequest {
        #[prost(string, tag = "1")]
        pub container_id: String,
        #[prost(bool, tag = "2")]
        pub verbose: bool,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct ContainerStatusResponse {
        #[prost(message, optional, tag = "1")]
        pub status: Option<ContainerStatus>,
        #[prost(map = "string, string", tag = "2")]
        pub info: HashMap<String, String>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ContainerMetadata {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(uint32, tag = "2")]
        pub attempt: u32,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ImageSpec {
        #[prost(string, tag = "1")]
        pub image: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ContainerStatus {
        #[prost(string, tag = "1")]
        pub id: String,
        #[prost(message, optional, tag = "2")]
        pub metadata: Option<ContainerMetadata>,
        #[prost(message, optional, tag = "8")]
        pub image: Option<ImageSpec>,
        #[prost(string, tag = "9")]
        pub image_ref: String,
        #[prost(map = "string, string", tag = "12")]
        pub labels: HashMap<String, String>,
        #[prost(map = "string, string", tag = "13")]
        pub annotations: HashMap<String, String>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct PodSandboxStatusRequest {
        #[prost(string, tag = "1")]
        pub pod_sandbox_id: String,
        #[prost(bool, tag = "2")]
        pub verbose: bool,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct PodSandboxStatusResponse {
        #[prost(message, optional, tag = "1")]
        pub status: Option<PodSandboxStatus>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PodSandboxMetadata {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(string, tag = "2")]
        pub uid: String,
        #[prost(string, tag = "3")]
        pub namespace: String,
        #[prost(uint32, tag = "4")]
        pub attempt: u32,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct PodSandboxStatus {
        #[prost(string, tag = "1")]
        pub id: String,
        #[prost(message, optional, tag = "2")]
        pub metadata: Option<PodSandboxMetadata>,
    }
}

/// A CRI runtime's socket, asked one unary call at a time.
pub struct CriClient {
    socket: PathBuf,
    /// Which runtime answered (`containerd`, `cri-o`), from `Version`.
    pub runtime_name: String,
    timeout: Duration,
    /// When the socket last failed to answer (not: answered with an error).
    unreachable_at: Cell<Option<Instant>>,
    rt: tokio::runtime::Runtime,
}

const SERVICE: &str = "/runtime.v1.RuntimeService/";

impl CriClient {
    /// Connects to `socket` and asks the runtime's version (so a socket
    /// that is not a CRI runtime is an error here, not at every container).
    pub fn connect(socket: &Path) -> Result<CriClient, String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("CRI client runtime: {e}"))?;
        let mut c = CriClient {
            socket: socket.to_path_buf(),
            runtime_name: String::new(),
            timeout: CALL_TIMEOUT,
            unreachable_at: Cell::new(None),
            rt,
        };
        let v: msg::VersionResponse = c.call(
            "Version",
            &msg::VersionRequest {
                version: "v1".into(),
            },
        )?;
        c.runtime_name = v.runtime_name;
        Ok(c)
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// How long a call may take (default 2 s); calls that start pods take longer.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// One unary call of `runtime.v1.RuntimeService`.
    pub fn call<Req: prost::Message, Resp: prost::Message + Default>(
        &self,
        method: &str,
        req: &Req,
    ) -> Result<Resp, String> {
        if let Some(t) = self.unreachable_at.get() {
            if t.elapsed() < RETRY_AFTER {
                return Err(format!(
                    "CRI {method} on {}: not tried, no answer {:.0}s ago",
                    self.socket.display(),
                    t.elapsed().as_secs_f64()
                ));
            }
        }
        let body = self.rt.block_on(async {
            tokio::time::timeout(
                self.timeout,
                unary(
                    &self.socket,
                    &format!("{SERVICE}{method}"),
                    req.encode_to_vec(),
                ),
            )
            .await
            .unwrap_or_else(|_| {
                Err(CallError::Unreachable(format!(
                    "no answer within {:?}",
                    self.timeout
                )))
            })
        });
        let body = body.map_err(|e| {
            let e = match e {
                CallError::Unreachable(e) => {
                    self.unreachable_at.set(Some(Instant::now()));
                    e
                }
                CallError::Answered(e) => e,
            };
            format!("CRI {method} on {}: {e}", self.socket.display())
        })?;
        self.unreachable_at.set(None);
        Resp::decode(body.as_slice()).map_err(|e| {
            format!(
                "CRI {method} on {}: undecodable answer: {e}",
                self.socket.display()
            )
        })
    }

    /// Fills `ident` from the runtime's view of container `id`: the
    /// kubelet's labels name pod, namespace and container; without them,
    /// the pod sandbox is asked.
    pub fn fill(&self, ident: &mut Identity) -> Result<(), String> {
        let r: msg::ContainerStatusResponse = self.call(
            "ContainerStatus",
            &msg::ContainerStatusRequest {
                container_id: ident.id.clone(),
                verbose: true,
            },
        )?;
        let st = r.status.ok_or("CRI ContainerStatus: no status")?;
        let label = |k: &str| st.labels.get(k).filter(|v| !v.is_empty()).cloned();
        ident.namespace = label("io.kubernetes.pod.namespace");
        ident.pod = label("io.kubernetes.pod.name");
        ident.k8s_container = label("io.kubernetes.container.name")
            .or_else(|| st.metadata.as_ref().map(|m| m.name.clone()))
            .filter(|n| !n.is_empty());
        if ident.pod.is_none() || ident.namespace.is_none() {
            if let Some(sandbox) = sandbox_id(&r.info) {
                let p: msg::PodSandboxStatusResponse = self.call(
                    "PodSandboxStatus",
                    &msg::PodSandboxStatusRequest {
                        pod_sandbox_id: sandbox,
                        verbose: false,
                    },
                )?;
                if let Some(m) = p.status.and_then(|s| s.metadata) {
                    ident.pod = ident.pod.take().or(Some(m.name)).filter(|s| !s.is_empty());
                    ident.namespace = ident
                        .namespace
                        .take()
                        .or(Some(m.namespace))
                        .filter(|s| !s.is_empty());
                }
            }
        }
        ident.image = st
            .image
            .map(|i| i.image)
            .filter(|i| !i.is_empty())
            .or_else(|| Some(st.image_ref).filter(|i| !i.is_empty()));
        ident.name = match (&ident.pod, &ident.k8s_container) {
            (Some(p), Some(c)) => Some(format!("{p}/{c}")),
            (None, Some(c)) => Some(c.clone()),
            _ => None,
        };
        for (k, v) in st.labels {
            ident.labels.entry(k).or_insert(v);
        }
        Ok(())
    }
}

/// The sandbox id in a verbose status's `info` (containerd: JSON under
/// `info` with `sandboxID`; CRI-O: `sandboxID` in the same place).
fn sandbox_id(info: &HashMap<String, String>) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(info.get("info")?).ok()?;
    v.get("sandboxID")
        .or_else(|| v.get("sandbox_id"))
        .and_then(|s| s.as_str())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

enum CallError {
    /// No answer: no socket, no server, a broken connection, a timeout.
    Unreachable(String),
    /// The runtime answered, with an error (or with nonsense).
    Answered(String),
}

fn unreachable(e: impl std::fmt::Display) -> CallError {
    CallError::Unreachable(e.to_string())
}

/// One gRPC unary call over HTTP/2 on a Unix socket: the message framed
/// (no compression), the answer's message unframed, a non-zero
/// `grpc-status` an error with its message.
async fn unary(socket: &Path, path: &str, msg: Vec<u8>) -> Result<Vec<u8>, CallError> {
    let io = tokio::net::UnixStream::connect(socket)
        .await
        .map_err(unreachable)?;
    let (client, conn) = h2::client::handshake(io)
        .await
        .map_err(|e| unreachable(format!("HTTP/2: {e}")))?;
    // The connection is driven while we wait for the answer.
    let conn = tokio::spawn(async move {
        let _ = conn.await;
    });
    let result = async {
        let mut client = client.ready().await.map_err(unreachable)?;
        let req = http::Request::builder()
            .method("POST")
            .uri(format!("http://localhost{path}"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(())
            .map_err(|e| CallError::Answered(e.to_string()))?;
        let (answer, mut send) = client.send_request(req, false).map_err(unreachable)?;
        let mut framed = Vec::with_capacity(5 + msg.len());
        framed.push(0);
        framed.extend_from_slice(&(msg.len() as u32).to_be_bytes());
        framed.extend_from_slice(&msg);
        send.send_data(framed.into(), true).map_err(unreachable)?;
        let (head, mut body) = answer.await.map_err(unreachable)?.into_parts();
        let mut data = Vec::new();
        while let Some(chunk) = body.data().await {
            let chunk = chunk.map_err(unreachable)?;
            let _ = body.flow_control().release_capacity(chunk.len());
            data.extend_from_slice(&chunk);
            if data.len() > MAX_MESSAGE + 5 {
                return Err(CallError::Answered(format!(
                    "answer larger than {MAX_MESSAGE} bytes"
                )));
            }
        }
        let trailers = body.trailers().await.map_err(unreachable)?;
        // A trailers-only answer carries the status in the headers.
        let header = |name: &str| {
            trailers
                .as_ref()
                .and_then(|t| t.get(name))
                .or_else(|| head.headers.get(name))
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
        };
        match header("grpc-status") {
            "0" => unframe(&data)
                .map(<[u8]>::to_vec)
                .map_err(CallError::Answered),
            "" => Err(CallError::Answered(format!(
                "HTTP status {} without a gRPC status",
                head.status
            ))),
            status => Err(CallError::Answered(format!(
                "gRPC status {status}: {}",
                header("grpc-message")
            ))),
        }
    }
    .await;
    conn.abort();
    result
}

/// The message of a gRPC answer body: one uncompressed length-prefixed frame.
fn unframe(data: &[u8]) -> Result<&[u8], String> {
    if data.len() < 5 {
        return Err(format!("answer of {} bytes, no gRPC frame", data.len()));
    }
    if data[0] != 0 {
        return Err("compressed answer (not asked for)".into());
    }
    let len = u32::from_be_bytes([data[1], data[2], data[3], data[4]]) as usize;
    data.get(5..5 + len)
        .ok_or_else(|| format!("gRPC frame of {len} bytes cut at {}", data.len() - 5))
}

/// The first reachable CRI socket: `explicit` when given, else the usual
/// paths under `host_root`. `Err` says why none answered.
pub fn probe(explicit: Option<&Path>, host_root: &Path) -> Result<CriClient, String> {
    if let Some(p) = explicit {
        return CriClient::connect(p);
    }
    let mut tried = Vec::new();
    for rel in DEFAULT_SOCKETS {
        let p = host_root.join(rel);
        if !p.exists() {
            continue;
        }
        match CriClient::connect(&p) {
            Ok(c) => return Ok(c),
            Err(e) => tried.push(e),
        }
    }
    Err(if tried.is_empty() {
        format!(
            "no CRI socket under {} ({})",
            host_root.display(),
            DEFAULT_SOCKETS.join(", ")
        )
    } else {
        tried.join("; ")
    })
}

/// The agent's use of the CRI: a client once a socket answers (probed at
/// start, and again — at most every [`RETRY_AFTER`] — when a containerd or
/// CRI-O container appears while none does, as when the agent starts
/// before the runtime), with what to log said once.
pub(crate) struct CriSource {
    explicit: Option<PathBuf>,
    host_root: PathBuf,
    client: Option<CriClient>,
    probed_at: Option<Instant>,
    said_absent: bool,
    said_failed: bool,
}

impl CriSource {
    pub(crate) fn new(
        explicit: Option<&Path>,
        host_root: &Path,
        log: &mut dyn FnMut(String),
    ) -> CriSource {
        let mut s = CriSource {
            explicit: explicit.map(Path::to_path_buf),
            host_root: host_root.to_path_buf(),
            client: None,
            probed_at: None,
            said_absent: false,
            said_failed: false,
        };
        // No socket is news at start only when one was asked for; on a
        // podman-only host it is the normal case.
        s.probe(log, explicit.is_some());
        s
    }

    fn probe(&mut self, log: &mut dyn FnMut(String), say_absent: bool) {
        self.probed_at = Some(Instant::now());
        match probe(self.explicit.as_deref(), &self.host_root) {
            Ok(c) => {
                log(format!(
                    "identity: CRI runtime {} on {}",
                    c.runtime_name,
                    c.socket().display()
                ));
                self.client = Some(c);
            }
            Err(e) if say_absent && !self.said_absent => {
                self.said_absent = true;
                log(format!(
                    "identity: {e}; containerd / CRI-O containers are named from their state on disk (said once)"
                ));
            }
            // Asked again (a containerd / CRI-O container came, at most
            // every RETRY_AFTER): a socket that hangs costs this look-up
            // one call's timeout, and is said each time.
            Err(e) if say_absent => log(format!(
                "identity: {e}; still named from the runtime's state on disk (asked again in {}s at the soonest)",
                RETRY_AFTER.as_secs()
            )),
            Err(_) => {}
        }
    }

    /// Puts the runtime's own view of container `ident.id` over `ident`
    /// (facts from disk fill what it leaves out). True when it answered.
    pub(crate) fn fill(&mut self, ident: &mut Identity, log: &mut dyn FnMut(String)) -> bool {
        if self.client.is_none() && self.probed_at.is_none_or(|t| t.elapsed() >= RETRY_AFTER) {
            self.probe(log, true);
        }
        let Some(client) = &self.client else {
            return false;
        };
        let mut asked = Identity {
            runtime: ident.runtime.clone(),
            id: ident.id.clone(),
            ..Identity::default()
        };
        match client.fill(&mut asked) {
            Ok(()) => {
                *ident = merge(asked, std::mem::take(ident));
                true
            }
            Err(e) => {
                if !self.said_failed {
                    self.said_failed = true;
                    log(format!(
                        "identity: {e}; such containers are named from the runtime's state on disk (said once)"
                    ));
                }
                false
            }
        }
    }
}

/// `first` where it knows a fact, `second` where it does not.
fn merge(first: Identity, second: Identity) -> Identity {
    let mut labels = second.labels;
    labels.extend(first.labels);
    Identity {
        runtime: first.runtime,
        id: first.id,
        name: first.name.or(second.name),
        image: first.image.or(second.image),
        namespace: first.namespace.or(second.namespace),
        pod: first.pod.or(second.pod),
        k8s_container: first.k8s_container.or(second.k8s_container),
        labels,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn frames_and_messages() {
        assert!(unframe(&[0, 0, 0]).unwrap_err().contains("no gRPC frame"));
        assert!(unframe(&[1, 0, 0, 0, 0])
            .unwrap_err()
            .contains("compressed"));
        assert!(unframe(&[0, 0, 0, 0, 9, 1]).unwrap_err().contains("cut"));
        assert_eq!(unframe(&[0, 0, 0, 0, 1, 7, 8]).unwrap(), &[7]);
        // Unknown fields of newer runtimes are skipped.
        let mut st = msg::ContainerStatus {
            id: "abc".into(),
            ..Default::default()
        };
        st.labels
            .insert("io.kubernetes.pod.name".into(), "web-0".into());
        let mut bytes = st.encode_to_vec();
        bytes.extend_from_slice(&[0xa2, 0x06, 0x01, b'x']); // field 100, a string
        let back = msg::ContainerStatus::decode(bytes.as_slice()).unwrap();
        assert_eq!(back.labels["io.kubernetes.pod.name"], "web-0");
        let info = HashMap::from([(
            "info".to_string(),
            r#"{"sandboxID":"s1","pid":3}"#.to_string(),
        )]);
        assert_eq!(sandbox_id(&info).as_deref(), Some("s1"));
    }

    #[test]
    fn the_runtime_answer_comes_first_the_disk_fills_in() {
        let cri = Identity {
            runtime: "containerd".into(),
            id: "x".into(),
            pod: Some("web-0".into()),
            ..Identity::default()
        };
        let disk = Identity {
            runtime: "containerd".into(),
            id: "x".into(),
            pod: Some("old".into()),
            image: Some("img".into()),
            ..Identity::default()
        };
        let m = merge(cri, disk);
        assert_eq!(m.pod.as_deref(), Some("web-0"));
        assert_eq!(m.image.as_deref(), Some("img"));
    }

    #[test]
    fn an_absent_socket_is_said_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut lines = Vec::new();
        let sock = dir.path().join("x.sock");
        let mut src = CriSource::new(Some(&sock), dir.path(), &mut |l| lines.push(l));
        let mut ident = Identity {
            runtime: "containerd".into(),
            id: "x".into(),
            ..Identity::default()
        };
        for _ in 0..3 {
            assert!(!src.fill(&mut ident, &mut |l| lines.push(l)));
        }
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].contains("x.sock"), "{lines:?}");
        assert_eq!(ident.runtime, "containerd");
    }

    #[test]
    fn a_socket_that_is_not_there_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let e = probe(None, dir.path()).err().unwrap();
        assert!(e.contains("no CRI socket"), "{e}");
        let e = probe(Some(&dir.path().join("x.sock")), dir.path())
            .err()
            .unwrap();
        assert!(e.contains("x.sock"), "{e}");
    }
}
