//! Who a container is: name, image and (on Kubernetes) namespace, pod and
//! container name, read from the runtimes' own state on disk.
//!
//! Every runtime keeps what it knows about a container in files a root
//! process can read, so the agent needs no API client:
//!
//! - the OCI bundle's `config.json` (containerd under
//!   `/run/containerd/io.containerd.runtime.v2.task/<ns>/<id>/`, CRI-O and
//!   podman under `/run/containers/storage/overlay-containers/<id>/userdata/`):
//!   the CRI annotations name the pod, its namespace, the container and
//!   the image;
//! - containers/storage (podman, CRI-O):
//!   `/var/lib/containers/storage/overlay-containers/containers.json` has
//!   names and the image, `overlay-images/images.json` the image's names;
//! - docker: `/var/lib/docker/containers/<id>/config.v2.json`.
//!
//! In a DaemonSet these live under a host mount: `host_root` prefixes them.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::discovery::Runtime;
use crate::host_file;

/// What the agent knows about a container. Missing facts stay `None`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Identity {
    pub runtime: String,
    /// Full container id.
    pub id: String,
    pub name: Option<String>,
    pub image: Option<String>,
    pub namespace: Option<String>,
    pub pod: Option<String>,
    pub k8s_container: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

impl Identity {
    /// The short id (12 digits), as runtimes print it.
    pub(crate) fn short_id(&self) -> &str {
        &self.id[..self.id.len().min(12)]
    }

    /// The name to show: the container's name, else its short id.
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or_else(|| self.short_id())
    }

    /// True when nothing beyond the id was found.
    pub(crate) fn is_bare(&self) -> bool {
        self.name.is_none() && self.image.is_none()
    }
}

/// State files larger than this are not read (hostile or broken hosts must
/// not make the agent allocate without bound).
const MAX_STATE_FILE: u64 = 64 << 20;

