//! Pooled learning on the broker: every node learning a workload uploads
//! its learning segments; the first whose learning period ends takes the
//! workload's training lease and trains one model on every node's data.
//!
//! ```text
//! object store <learning-bucket>   <key>/<node key>/<segment>.sc   (each node's learning data)
//! key-value    <learning-bucket>   <key> = {node, expires_ns}      (the training lease)
//! ```
//!
//! The lease is taken with a create-only put (the broker decides who got
//! it); a lease past its expiry, or released, is taken over with a
//! compare-and-set on its revision, so a trainer that died is replaced.
//! The pool is read in one fixed order (node key, then segment file name)
//! into files numbered in that order, so the same pooled data give the
//! same model bit for bit.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_nats::jetstream::{self, kv, object_store};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;

use super::{bucket_key, now_ns, FleetOptions};

/// How long a call to the broker may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(20);
/// A training lease lasts this long: a trainer that dies holds the pool
/// up at most this long (the other nodes learn on meanwhile).
pub const LEASE_FOR: Duration = Duration::from_secs(30 * 60);
/// Learning data one node uploads per workload, at most.
pub const POOL_NODE_MAX_BYTES: u64 = 64 << 20;
/// Learning data a trainer reads from the pool, at most (nodes in order,
/// until the bound).
pub const POOL_MAX_BYTES: u64 = 512 << 20;

/// The lease record: who trains the workload, until when.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Lease {
    node: String,
    expires_ns: u64,
}

/// What a node asking for the training lease got.
#[derive(Clone, Debug, PartialEq)]
pub enum Claim {
    /// This node trains the pool.
    Taken,
    /// Another node holds the lease (its name).
    HeldBy(String),
    /// The fleet has a model of the workload already (its version).
    Trained(u64),
}

/// The pool's files read for training: where, and whose.
#[derive(Clone, Debug, PartialEq)]
pub struct PoolData {
    /// The nodes whose data are in it, in order.
    pub nodes: Vec<String>,
    pub files: usize,
    pub bytes: u64,
    /// Objects left out past [`POOL_MAX_BYTES`].
    pub left_out: usize,
}

/// The learning pool as blocking calls (a current-thread runtime of its
/// own, like [`super::FleetStore`]).
pub struct LearningPool {
    rt: tokio::runtime::Runtime,
    leases: kv::Store,
    objects: object_store::ObjectStore,
    js: jetstream::Context,
    models_bucket: String,
    node: String,
    /// Bytes of each local file already uploaded (by path).
    uploaded: HashMap<PathBuf, u64>,
}

