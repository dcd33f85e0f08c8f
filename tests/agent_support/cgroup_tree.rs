//! A cgroup subtree per simulated node: an agent watches it with
//! `--cgroup-root`, podman `--cgroup-parent` puts the node's containers in it.

use std::path::{Path, PathBuf};

use super::{podman, podman_ok, Container};

/// A cgroup folder made for one node, in every hierarchy podman fills
/// (removed, deepest first, on drop: after the containers in it).
pub struct CgroupTree {
    pub name: String,
    pub root: PathBuf,
}

impl CgroupTree {
    pub fn new(name: &str) -> CgroupTree {
        let cg2 = chids_live::cgroup::cgroup2_root().expect("a cgroup v2 mount");
        let root = cg2.join(name);
        std::fs::create_dir(&root).unwrap_or_else(|e| panic!("{}: {e}", root.display()));
        CgroupTree {
            name: name.to_string(),
            root,
        }
    }

    /// `podman run -d --cgroup-parent` of `sh -c script`, under this tree.
    pub fn run(&self, name: &str, image: &str, script: &str) -> Container {
        self.run_with(name, image, script, &[])
    }

    /// As [`CgroupTree::run`], with more `podman run` options (`-e K=V`).
    pub fn run_with(&self, name: &str, image: &str, script: &str, options: &[&str]) -> Container {
        let _ = podman(&["rm", "-f", "-t", "0", name]);
        let parent = format!("/{}", self.name);
        let id = podman_ok(
            &[
                &["run"][..],
                options,
                &[
                    "-d",
                    "--name",
                    name,
                    "--cgroup-parent",
                    &parent,
                    "--network",
                    "none",
                    "--ulimit",
                    "nofile=1024:1024",
                    "--ulimit",
                    "nproc=1000:1000",
                    image,
                    "sh",
                    "-c",
                    script,
                ],
            ]
            .concat(),
        );
        Container {
            name: name.to_string(),
            id,
        }
    }
}

impl Drop for CgroupTree {
    fn drop(&mut self) {
        // cgroup v1 hierarchies (hybrid hosts) get the folder too.
        let Ok(mounts) = std::fs::read_dir("/sys/fs/cgroup") else {
            return;
        };
        let mut tops: Vec<PathBuf> = mounts
            .flatten()
            .map(|m| m.path().join(&self.name))
            .collect();
        tops.push(self.root.clone());
        for top in tops {
            remove_cgroup(&top);
        }
    }
}

/// rmdir of a cgroup folder and the folders below it, deepest first.
fn remove_cgroup(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            remove_cgroup(&e.path());
        }
    }
    let _ = std::fs::remove_dir(dir);
}
