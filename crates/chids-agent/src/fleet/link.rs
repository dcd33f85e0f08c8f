//! The agent's side of the fleet in one object: follow the broker's
//! models, publish the ones this node trains, and remember each workload's
//! version and origin for `agent status`. Everything that talks to the
//! broker runs off the caller's thread; [`FleetLink::poll`] is cheap.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::pool_worker::{PoolAnswer, PoolJob, PoolWorker};
use super::{
    bundle_digest, Claim, FleetEvent, FleetOptions, FleetStore, FleetWatch, ModelVersion, PoolData,
};
use chids_detect::model::Bundle;

/// What the agent should do or log.
pub enum FleetUpdate {
    /// The fleet's current version of a workload is not the model this
    /// node detects with: detect with it from now on.
    Adopt {
        version: ModelVersion,
        bundle: Box<Bundle>,
    },
    /// A model this node trained is on the broker now.
    Published(ModelVersion),
    /// This node trains the workload's pool: its data are in the folder
    /// given to [`FleetLink::claim_pool`].
    PoolClaimed {
        workload: String,
        data: PoolData,
    },
    /// Another node trains the pool, or the fleet has a model already:
    /// learn on until it arrives.
    PoolNotClaimed {
        workload: String,
        claim: Claim,
    },
    /// The pool could not be used (broker away): train alone.
    PoolUnavailable {
        workload: String,
        error: String,
    },
    Log(String),
}

/// How long after a failed publication it is tried again (the broker may
/// be away: the model stays local meanwhile).
const PUBLISH_RETRY: Duration = Duration::from_secs(10);

/// A publication's answer: the workload and the version, or why not.
type PublishResult = (String, Result<ModelVersion, String>);

pub struct FleetLink {
    opts: FleetOptions,
    watch: FleetWatch,
    published_tx: mpsc::Sender<PublishResult>,
    published_rx: mpsc::Receiver<PublishResult>,
    /// Models this node trained and has not published yet (in flight, or
    /// failed and waiting for `retry_at`), with the nodes whose data they
    /// were trained on.
    pending: HashMap<String, (Box<Bundle>, Vec<String>)>,
    in_flight: HashSet<String>,
    retry_at: Option<Instant>,
    /// Workloads whose publication failure was logged (once each).
    failure_logged: HashSet<String>,
    /// Each workload's current version, as adopted or published.
    versions: HashMap<String, ModelVersion>,
    /// The digest of the model each workload detects with on this node
    /// (adopted, published, or loaded from disk): a version with that
    /// digest needs no adopting, any other one does. Comparing with what
    /// is in use, rather than skipping "our own" versions, keeps nodes
    /// that publish at the same moment on the fleet's last version.
    using: HashMap<String, String>,
    /// Pooled learning (`learning_bucket`): its thread, the workloads
    /// whose upload is under way, those whose lease this node holds, and
    /// those whose upload failure was logged.
    pool: Option<PoolWorker>,
    uploading: HashSet<String>,
    leased: HashSet<String>,
    upload_failure_logged: HashSet<String>,
}

impl FleetLink {
    pub fn start(opts: FleetOptions) -> Result<FleetLink, String> {
        let watch = FleetWatch::start(opts.clone())?;
        let (published_tx, published_rx) = mpsc::channel();
        let pool = match opts.learning_bucket {
            Some(_) => Some(PoolWorker::start(opts.clone())?),
            None => None,
        };
        Ok(FleetLink {
            pool,
            uploading: HashSet::new(),
            leased: HashSet::new(),
            upload_failure_logged: HashSet::new(),
            opts,
            watch,
            published_tx,
            published_rx,
            pending: HashMap::new(),
            in_flight: HashSet::new(),
            retry_at: None,
            failure_logged: HashSet::new(),
            versions: HashMap::new(),
            using: HashMap::new(),
        })
    }

    /// The node's name, as recorded with what it publishes.
    pub fn node(&self) -> &str {
        &self.opts.node
    }