impl LearningPool {
    /// Connects; the learning bucket (an object store and a key-value
    /// bucket of the same name) is created when missing.
    pub fn connect(opts: &FleetOptions) -> Result<LearningPool, String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("start the NATS runtime: {e}"))?;
        let bucket = opts
            .learning_bucket
            .clone()
            .ok_or("no learning bucket given (pooled learning is off)")?;
        let (js, leases, objects) = rt.block_on(async {
            tokio::time::timeout(CALL_TIMEOUT, open(&opts.url, &bucket))
                .await
                .map_err(|_| format!("NATS {}: no answer in {CALL_TIMEOUT:?}", opts.url))?
        })?;
        Ok(LearningPool {
            rt,
            leases,
            objects,
            js,
            models_bucket: opts.models_bucket.clone(),
            node: opts.node.clone(),
            uploaded: HashMap::new(),
        })
    }

    fn call<T>(
        &self,
        what: &str,
        f: impl std::future::Future<Output = Result<T, String>>,
    ) -> Result<T, String> {
        self.rt.block_on(async {
            tokio::time::timeout(CALL_TIMEOUT, f)
                .await
                .map_err(|_| format!("{what}: no answer in {CALL_TIMEOUT:?}"))?
        })
    }

    /// Uploads the `.sc` files of `dir` that grew since their last upload
    /// (up to their last whole line; files past this node's
    /// [`POOL_NODE_MAX_BYTES`] are not). Returns how many were put.
    pub fn upload(&mut self, workload: &str, dir: &Path) -> Result<usize, String> {
        let mut files: Vec<PathBuf> = match fs::read_dir(dir) {
            Ok(entries) => entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "sc"))
                .collect(),
            Err(_) => return Ok(0),
        };
        files.sort();
        let prefix = format!("{}/{}", bucket_key(workload), bucket_key(&self.node));
        let mut budget = POOL_NODE_MAX_BYTES;
        let mut put = 0;
        for path in files {
            let Some(bytes) = whole_lines(&path, budget)? else {
                continue;
            };
            budget = budget.saturating_sub(bytes.len() as u64);
            let done = self.uploaded.get(&path).copied().unwrap_or(0);
            if bytes.is_empty() || bytes.len() as u64 <= done {
                continue;
            }
            let name = format!(
                "{prefix}/{}",
                path.file_name().unwrap_or_default().to_string_lossy()
            );
            let objects = &self.objects;
            self.call(&format!("uploading {name}"), async {
                objects
                    .put(name.as_str(), &mut std::io::Cursor::new(&bytes))
                    .await
                    .map(|_| ())
                    .map_err(|e| format!("storing {name}: {e}"))
            })?;
            self.uploaded.insert(path, bytes.len() as u64);
            put += 1;
        }
        Ok(put)
    }

    /// Forgets what was uploaded from `dir` (its files are gone).
    pub fn forget(&mut self, dir: &Path) {
        self.uploaded.retain(|p, _| !p.starts_with(dir));
    }

    /// Asks for the workload's training lease.
    pub fn claim(&self, workload: &str) -> Result<Claim, String> {
        let key = bucket_key(workload);
        let lease = Lease {
            node: self.node.clone(),
            expires_ns: now_ns() + LEASE_FOR.as_nanos() as u64,
        };
        let value = serde_json::to_vec(&lease).expect("a lease serialises");
        let (js, leases, models) = (&self.js, &self.leases, &self.models_bucket);
        self.call(&format!("the training lease of {workload}"), async {
            if let Some(v) = fleet_version(js, models, &key).await {
                return Ok(Claim::Trained(v));
            }
            if leases.create(&key, value.clone().into()).await.is_ok() {
                return Ok(Claim::Taken);
            }
            let Some(entry) = leases
                .entry(&key)
                .await
                .map_err(|e| format!("reading the lease of {workload}: {e}"))?
            else {
                return Err(format!("the lease of {workload} is neither free nor held"));
            };
            let held: Option<Lease> = (entry.operation == kv::Operation::Put)
                .then(|| serde_json::from_slice(&entry.value).ok())
                .flatten();
            match held {
                Some(h) if h.node != lease.node && h.expires_ns > now_ns() => {
                    Ok(Claim::HeldBy(h.node))
                }
                // Released, expired, damaged, or this node's own: taken
                // over unless another node got there first.
                _ => match leases.update(&key, value.into(), entry.revision).await {
                    Ok(_) => Ok(Claim::Taken),
                    Err(_) => Ok(Claim::HeldBy("another node".into())),
                },
            }
        })
    }

    /// Gives the lease back (after publishing, or when the pool was not
    /// complete enough): the next node to finish learning may take it.
    pub fn release(&self, workload: &str) -> Result<(), String> {
        let key = bucket_key(workload);
        let leases = &self.leases;
        self.call(&format!("releasing the lease of {workload}"), async {
            leases
                .delete(&key)
                .await
                .map_err(|e| format!("releasing the lease of {workload}: {e}"))
        })
    }

    /// Reads every node's learning data of the workload into `into` (made
    /// afresh, 0700), as `000000-<node key>-<file>`, `000001-…`, … in the
    /// pool's fixed order: node key, then file name.
    pub fn fetch(&self, workload: &str, into: &Path) -> Result<PoolData, String> {
        let _ = fs::remove_dir_all(into);
        crate::sink::private_fs::private_dir(into)
            .map_err(|e| format!("{}: {e}", into.display()))?;
        let prefix = format!("{}/", bucket_key(workload));
        let objects = &self.objects;
        let mut names: Vec<(String, u64)> = self.call("listing the pool", async {
            let mut list = objects
                .list()
                .await
                .map_err(|e| format!("listing the learning bucket: {e}"))?;
            let mut names = Vec::new();
            while let Some(info) = list.next().await {
                let info = info.map_err(|e| format!("listing the learning bucket: {e}"))?;
                if !info.deleted && info.name.starts_with(&prefix) {
                    names.push((info.name, info.size as u64));
                }
            }
            Ok(names)
        })?;
        names.sort();
        let mut data = PoolData {
            nodes: Vec::new(),
            files: 0,
            bytes: 0,
            left_out: 0,
        };
        for (name, size) in names {
            let Some(node) = node_of(&name, &prefix) else {
                continue;
            };
            if data.bytes + size > POOL_MAX_BYTES {
                data.left_out += 1;
                continue;
            }
            // Numbered in the pool's order; the rest of the name says
            // where a line that does not parse came from.
            let path = into.join(format!("{:06}-{}", data.files, local_name(&name)));
            self.call(
                &format!("reading {name}"),
                copy_object(objects, &name, size, &path),
            )?;
            data.files += 1;
            data.bytes += size;
            if data.nodes.last() != Some(&node) {
                data.nodes.push(node);
            }
        }
        data.nodes.dedup();
        Ok(data)
    }
}

