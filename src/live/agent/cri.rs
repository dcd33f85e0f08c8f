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

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::identity::Identity;

/// The sockets probed when no `--cri-socket` is given (under the host root).
pub const DEFAULT_SOCKETS: [&str; 3] = [
    "run/containerd/containerd.sock",
    "run/crio/crio.sock",
    "var/run/crio/crio.sock",
];

/// A call that takes longer than this is abandoned (the agent's loop waits
/// on it; a hung runtime must not stall capture for long).
const CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// Larger answers are refused (a status is a few KiB).
const MAX_MESSAGE: usize = 4 << 20;

/// `runtime.v1` messages, only the fields the agent uses (and the test
/// harness sends). Field numbers are the CRI's.
pub mod msg {
    use std::collections::HashMap;

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct VersionRequest {
        #[prost(string, tag = "1")]
        pub version: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct VersionResponse {
        #[prost(string, tag = "1")]
        pub version: String,
        #[prost(string, tag = "2")]
        pub runtime_name: String,
        #[prost(string, tag = "3")]
        pub runtime_version: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ContainerStatusRequest {
        #[prost(string, tag = "1")]
        pub container_id: String,
        #[prost(bool, tag = "2")]
        pub verbose: bool,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ContainerStatusResponse {
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
    pub struct PodSandboxStatusRequest {
        #[prost(string, tag = "1")]
        pub pod_sandbox_id: String,
        #[prost(bool, tag = "2")]
        pub verbose: bool,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PodSandboxStatusResponse {
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
    pub struct PodSandboxStatus {
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
            .unwrap_or_else(|_| Err(format!("no answer within {:?}", self.timeout)))
        });
        let body = body.map_err(|e| format!("CRI {method} on {}: {e}", self.socket.display()))?;
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

/// One gRPC unary call over HTTP/2 on a Unix socket: the message framed
/// (no compression), the answer's message unframed, a non-zero
/// `grpc-status` an error with its message.
async fn unary(socket: &Path, path: &str, msg: Vec<u8>) -> Result<Vec<u8>, String> {
    let io = tokio::net::UnixStream::connect(socket)
        .await
        .map_err(|e| e.to_string())?;
    let (client, conn) = h2::client::handshake(io)
        .await
        .map_err(|e| format!("HTTP/2: {e}"))?;
    // The connection is driven while we wait for the answer.
    let conn = tokio::spawn(async move {
        let _ = conn.await;
    });
    let result = async {
        let mut client = client.ready().await.map_err(|e| e.to_string())?;
        let req = http::Request::builder()
            .method("POST")
            .uri(format!("http://localhost{path}"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(())
            .map_err(|e| e.to_string())?;
        let (answer, mut send) = client.send_request(req, false).map_err(|e| e.to_string())?;
        let mut framed = Vec::with_capacity(5 + msg.len());
        framed.push(0);
        framed.extend_from_slice(&(msg.len() as u32).to_be_bytes());
        framed.extend_from_slice(&msg);
        send.send_data(framed.into(), true)
            .map_err(|e| e.to_string())?;
        let answer = answer.await.map_err(|e| e.to_string())?;
        let (head, mut body) = answer.into_parts();
        let mut data = Vec::new();
        while let Some(chunk) = body.data().await {
            let chunk = chunk.map_err(|e| e.to_string())?;
            let _ = body.flow_control().release_capacity(chunk.len());
            data.extend_from_slice(&chunk);
            if data.len() > MAX_MESSAGE + 5 {
                return Err(format!("answer larger than {MAX_MESSAGE} bytes"));
            }
        }
        let trailers = body.trailers().await.map_err(|e| e.to_string())?;
        // A trailers-only answer carries the status in the headers.
        let status = trailers
            .as_ref()
            .and_then(|t| t.get("grpc-status"))
            .or_else(|| head.headers.get("grpc-status"))
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if status != "0" {
            let message = trailers
                .as_ref()
                .and_then(|t| t.get("grpc-message"))
                .or_else(|| head.headers.get("grpc-message"))
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            return Err(if status.is_empty() {
                format!("HTTP status {} without a gRPC status", head.status)
            } else {
                format!("gRPC status {status}: {message}")
            });
        }
        unframe(&data).map(<[u8]>::to_vec)
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
