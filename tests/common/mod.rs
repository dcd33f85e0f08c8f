//! Shared helpers for tests that read the real data in `../shared`.
#![allow(dead_code)]

pub mod scap_writer;

use std::path::PathBuf;

/// The shared data folder from `CHIDS_SHARED`, or `None` (test skipped,
/// with the reason printed) when it is unset.
pub fn shared() -> Option<PathBuf> {
    match std::env::var_os("CHIDS_SHARED") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            assert!(
                dir.is_dir(),
                "CHIDS_SHARED={} is not a folder",
                dir.display()
            );
            Some(dir)
        }
        None => {
            eprintln!("skipped: CHIDS_SHARED not set (point it at the shared data folder)");
            None
        }
    }
}

/// A file under the shared folder that must exist when CHIDS_SHARED is set.
pub fn shared_file(shared: &std::path::Path, rel: &str) -> PathBuf {
    let p = shared.join(rel);
    assert!(p.exists(), "missing shared file {}", p.display());
    p
}