/// Opens (or makes) the learning bucket: its key-value side (the leases)
/// and its object store (the data).
async fn open(
    url: &str,
    bucket: &str,
) -> Result<(jetstream::Context, kv::Store, object_store::ObjectStore), String> {
    let client = async_nats::ConnectOptions::new()
        .connection_timeout(CALL_TIMEOUT)
        .connect(url)
        .await
        .map_err(|e| format!("NATS {url}: {e}"))?;
    let js = jetstream::new(client);
    let leases = match js.get_key_value(bucket).await {
        Ok(kv) => kv,
        Err(_) => {
            // Made directly, as the models bucket (see store.rs).
            js.get_or_create_stream(jetstream::stream::Config {
                name: format!("KV_{bucket}"),
                description: Some("chids: training leases".into()),
                subjects: vec![format!("$KV.{bucket}.>")],
                max_messages_per_subject: 1,
                allow_rollup: true,
                allow_direct: true,
                discard: jetstream::stream::DiscardPolicy::New,
                ..Default::default()
            })
            .await
            .map_err(|e| format!("KV bucket {bucket}: {e}"))?;
            js.get_key_value(bucket)
                .await
                .map_err(|e| format!("KV bucket {bucket}: {e}"))?
        }
    };
    let objects = match js.get_object_store(bucket).await {
        Ok(o) => o,
        Err(_) => js
            .create_object_store(object_store::Config {
                bucket: bucket.to_string(),
                description: Some("chids: learning data of the nodes".into()),
                ..Default::default()
            })
            .await
            .map_err(|e| format!("object store {bucket}: {e}"))?,
    };
    Ok((js, leases, objects))
}

/// The workload's version on the fleet, if it has one.
async fn fleet_version(js: &jetstream::Context, models: &str, key: &str) -> Option<u64> {
    let store = js.get_key_value(models).await.ok()?;
    let entry = store.entry(key).await.ok()??;
    if entry.operation != kv::Operation::Put {
        return None;
    }
    serde_json::from_slice::<serde_json::Value>(&entry.value)
        .ok()?
        .get("version")?
        .as_u64()
}

/// The node an object of the pool comes from: `<key>/<node key>/<file>`.
fn node_of(name: &str, prefix: &str) -> Option<String> {
    let (node, file) = name.strip_prefix(prefix)?.split_once('/')?;
    (!file.is_empty() && !file.contains('/')).then(|| super::from_bucket_key(node))?
}

/// A file's content up to its last newline (a line being written is left
/// for the next upload), at most `max` bytes; `None` when it cannot be read.
fn whole_lines(path: &Path, max: u64) -> Result<Option<Vec<u8>>, String> {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return Ok(None);
    };
    if !meta.is_file() {
        return Ok(None);
    }
    let mut bytes = Vec::with_capacity(meta.len().min(max) as usize);
    // Never through a link swapped in after the check above.
    let opened = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path);
    let Ok(f) = opened else {
        return Ok(None);
    };
    std::io::Read::read_to_end(&mut std::io::Read::take(f, max), &mut bytes)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let end = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    bytes.truncate(end);
    Ok(Some(bytes))
}

/// An object's name as a file name: `<node key>-<file>`, every byte but
/// letters, digits, `.`, `-`, `_` and `=` as `_`.
fn local_name(object: &str) -> String {
    let tail = object.split_once('/').map_or(object, |p| p.1);
    tail.bytes()
        .map(|b| match b {
            b'/' => '-',
            b if b.is_ascii_alphanumeric() || b"._-=".contains(&b) => b as char,
            _ => '_',
        })
        .collect()
}

/// Copies an object of the expected size into a new private file (0600,
/// never through a link), a chunk at a time, never more than the size.
async fn copy_object(
    objects: &object_store::ObjectStore,
    name: &str,
    size: u64,
    path: &Path,
) -> Result<(), String> {
    let mut object = objects
        .get(name)
        .await
        .map_err(|e| format!("object {name}: {e}"))?;
    let mut file = crate::sink::private_fs::append_file(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut chunk = vec![0u8; 64 << 10];
    let mut copied = 0u64;
    loop {
        let n = (&mut object)
            .take(size + 1 - copied)
            .read(&mut chunk)
            .await
            .map_err(|e| format!("object {name}: {e}"))?;
        if n == 0 {
            break;
        }
        copied += n as u64;
        if copied > size {
            break;
        }
        file.write_all(&chunk[..n])
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if copied != size {
        return Err(format!(
            "object {name}: {copied} bytes where its listing says {size}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_name_their_node() {
        assert_eq!(node_of("w/node-a/x-000.sc", "w/"), Some("node-a".into()));
        assert_eq!(node_of("w/node=2E1/x-000.sc", "w/"), Some("node.1".into()));
        assert_eq!(node_of("w/node-a/", "w/"), None);
        assert_eq!(node_of("w/a/b/c.sc", "w/"), None);
        assert_eq!(node_of("v/a/c.sc", "w/"), None);
    }

    #[test]
    fn local_names_keep_the_node_and_nothing_unsafe() {
        assert_eq!(local_name("w/node-a/c1-2-000.sc"), "node-a-c1-2-000.sc");
        assert_eq!(local_name("w/n/../x y.sc"), "n-..-x_y.sc");
    }

    #[test]
    fn only_whole_lines_are_uploaded() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("a.sc");
        fs::write(&p, b"one\ntwo\nthr").unwrap();
        assert_eq!(whole_lines(&p, 100).unwrap().unwrap(), b"one\ntwo\n");
        assert_eq!(whole_lines(&p, 6).unwrap().unwrap(), b"one\n");
        let link = tmp.path().join("l.sc");
        std::os::unix::fs::symlink(&p, &link).unwrap();
        assert_eq!(whole_lines(&link, 100).unwrap(), None);
    }
}
