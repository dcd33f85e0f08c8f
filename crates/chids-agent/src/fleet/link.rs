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
    /// Another node (or `chids accept`) published a new version of a
    /// workload: detect with it from now on.
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
    /// Digests this node is publishing: their echo from the watch is not
    /// adopted again.
    own: HashMap<String, String>,
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
            own: HashMap::new(),
        })
    }

    /// Publishes a bundle this node trained, on a thread of its own; the
    /// result comes back through [`FleetLink::poll`].
    pub fn publish(&mut self, workload: &str, bundle: &Bundle) {
        match bundle.to_bytes() {
            Ok((json, weights)) => {
                self.own
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

    /// What arrived since the last call: publications first, then new
    /// versions (an echo of this node's own publication is left out).
    pub fn poll(&mut self) -> Vec<FleetUpdate> {
        let mut out = Vec::new();
        while let Ok(result) = self.published_rx.try_recv() {
            match result {
                Ok(v) => {
                    self.versions.insert(v.workload.clone(), v.clone());
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
                    if self.own.get(&version.workload) == Some(&version.digest) {
                        self.versions.insert(version.workload.clone(), version);
                        continue;
                    }
                    self.versions
                        .insert(version.workload.clone(), version.clone());
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