    /// Tells the link which model (by digest) a workload detects with,
    /// e.g. one loaded from disk at start: a fleet version with the same
    /// digest is then not adopted again.
    pub(crate) fn set_using(&mut self, workload: &str, digest: &str) {
        self.using.insert(workload.to_string(), digest.to_string());
    }

    /// Publishes a bundle this node trained, on a thread of its own; the
    /// result comes back through [`FleetLink::poll`]. When the broker
    /// cannot be reached it is tried again every [`PUBLISH_RETRY`] until it
    /// is published, or the fleet has another version of the workload.
    pub fn publish(&mut self, workload: &str, bundle: &Bundle, learnt_from: Vec<String>) {
        match bundle.to_bytes() {
            Ok((json, weights)) => {
                self.using
                    .insert(workload.to_string(), bundle_digest(&json, &weights));
            }
            Err(e) => {
                let _ = self
                    .published_tx
                    .send((workload.to_string(), Err(e.to_string())));
                return;
            }
        }
        self.pending.insert(
            workload.to_string(),
            (Box::new(bundle.clone()), learnt_from),
        );
        self.failure_logged.remove(workload);
        self.send(workload);
    }

    /// Starts the publication of a pending model.
    fn send(&mut self, workload: &str) {
        let Some((bundle, learnt_from)) = self.pending.get(workload) else {
            return;
        };
        if !self.in_flight.insert(workload.to_string()) {
            return;
        }
        let (opts, tx, key, bundle, learnt_from) = (
            self.opts.clone(),
            self.published_tx.clone(),
            workload.to_string(),
            bundle.clone(),
            learnt_from.clone(),
        );
        let spawned = std::thread::Builder::new()
            .name("chids-publish".into())
            .spawn(move || {
                let result = FleetStore::connect(&opts)
                    .and_then(|s| s.publish_learnt_from(&key, &bundle, "trained", &learnt_from));
                let _ = tx.send((key, result));
            });
        if let Err(e) = spawned {
            let _ = self.published_tx.send((
                workload.to_string(),
                Err(format!("cannot start a thread: {e}")),
            ));
        }
    }

    /// Publications' answers: a failure keeps the model pending (logged
    /// once per model), retried a while later.
    fn take_published(&mut self, out: &mut Vec<FleetUpdate>) {
        while let Ok((key, result)) = self.published_rx.try_recv() {
            self.in_flight.remove(&key);
            match result {
                Ok(v) => {
                    self.pending.remove(&key);
                    self.failure_logged.remove(&key);
                    // The pool's model is out: the lease is given back.
                    self.release_pool(&key);
                    self.record(&v);
                    out.push(FleetUpdate::Published(v));
                }
                Err(e) => {
                    if self.pending.contains_key(&key) {
                        self.retry_at = Some(Instant::now() + PUBLISH_RETRY);
                    }
                    if self.failure_logged.insert(key.clone()) {
                        out.push(FleetUpdate::Log(format!(
                            "fleet: publishing {key} failed ({e}); the model stays local, tried again every {}s",
                            PUBLISH_RETRY.as_secs()
                        )));
                    }
                }
            }
        }
        if self.retry_at.is_some_and(|t| Instant::now() >= t) {
            self.retry_at = None;
            let keys: Vec<String> = self.pending.keys().cloned().collect();
            for key in keys {
                self.send(&key);
            }
        }
    }

    /// Records `v` as the workload's version unless a newer one is known
    /// (a publication's answer can come after the watch's next version).
    fn record(&mut self, v: &ModelVersion) -> bool {
        let newer = self
            .versions
            .get(&v.workload)
            .is_none_or(|known| known.version < v.version);
        if newer {
            self.versions.insert(v.workload.clone(), v.clone());
        }
        newer
    }

