//! The agent's side of the fleet in one object: follow the broker's
//! models, publish the ones this node trains, and remember each workload's
//! version and origin for `agent status`. Everything that talks to the
//! broker runs off the caller's thread; [`FleetLink::poll`] is cheap.

use std::collections::HashMap;
use std::sync::mpsc;

use super::{bundle_digest, FleetEvent, FleetOptions, FleetStore, FleetWatch, ModelVersion};
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
    Log(String),
}

pub struct FleetLink {
    opts: FleetOptions,
    watch: FleetWatch,
    published_tx: mpsc::Sender<Result<ModelVersion, String>>,
    published_rx: mpsc::Receiver<Result<ModelVersion, String>>,
    /// Each workload's current version, as adopted or published.
    versions: HashMap<String, ModelVersion>,
    /// The digest of the model each workload detects with on this node
    /// (adopted, published, or loaded from disk): a version with that
    /// digest needs no adopting, any other one does. Comparing with what
    /// is in use, rather than skipping "our own" versions, keeps nodes
    /// that publish at the same moment on the fleet's last version.
    using: HashMap<String, String>,
}

impl FleetLink {
    pub fn start(opts: FleetOptions) -> Result<FleetLink, String> {
        let watch = FleetWatch::start(opts.clone())?;
        let (published_tx, published_rx) = mpsc::channel();
        Ok(FleetLink {
            opts,
            watch,
            published_tx,
            published_rx,
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
    pub fn set_using(&mut self, workload: &str, digest: &str) {
        self.using.insert(workload.to_string(), digest.to_string());
    }

    /// Publishes a bundle this node trained, on a thread of its own; the
    /// result comes back through [`FleetLink::poll`].
    pub fn publish(&mut self, workload: &str, bundle: &Bundle) {
        match bundle.to_bytes() {
            Ok((json, weights)) => {
                self.using
                    .insert(workload.to_string(), bundle_digest(&json, &weights));
            }
            Err(e) => {
                let _ = self.published_tx.send(Err(format!("{workload}: {e}")));
                return;
            }
        }
        let (opts, tx, key, bundle) = (
            self.opts.clone(),
            self.published_tx.clone(),
            workload.to_string(),
            bundle.clone(),
        );
        let spawned = std::thread::Builder::new()
            .name("chids-publish".into())
            .spawn(move || {
                let result = FleetStore::connect(&opts)
                    .and_then(|s| s.publish(&key, &bundle, "trained"))
                    .map_err(|e| format!("{key}: {e}"));
                let _ = tx.send(result);
            });
        if let Err(e) = spawned {
            let _ = self
                .published_tx
                .send(Err(format!("{workload}: cannot start a thread: {e}")));
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
        while let Ok(result) = self.published_rx.try_recv() {
            match result {
                Ok(v) => {
                    self.record(&v);
                    out.push(FleetUpdate::Published(v));
                }
                Err(e) => out.push(FleetUpdate::Log(format!(
                    "fleet: publishing failed ({e}); the model stays local"
                ))),
            }
        }
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
}
