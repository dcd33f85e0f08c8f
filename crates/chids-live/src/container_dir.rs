//! Container cgroup folders: which runtime made one and for which
//! container id. One parser for the agent's discovery and for
//! `--container ID` look-ups.

use std::path::Path;

/// Which runtime a cgroup layout belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    Podman,
    Docker,
    Containerd,
    #[serde(rename = "cri-o")]
    Crio,
}

impl Runtime {
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Podman => "podman",
            Runtime::Docker => "docker",
            Runtime::Containerd => "containerd",
            Runtime::Crio => "cri-o",
        }
    }
}

/// A container's cgroup directory, as found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerDir {
    pub runtime: Runtime,
    /// The full 64-hex-digit container id, lower case.
    pub id: String,
}

fn is_full_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The runtime's prefixes of container folder names (before the id).
const PREFIXES: [(&str, Runtime); 5] = [
    ("libpod-", Runtime::Podman),
    ("docker-", Runtime::Docker),
    ("cri-containerd-", Runtime::Containerd),
    // containerd without CRI (nerdctl, ctr) under the systemd driver.
    ("containerd-", Runtime::Containerd),
    ("crio-", Runtime::Crio),
];

/// The container id a cgroup folder name carries, with the runtime its
/// prefix names (`None` for a bare id, whose runtime only the folder's
/// place tells): `libpod-<id>`, `docker-<id>.scope`, `<id>`, ...
pub fn container_id_in(name: &str) -> Option<(Option<Runtime>, &str)> {
    let stem = name.strip_suffix(".scope").unwrap_or(name);
    for (prefix, runtime) in PREFIXES {
        if let Some(id) = stem.strip_prefix(prefix) {
            return is_full_id(id).then_some((Some(runtime), id));
        }
    }
    (is_full_id(stem) && stem == name).then_some((None, stem))
}

/// The container a cgroup directory stands for, from its path relative to
/// the cgroup v2 root:
///
/// | runtime    | cgroupfs driver                      | systemd driver                                  |
/// |------------|--------------------------------------|-------------------------------------------------|
/// | podman     | `libpod_parent/libpod-<id>`          | `machine.slice/libpod-<id>.scope`               |
/// | docker     | `docker/<id>`                        | `system.slice/docker-<id>.scope`                |
/// | containerd | `kubepods/burstable/pod<uid>/<id>`   | `kubepods.slice/…/cri-containerd-<id>.scope`    |
/// | CRI-O      | `kubepods/…/pod<uid>/crio-<id>`      | `kubepods.slice/…/crio-<id>.scope`              |
///
/// Monitor processes (`libpod-conmon-<id>`, `crio-conmon-<id>`) are not
/// containers.
pub fn parse_container_dir(rel: &Path) -> Option<ContainerDir> {
    let (runtime, id) = container_id_in(rel.file_name()?.to_str()?)?;
    let runtime = match runtime {
        Some(r) => r,
        // A bare id: its runtime is told by where it sits.
        None => {
            let first = rel.parent()?.components().next()?.as_os_str().to_str()?;
            if first == "docker" {
                Runtime::Docker
            } else if first.starts_with("kubepods") {
                // The cgroupfs driver of the kubelet with containerd (CRI-O
                // prefixes its directories with `crio-`).
                Runtime::Containerd
            } else {
                return None;
            }
        }
    };
    Some(ContainerDir {
        runtime,
        id: id.to_ascii_lowercase(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_name_the_runtime_and_bare_ids_do_not() {
        let id = "ab".repeat(32);
        assert_eq!(
            container_id_in(&format!("libpod-{id}")),
            Some((Some(Runtime::Podman), id.as_str()))
        );
        assert_eq!(
            container_id_in(&format!("cri-containerd-{id}.scope")),
            Some((Some(Runtime::Containerd), id.as_str()))
        );
        assert_eq!(container_id_in(&id), Some((None, id.as_str())));
        assert_eq!(container_id_in(&format!("libpod-conmon-{id}")), None);
        assert_eq!(container_id_in(&format!("{id}.scope")), None);
        assert_eq!(container_id_in("libpod-abc"), None);
    }
}
