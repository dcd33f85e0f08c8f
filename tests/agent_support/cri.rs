//! A real containerd with its CRI plugin, in a folder of its own (own
//! root, state and socket: nothing shared with a containerd of the host),
//! and the CRI calls the kubelet makes to run a pod: sandbox in the host's
//! network namespace (no CNI needed), one container, exec in it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chids_agent::cri::CriClient;

use super::wait_for;

/// `runtime.v1` messages the kubelet sends (only the fields used here;
/// numbers from the CRI's api.proto).
pub mod msg {
    use std::collections::HashMap;

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

    /// NODE (2): the host's namespace.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct NamespaceOption {
        #[prost(int32, tag = "1")]
        pub network: i32,
        #[prost(int32, tag = "2")]
        pub pid: i32,
        #[prost(int32, tag = "3")]
        pub ipc: i32,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct LinuxSandboxSecurityContext {
        #[prost(message, optional, tag = "1")]
        pub namespace_options: Option<NamespaceOption>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct LinuxPodSandboxConfig {
        #[prost(string, tag = "1")]
        pub cgroup_parent: String,
        #[prost(message, optional, tag = "2")]
        pub security_context: Option<LinuxSandboxSecurityContext>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PodSandboxConfig {
        #[prost(message, optional, tag = "1")]
        pub metadata: Option<PodSandboxMetadata>,
        #[prost(string, tag = "2")]
        pub hostname: String,
        #[prost(map = "string, string", tag = "6")]
        pub labels: HashMap<String, String>,
        #[prost(message, optional, tag = "8")]
        pub linux: Option<LinuxPodSandboxConfig>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct RunPodSandboxRequest {
        #[prost(message, optional, tag = "1")]
        pub config: Option<PodSandboxConfig>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct RunPodSandboxResponse {
        #[prost(string, tag = "1")]
        pub pod_sandbox_id: String,
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
    pub struct ContainerConfig {
        #[prost(message, optional, tag = "1")]
        pub metadata: Option<ContainerMetadata>,
        #[prost(message, optional, tag = "2")]
        pub image: Option<ImageSpec>,
        #[prost(string, repeated, tag = "3")]
        pub command: Vec<String>,
        #[prost(string, repeated, tag = "4")]
        pub args: Vec<String>,
        #[prost(map = "string, string", tag = "9")]
        pub labels: HashMap<String, String>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct CreateContainerRequest {
        #[prost(string, tag = "1")]
        pub pod_sandbox_id: String,
        #[prost(message, optional, tag = "2")]
        pub config: Option<ContainerConfig>,
        #[prost(message, optional, tag = "3")]
        pub sandbox_config: Option<PodSandboxConfig>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct CreateContainerResponse {
        #[prost(string, tag = "1")]
        pub container_id: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ContainerId {
        #[prost(string, tag = "1")]
        pub container_id: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct SandboxId {
        #[prost(string, tag = "1")]
        pub pod_sandbox_id: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Empty {}

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ExecSyncRequest {
        #[prost(string, tag = "1")]
        pub container_id: String,
        #[prost(string, repeated, tag = "2")]
        pub cmd: Vec<String>,
        #[prost(int64, tag = "3")]
        pub timeout: i64,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ExecSyncResponse {
        #[prost(bytes = "vec", tag = "1")]
        pub stdout: Vec<u8>,
        #[prost(bytes = "vec", tag = "2")]
        pub stderr: Vec<u8>,
        #[prost(int32, tag = "3")]
        pub exit_code: i32,
    }
}

/// Why containerd cannot run here, if it cannot.
pub fn skip_reason() -> Option<String> {
    ["containerd", "ctr", "containerd-shim-runc-v2"]
        .into_iter()
        .find(|t| !Path::new("/usr/bin").join(t).exists())
        .map(|t| format!("{t} not installed (scripts/install-test-deps.sh)"))
}

/// containerd laid out as on a host, under `host`: state and socket in
/// `run/containerd`, content in `var/lib/containerd` (killed, its pods
/// removed, on drop).
pub struct Containerd {
    child: Option<Child>,
    pub dir: PathBuf,
    pub socket: PathBuf,
    pub client: CriClient,
    sandboxes: Vec<String>,
}

impl Containerd {
    /// Starts containerd with `sandbox_image` (already imported, see
    /// [`Containerd::import`]) as the pods' pause image.
    pub fn start(host: &Path, sandbox_image: &str) -> Containerd {
        let dir = &host.join("run/containerd");
        std::fs::create_dir_all(dir).unwrap();
        let socket = dir.join("containerd.sock");
        let config = dir.join("config.toml");
        let (d, h) = (dir.display(), host.display());
        std::fs::write(
            &config,
            format!(
                r#"version = 2
root = "{h}/var/lib/containerd"
state = "{d}"
[grpc]
  address = "{d}/containerd.sock"
[ttrpc]
  address = "{d}/containerd.sock.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{sandbox_image}"
  disable_apparmor = true
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{h}/opt/cni/bin"
    conf_dir = "{h}/etc/cni/net.d"
"#
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("containerd.log")).unwrap();
        let child = Command::new("containerd")
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start containerd");
        let mut client = wait_for("containerd's CRI socket", Duration::from_secs(30), || {
            CriClient::connect(&socket).ok()
        });
        // Starting a pod (its shim, the pause container) takes seconds.
        client.set_timeout(Duration::from_secs(60));
        Containerd {
            child: Some(child),
            dir: dir.to_path_buf(),
            socket,
            client,
            sandboxes: Vec::new(),
        }
    }

    /// Imports podman's image `name` into containerd's `k8s.io` namespace.
    pub fn import(&self, name: &str) {
        let tar = self.dir.join("image.tar");
        let _ = std::fs::remove_file(&tar);
        super::podman_ok(&[
            "save",
            "--format",
            "docker-archive",
            "-o",
            tar.to_str().unwrap(),
            name,
        ]);
        let out = Command::new("ctr")
            .arg("--address")
            .arg(&self.socket)
            .args(["--namespace", "k8s.io", "images", "import"])
            .arg(&tar)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ctr import: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Runs pod `namespace/pod` (cgroupfs parent `kubepods/besteffort/pod<uid>`,
    /// host network) with one container `container` of `image` running
    /// `sh -c script`, labelled as the kubelet labels them. Returns the
    /// container's id.
    pub fn run_pod(
        &mut self,
        namespace: &str,
        pod: &str,
        container: &str,
        image: &str,
        script: &str,
    ) -> String {
        let uid = format!(
            "{:08x}-chids-test-{}",
            std::process::id(),
            self.sandboxes.len()
        );
        let sandbox = msg::PodSandboxConfig {
            metadata: Some(msg::PodSandboxMetadata {
                name: pod.into(),
                uid: uid.clone(),
                namespace: namespace.into(),
                attempt: 0,
            }),
            // The host's network namespace comes with its UTS namespace:
            // no hostname of the pod's own.
            hostname: String::new(),
            labels: HashMap::from([
                ("io.kubernetes.pod.name".to_string(), pod.to_string()),
                (
                    "io.kubernetes.pod.namespace".to_string(),
                    namespace.to_string(),
                ),
                ("io.kubernetes.pod.uid".to_string(), uid.clone()),
            ]),
            linux: Some(msg::LinuxPodSandboxConfig {
                cgroup_parent: format!("/kubepods/besteffort/pod{uid}"),
                security_context: Some(msg::LinuxSandboxSecurityContext {
                    namespace_options: Some(msg::NamespaceOption {
                        network: 2,
                        pid: 1,
                        ipc: 0,
                    }),
                }),
            }),
        };
        let r: msg::RunPodSandboxResponse = self
            .client
            .call(
                "RunPodSandbox",
                &msg::RunPodSandboxRequest {
                    config: Some(sandbox.clone()),
                },
            )
            .unwrap();
        self.sandboxes.push(r.pod_sandbox_id.clone());
        let c: msg::CreateContainerResponse = self
            .client
            .call(
                "CreateContainer",
                &msg::CreateContainerRequest {
                    pod_sandbox_id: r.pod_sandbox_id,
                    config: Some(msg::ContainerConfig {
                        metadata: Some(msg::ContainerMetadata {
                            name: container.into(),
                            attempt: 0,
                        }),
                        image: Some(msg::ImageSpec {
                            image: image.into(),
                        }),
                        command: vec!["sh".into(), "-c".into(), script.into()],
                        args: vec![],
                        labels: HashMap::from([
                            ("io.kubernetes.pod.name".to_string(), pod.to_string()),
                            (
                                "io.kubernetes.pod.namespace".to_string(),
                                namespace.to_string(),
                            ),
                            ("io.kubernetes.pod.uid".to_string(), uid),
                            (
                                "io.kubernetes.container.name".to_string(),
                                container.to_string(),
                            ),
                        ]),
                    }),
                    sandbox_config: Some(sandbox),
                },
            )
            .unwrap();
        let _: msg::Empty = self
            .client
            .call(
                "StartContainer",
                &msg::ContainerId {
                    container_id: c.container_id.clone(),
                },
            )
            .unwrap();
        c.container_id
    }

    /// `sh -c script` in the container; its exit code.
    pub fn exec(&self, container_id: &str, script: &str) -> i32 {
        let r: msg::ExecSyncResponse = self
            .client
            .call(
                "ExecSync",
                &msg::ExecSyncRequest {
                    container_id: container_id.into(),
                    cmd: vec!["sh".into(), "-c".into(), script.into()],
                    timeout: 30,
                },
            )
            .unwrap();
        r.exit_code
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        for id in self.sandboxes.drain(..) {
            let req = msg::SandboxId { pod_sandbox_id: id };
            let _: Result<msg::Empty, _> = self.client.call("StopPodSandbox", &req);
            let _: Result<msg::Empty, _> = self.client.call("RemovePodSandbox", &req);
        }
        if let Some(mut c) = self.child.take() {
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let _ = c.wait();
        }
    }
}