    /// What arrived since the last call: publications first, then new
    /// versions to adopt (a version whose model is the one in use, e.g.
    /// the echo of this node's own publication, is only recorded).
    pub fn poll(&mut self) -> Vec<FleetUpdate> {
        let mut out = Vec::new();
        self.take_published(&mut out);
        self.take_pool_answers(&mut out);
        for event in self.watch.poll() {
            match event {
                FleetEvent::Log(l) => out.push(FleetUpdate::Log(l)),
                FleetEvent::Model { version, bundle } => {
                    if !self.record(&version) {
                        continue;
                    }
                    if self.using.get(&version.workload) == Some(&version.digest) {
                        continue;
                    }
                    self.using
                        .insert(version.workload.clone(), version.digest.clone());
                    // The fleet's version replaces a model not yet published.
                    self.pending.remove(&version.workload);
                    out.push(FleetUpdate::Adopt { version, bundle });
                }
            }
        }
        out
    }

    /// The workload's current fleet version, if it has one.
    pub fn version(&self, workload: &str) -> Option<&ModelVersion> {
        self.versions.get(workload)
    }

    /// Whether learning is pooled (a learning bucket was given).
    pub fn pooled(&self) -> bool {
        self.pool.is_some()
    }

    /// Uploads what grew in a workload's learning folder (skipped while
    /// its last upload is under way).
    pub fn upload_learning(&mut self, workload: &str, dir: &Path) {
        let Some(pool) = &self.pool else {
            return;
        };
        if self.uploading.insert(workload.to_string()) {
            pool.send(PoolJob::Upload {
                workload: workload.to_string(),
                dir: dir.to_path_buf(),
            });
        }
    }

    /// Once `written` answers: uploads the last learning data of `dir`,
    /// asks for the workload's training lease and, when this node gets
    /// it, reads the pool into `into`; the answer comes through
    /// [`FleetLink::poll`].
    pub fn claim_pool(
        &mut self,
        workload: &str,
        dir: &Path,
        written: mpsc::Receiver<()>,
        into: &Path,
    ) {
        let Some(pool) = &self.pool else {
            return;
        };
        pool.send(PoolJob::Claim {
            workload: workload.to_string(),
            dir: dir.to_path_buf(),
            written,
            into: into.to_path_buf(),
        });
    }

    /// Gives the workload's training lease back, if this node holds it.
    pub fn release_pool(&mut self, workload: &str) {
        if let (Some(pool), true) = (&self.pool, self.leased.remove(workload)) {
            pool.send(PoolJob::Release {
                workload: workload.to_string(),
            });
        }
    }

    /// A learning folder was removed: its files are uploaded afresh.
    pub fn forget_learning(&mut self, dir: &Path) {
        if let Some(pool) = &self.pool {
            pool.send(PoolJob::Forget {
                dir: dir.to_path_buf(),
            });
        }
    }

    fn take_pool_answers(&mut self, out: &mut Vec<FleetUpdate>) {
        let Some(pool) = &self.pool else {
            return;
        };
        let answers: Vec<PoolAnswer> = pool.answers.try_iter().collect();
        for answer in answers {
            match answer {
                PoolAnswer::Uploaded { workload, result } => {
                    self.uploading.remove(&workload);
                    match result {
                        Ok(_) => {
                            self.upload_failure_logged.remove(&workload);
                        }
                        Err(e) => {
                            if self.upload_failure_logged.insert(workload.clone()) {
                                out.push(FleetUpdate::Log(format!(
                                    "fleet: uploading the learning data of {workload} failed ({e}); tried again at the next upload (said once)"
                                )));
                            }
                        }
                    }
                }
                PoolAnswer::Claimed { workload, data } => {
                    self.leased.insert(workload.clone());
                    out.push(FleetUpdate::PoolClaimed { workload, data });
                }
                PoolAnswer::NotClaimed { workload, claim } => {
                    out.push(FleetUpdate::PoolNotClaimed { workload, claim });
                }
                PoolAnswer::Unavailable { workload, error } => {
                    out.push(FleetUpdate::PoolUnavailable { workload, error });
                }
                PoolAnswer::Released { workload, result } => {
                    if let Err(e) = result {
                        out.push(FleetUpdate::Log(format!(
                            "fleet: {e}; the lease of {workload} ends by itself after {}s",
                            super::LEASE_FOR.as_secs()
                        )));
                    }
                }
            }
        }
    }
}