fn string(v: &Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Files whose trouble is said at most (each once).
const MAX_SAID: usize = 1000;

/// Looks up container identities under a host root.
pub(crate) struct Resolver {
    host_root: PathBuf,
    /// What went wrong reading state files, for the log (see [`Resolver::take_log`]).
    log: RefCell<Vec<String>>,
    /// Files already said (a planted FIFO is said once, not per container).
    said: RefCell<HashSet<PathBuf>>,
}

impl Resolver {
    pub fn new(host_root: &Path) -> Resolver {
        Resolver {
            host_root: host_root.to_path_buf(),
            log: RefCell::default(),
            said: RefCell::default(),
        }
    }

    /// Lines about state files that could not be used since the last call.
    pub(crate) fn take_log(&self) -> Vec<String> {
        std::mem::take(&mut *self.log.borrow_mut())
    }

    /// A runtime state file as JSON (see [`host_file`]: a FIFO, link or
    /// device planted there is refused, the read bounded). A file that is
    /// not there is nothing to say; any other trouble is said once per file.
    fn read_json(&self, path: &Path) -> Option<Value> {
        let failed = match host_file::read_bounded(path, MAX_STATE_FILE) {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(v) => return Some(v),
                Err(e) => format!("line {} column {}: {e}", e.line(), e.column()),
            },
            Err(e) if host_file::is_absent(&e) => return None,
            Err(e) => e.to_string(),
        };
        let mut said = self.said.borrow_mut();
        if said.len() < MAX_SAID && said.insert(path.to_path_buf()) {
            self.log.borrow_mut().push(format!(
                "identity: {}: {failed}; not used (said once per file)",
                path.display()
            ));
        }
        None
    }

    fn host(&self, p: &str) -> PathBuf {
        self.host_root.join(p.trim_start_matches('/'))
    }

    /// Everything the runtime's state says about container `id`. Returns
    /// the bare id when nothing is found (the caller says so once).
    pub fn resolve(&self, runtime: Runtime, id: &str) -> Identity {
        let mut ident = Identity {
            runtime: runtime.as_str().to_string(),
            id: id.to_string(),
            ..Identity::default()
        };
        if let Some(oci) = self.oci_config(id) {
            apply_annotations(&mut ident, &oci);
        }
        match runtime {
            Runtime::Podman | Runtime::Crio => self.containers_storage(&mut ident),
            Runtime::Docker => self.docker(&mut ident),
            Runtime::Containerd => {}
        }
        ident
    }

    fn oci_config(&self, id: &str) -> Option<Value> {
        let mut candidates = vec![self.host(&format!(
            "run/containers/storage/overlay-containers/{id}/userdata/config.json"
        ))];
        let tasks = self.host("run/containerd/io.containerd.runtime.v2.task");
        if let Ok(namespaces) = std::fs::read_dir(&tasks) {
            for ns in namespaces.flatten() {
                candidates.push(ns.path().join(id).join("config.json"));
            }
        }
        candidates.iter().find_map(|p| self.read_json(p))
    }

    /// podman and CRI-O share containers/storage.
    fn containers_storage(&self, ident: &mut Identity) {
        let storage = self.host("var/lib/containers/storage");
        let Some(Value::Array(all)) =
            self.read_json(&storage.join("overlay-containers/containers.json"))
        else {
            return;
        };
        let Some(c) = all
            .iter()
            .find(|c| c.get("id").and_then(Value::as_str) == Some(&ident.id))
        else {
            return;
        };
        // `metadata` is itself JSON, as a string.
        let meta: Value = c
            .get("metadata")
            .and_then(Value::as_str)
            .and_then(|m| serde_json::from_str(m).ok())
            .unwrap_or(Value::Null);
        if ident.name.is_none() {
            ident.name = string(&meta, "name").or_else(|| {
                c.get("names")
                    .and_then(|n| n.get(0))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            });
        }
        if ident.image.is_none() {
            ident.image = string(&meta, "image-name");
        }
        if ident.image.is_none() {
            if let Some(image_id) = string(c, "image") {
                ident.image = self.image_name(&storage, &image_id).or(Some(image_id));
            }
        }
    }

    fn image_name(&self, storage: &Path, image_id: &str) -> Option<String> {
        let Value::Array(images) = self.read_json(&storage.join("overlay-images/images.json"))?
        else {
            return None;
        };
        images
            .iter()
            .find(|i| i.get("id").and_then(Value::as_str) == Some(image_id))
            .and_then(|i| i.get("names"))
            .and_then(|n| n.get(0))
            .and_then(Value::as_str)
            .map(str::to_owned)
    }

    fn docker(&self, ident: &mut Identity) {
        let path = self.host(&format!(
            "var/lib/docker/containers/{}/config.v2.json",
            ident.id
        ));
        let Some(v) = self.read_json(&path) else {
            return;
        };
        let parsed: DockerConfig = match serde_json::from_value(v) {
            Ok(p) => p,
            Err(_) => return,
        };
        if ident.name.is_none() {
            ident.name = parsed
                .name
                .map(|n| n.trim_start_matches('/').to_string())
                .filter(|n| !n.is_empty());
        }
        if let Some(cfg) = parsed.config {
            if ident.image.is_none() {
                ident.image = cfg.image.filter(|i| !i.is_empty());
            }
            let labels = cfg.labels.unwrap_or_default();
            // Kubernetes on docker (dockershim, cri-dockerd) labels its containers.
            let label = |k: &str| labels.get(k).filter(|v| !v.is_empty()).cloned();
            ident.namespace = ident
                .namespace
                .take()
                .or_else(|| label("io.kubernetes.pod.namespace"));
            ident.pod = ident.pod.take().or_else(|| label("io.kubernetes.pod.name"));
            ident.k8s_container = ident
                .k8s_container
                .take()
                .or_else(|| label("io.kubernetes.container.name"));
            ident.labels.extend(labels);
        }
    }
}

