//! Baselines shared through the broker: one model per workload for the
//! whole fleet.
//!
//! ```text
//! node A trains workload W ─► object store  <bucket>/<key>/<digest>/{baseline.json, model.safetensors}
//!                          └► key-value     <models-bucket>[<key>] = {version, node, time, digest, reason}
//! every agent ◄── KV watch ── a new version: fetch the two objects, check the digest, load, detect
//! ```
//!
//! The KV entry is the version record: a compare-and-set on it makes
//! versions of a workload strictly sequential whoever publishes (a trained
//! model, an accepted alert). The objects are named by the digest of their
//! content, so two publishers racing never overwrite each other's files,
//! and an entry always names files that match it. A bundle is loaded only
//! when the SHA-256 of its two files is the entry's, from its JSON and
//! safetensors files (neither format can run code), after the same checks
//! as a bundle read from disk.
//!
//! Without `--nats` (or with the broker away) the agent works alone: it
//! learns, trains and detects with its local models folder as before; the
//! fleet is an addition, never a dependency.

mod link;
mod pool;
mod pool_worker;
mod store;
mod watch;

pub use link::{FleetLink, FleetUpdate};
pub use pool::{Claim, LearningPool, PoolData, LEASE_FOR, POOL_MAX_BYTES, POOL_NODE_MAX_BYTES};
pub use store::FleetStore;
pub use watch::{FleetEvent, FleetWatch};

use serde::{Deserialize, Serialize};

/// Where the fleet's models live.
#[derive(Clone, Debug)]
pub struct FleetOptions {
    /// `nats://HOST:PORT` (or `HOST:PORT`).
    pub url: String,
    /// Key-value bucket of version records (`--models-bucket`).
    pub models_bucket: String,
    /// Object-store bucket of bundle files (`--bundles-bucket`).
    pub bundles_bucket: String,
    /// Object store of the nodes' learning data and key-value bucket of
    /// the training leases, both of this name (`--learning-bucket`; see
    /// `pool.rs`). `None`: no pooled learning, the first node to train a
    /// workload trains it for all.
    pub learning_bucket: Option<String>,
    /// This node's name, recorded with what it publishes.
    pub node: String,
}

/// A workload's model version on the broker: the KV entry's value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelVersion {
    pub workload: String,
    /// 1 for the first model, one more for each later one.
    pub version: u64,
    /// Who published it (a node name, or `accept:<who>`).
    pub node: String,
    /// When, ns since the epoch.
    pub published_ns: u64,
    /// Why: `trained`, or `accepted by <who>`.
    pub reason: String,
    /// SHA-256 (hex) over the two files: see [`bundle_digest`].
    pub digest: String,
    pub baseline_bytes: u64,
    pub weights_bytes: u64,
    /// The nodes whose learning data the model was trained on (pooled
    /// learning), in order; empty for a model of one node's data.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub learnt_from: Vec<String>,
}

/// Largest bundle file fetched from the broker: a hostile or damaged
/// entry cannot make an agent read without bound.
pub(crate) const MAX_BUNDLE_FILE: u64 = 256 << 20;

impl ModelVersion {
    /// The objects holding the bundle's files.
    pub fn objects(&self) -> [String; 2] {
        let dir = format!("{}/{}", bucket_key(&self.workload), self.digest);
        [
            format!("{dir}/{}", chids_detect::model::bundle::BASELINE_FILE),
            format!("{dir}/{}", chids_detect::model::bundle::WEIGHTS_FILE),
        ]
    }

    /// Checks a record read from the broker before anything is fetched.
    fn check(&self, workload: &str) -> Result<(), String> {
        if self.workload != workload {
            return Err(format!(
                "the entry of {workload} names workload {:?}",
                self.workload
            ));
        }
        if self.digest.len() != 64 || !self.digest.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("digest {:?} is not a SHA-256", self.digest));
        }
        if self.baseline_bytes > MAX_BUNDLE_FILE || self.weights_bytes > MAX_BUNDLE_FILE {
            return Err(format!(
                "bundle files of {} and {} bytes: more than the {MAX_BUNDLE_FILE} allowed",
                self.baseline_bytes, self.weights_bytes
            ));
        }
        Ok(())
    }
}

/// SHA-256 over the bundle's two files, each preceded by its length (so
/// no byte can move from one file to the other unnoticed), in hex.
pub fn bundle_digest(baseline: &[u8], weights: &[u8]) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for part in [baseline, weights] {
        ctx.update(&(part.len() as u64).to_be_bytes());
        ctx.update(part);
    }
    ctx.finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A workload's key in the buckets: the KV key rules allow letters,
/// digits, `-`, `_`, `/`, `=` and inner dots; image names have `:` and
/// more. Letters, digits, `-` and `_` stay, every other byte becomes
/// `=HH` (its hex), so the mapping is one to one and readable.
pub fn bucket_key(workload: &str) -> String {
    let mut key = String::with_capacity(workload.len() + 8);
    for b in workload.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            key.push(b as char);
        } else {
            key.push_str(&format!("={b:02X}"));
        }
    }
    if key.is_empty() {
        key.push('=');
    }
    key
}

/// The name [`bucket_key`] was made from; `None` for a string it cannot
/// have made.
pub fn from_bucket_key(key: &str) -> Option<String> {
    let mut out = Vec::with_capacity(key.len());
    let mut bytes = key.bytes();
    while let Some(b) = bytes.next() {
        if b == b'=' {
            let hex = [bytes.next()?, bytes.next()?];
            let hex = std::str::from_utf8(&hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
        } else if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            out.push(b);
        } else {
            return None;
        }
    }
    String::from_utf8(out).ok()
}

/// Nanoseconds since the epoch, now.
fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_keys_are_valid_and_one_to_one() {
        assert_eq!(bucket_key("web"), "web");
        assert_eq!(
            bucket_key("docker.io/library/nginx:1.25"),
            "docker=2Eio=2Flibrary=2Fnginx=3A1=2E25"
        );
        assert_ne!(bucket_key("a/b"), bucket_key("a_b"));
        assert_ne!(bucket_key("a=2Fb"), bucket_key("a/b"));
        assert_eq!(bucket_key(""), "=");
        for name in ["docker.io/library/nginx:1.25", "node-a", "a=b", "é"] {
            assert_eq!(from_bucket_key(&bucket_key(name)).as_deref(), Some(name));
        }
        assert_eq!(from_bucket_key("a.b"), None);
        assert_eq!(from_bucket_key("a=4"), None);
        assert_eq!(from_bucket_key("=ZZ"), None);
    }

    #[test]
    fn the_digest_covers_where_the_files_split() {
        assert_ne!(bundle_digest(b"ab", b"c"), bundle_digest(b"a", b"bc"));
        assert_eq!(bundle_digest(b"x", b"y").len(), 64);
    }
}
