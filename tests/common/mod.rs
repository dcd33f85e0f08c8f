//! Shared helpers for tests that read the real data in `../shared`.
#![allow(dead_code)]

pub mod scap_writer;

use std::path::PathBuf;

/// The shared data folder from `CHIDS_SHARED`. Tests that read it are
/// `#[ignore = "needs CHIDS_SHARED (shared data)"]`: a plain `cargo test`
/// lists them as ignored, and when they are asked for
/// (`--include-ignored`, as `.ci/run` does) a missing folder fails them.
pub fn shared() -> PathBuf {
    let dir = std::env::var_os("CHIDS_SHARED")
        .map(PathBuf::from)
        .expect("CHIDS_SHARED is not set: point it at the shared data folder");
    assert!(
        dir.is_dir(),
        "CHIDS_SHARED={} is not a folder",
        dir.display()
    );
    dir
}

/// A file under the shared folder that must exist when CHIDS_SHARED is set.
pub fn shared_file(shared: &std::path::Path, rel: &str) -> PathBuf {
    let p = shared.join(rel);
    assert!(p.exists(), "missing shared file {}", p.display());
    p
}