#[derive(Deserialize)]
struct DockerConfig {
    #[serde(rename = "Name")]
    name: Option<String>,
    #[serde(rename = "Config")]
    config: Option<DockerInner>,
}

#[derive(Deserialize)]
struct DockerInner {
    #[serde(rename = "Image")]
    image: Option<String>,
    #[serde(rename = "Labels")]
    labels: Option<BTreeMap<String, String>>,
}

/// The CRI annotations containerd and CRI-O write into the OCI spec.
fn apply_annotations(ident: &mut Identity, oci: &Value) {
    let Some(Value::Object(ann)) = oci.get("annotations") else {
        return;
    };
    let get = |keys: &[&str]| {
        keys.iter().find_map(|k| {
            ann.get(*k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        })
    };
    ident.namespace = get(&[
        "io.kubernetes.cri.sandbox-namespace",
        "io.kubernetes.pod.namespace",
    ]);
    ident.pod = get(&["io.kubernetes.cri.sandbox-name", "io.kubernetes.pod.name"]);
    ident.k8s_container = get(&[
        "io.kubernetes.cri.container-name",
        "io.kubernetes.container.name",
    ]);
    ident.image = get(&[
        "io.kubernetes.cri.image-name",
        "io.kubernetes.cri-o.ImageName",
    ]);
    // CRI-O keeps the container's labels as one JSON string.
    if let Some(labels) = get(&["io.kubernetes.cri-o.Labels"]) {
        if let Ok(map) = serde_json::from_str::<BTreeMap<String, String>>(&labels) {
            ident.labels.extend(map);
        }
    }
    if ident.name.is_none() {
        // Kubernetes has no container "name" beyond pod/container; show both.
        ident.name = match (&ident.pod, &ident.k8s_container) {
            (Some(p), Some(c)) => Some(format!("{p}/{c}")),
            _ => get(&["io.kubernetes.cri-o.ContainerName"]),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "5903aa838cb9d13d99590c5dd8e49275348b480a4e228aaeab7201ffa8976c0a";
    const IMG: &str = "ba12e1531bacad6b852a4435c55d21a016af43f44614e6b8c5e012a0c8bfe444";

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn a_planted_fifo_or_link_is_refused_at_once_and_said_once() {
        let dir = tempfile::tempdir().unwrap();
        let storage = dir
            .path()
            .join("var/lib/containers/storage/overlay-containers");
        std::fs::create_dir_all(&storage).unwrap();
        let fifo = storage.join("containers.json");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let secret = dir.path().join("secret.json");
        std::fs::write(&secret, r#"{"annotations":{"io.kubernetes.pod.name":"x"}}"#).unwrap();
        let bundle = dir.path().join(format!(
            "run/containers/storage/overlay-containers/{ID}/userdata"
        ));
        std::fs::create_dir_all(&bundle).unwrap();
        std::os::unix::fs::symlink(&secret, bundle.join("config.json")).unwrap();
        let r = Resolver::new(dir.path());
        for _ in 0..3 {
            // A plain open of the FIFO would block this thread for ever.
            let id = r.resolve(Runtime::Podman, ID);
            assert!(id.is_bare(), "{id:?}");
            assert_eq!(id.pod, None, "the link was followed: {id:?}");
        }
        let log = r.take_log();
        assert_eq!(log.len(), 2, "each file said once: {log:?}");
        assert!(
            log.iter()
                .any(|l| l.contains("containers.json") && l.contains("a FIFO")),
            "{log:?}"
        );
        assert!(
            log.iter()
                .any(|l| l.contains("config.json") && l.contains("symbolic link")),
            "{log:?}"
        );
    }

    #[test]
    fn podman_from_containers_storage() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "var/lib/containers/storage/overlay-containers/containers.json",
            &format!(
                r#"[{{"id":"{ID}","names":["web1"],"image":"{IMG}","metadata":"{{\"image-name\":\"localhost/web:latest\",\"name\":\"web1\"}}"}}]"#
            ),
        );
        let id = Resolver::new(dir.path()).resolve(Runtime::Podman, ID);
        assert_eq!(id.name.as_deref(), Some("web1"));
        assert_eq!(id.image.as_deref(), Some("localhost/web:latest"));
        assert_eq!(id.runtime, "podman");
        assert_eq!(id.short_id(), "5903aa838cb9");
    }

    #[test]
    fn podman_image_name_from_images_json() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "var/lib/containers/storage/overlay-containers/containers.json",
            &format!(r#"[{{"id":"{ID}","names":["db"],"image":"{IMG}"}}]"#),
        );
        write(
            dir.path(),
            "var/lib/containers/storage/overlay-images/images.json",
            &format!(r#"[{{"id":"{IMG}","names":["localhost/db:1"]}}]"#),
        );
        let id = Resolver::new(dir.path()).resolve(Runtime::Podman, ID);
        assert_eq!(id.name.as_deref(), Some("db"));
        assert_eq!(id.image.as_deref(), Some("localhost/db:1"));
    }

    #[test]
    fn containerd_kubernetes_annotations() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            &format!("run/containerd/io.containerd.runtime.v2.task/k8s.io/{ID}/config.json"),
            r#"{"ociVersion":"1.1.0","annotations":{
                "io.kubernetes.cri.container-type":"container",
                "io.kubernetes.cri.container-name":"nginx",
                "io.kubernetes.cri.sandbox-name":"web-7d4b9c-xk2lp",
                "io.kubernetes.cri.sandbox-namespace":"shop",
                "io.kubernetes.cri.image-name":"docker.io/library/nginx:1.25"}}"#,
        );
        let id = Resolver::new(dir.path()).resolve(Runtime::Containerd, ID);
        assert_eq!(id.namespace.as_deref(), Some("shop"));
        assert_eq!(id.pod.as_deref(), Some("web-7d4b9c-xk2lp"));
        assert_eq!(id.k8s_container.as_deref(), Some("nginx"));
        assert_eq!(id.image.as_deref(), Some("docker.io/library/nginx:1.25"));
        assert_eq!(id.name.as_deref(), Some("web-7d4b9c-xk2lp/nginx"));
    }

    #[test]
    fn crio_annotations_and_labels() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            &format!("run/containers/storage/overlay-containers/{ID}/userdata/config.json"),
            r#"{"annotations":{
                "io.kubernetes.container.name":"api",
                "io.kubernetes.pod.name":"api-0",
                "io.kubernetes.pod.namespace":"prod",
                "io.kubernetes.cri-o.ImageName":"quay.io/acme/api:2",
                "io.kubernetes.cri-o.Labels":"{\"app\":\"api\",\"tier\":\"back\"}"}}"#,
        );
        let id = Resolver::new(dir.path()).resolve(Runtime::Crio, ID);
        assert_eq!(id.namespace.as_deref(), Some("prod"));
        assert_eq!(id.image.as_deref(), Some("quay.io/acme/api:2"));
        assert_eq!(id.labels.get("app").map(String::as_str), Some("api"));
    }

    #[test]
    fn docker_config() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            &format!("var/lib/docker/containers/{ID}/config.v2.json"),
            r#"{"Name":"/cache","Config":{"Image":"redis:7","Labels":{"team":"blue"}}}"#,
        );
        let id = Resolver::new(dir.path()).resolve(Runtime::Docker, ID);
        assert_eq!(id.name.as_deref(), Some("cache"));
        assert_eq!(id.image.as_deref(), Some("redis:7"));
        assert_eq!(id.labels.get("team").map(String::as_str), Some("blue"));
    }

    #[test]
    fn nothing_found_is_the_bare_id() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "var/lib/containers/storage/overlay-containers/containers.json",
            "not json at all",
        );
        let id = Resolver::new(dir.path()).resolve(Runtime::Podman, ID);
        assert!(id.is_bare());
        assert_eq!(id.display_name(), "5903aa838cb9");
    }
}
