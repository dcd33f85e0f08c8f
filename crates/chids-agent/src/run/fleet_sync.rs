//! The agent and the fleet's models (`--nats`): a model this node trains
//! is published; the fleet's current version of every workload is saved
//! into the local models folder and detected with, at once — a workload
//! still learning stops learning (with pooled learning, `pool_sync.rs`,
//! the model was trained on every node's data; without, on the data of
//! the first node to finish). Without `--nats` only the model's origin
//! is recorded. Everything here runs in the agent's loop turn and never
//! waits on the broker (see `FleetLink`).

use std::sync::Arc;
use std::time::Duration;

use super::{AgentRun, Update};
use crate::fleet::{bundle_digest, FleetLink, FleetOptions, FleetUpdate, ModelVersion};
use crate::state::{Workload, WorkloadState};
use crate::status::ModelOrigin;
use crate::workloads::folder_name;
use crate::AgentUpdate;
use chids_detect::model::Bundle;

impl AgentRun {
    /// Starts following the fleet's models; a workload loaded from disk
    /// whose digest is the fleet's current one is not loaded again.
    pub(super) fn start_fleet(&mut self, opts: Option<FleetOptions>, up: Update<'_>) {
        let Some(opts) = opts else {
            return;
        };
        let (url, models, bundles) = (
            opts.url.clone(),
            opts.models_bucket.clone(),
            opts.bundles_bucket.clone(),
        );
        let mut link = match FleetLink::start(opts) {
            Ok(link) => link,
            Err(e) => {
                up(AgentUpdate::Log(format!(
                    "fleet: {e}; the agent works alone"
                )));
                return;
            }
        };
        for (key, w) in &self.workloads {
            if let Some(digest) = w.origin.as_ref().and_then(|o| o.digest.as_deref()) {
                link.set_using(key, digest);
            }
        }
        up(AgentUpdate::Log(format!(
            "fleet: node {} follows the models in {models} (files in {bundles}) on {url}",
            link.node()
        )));
        self.fleet = Some(link);
    }

    /// What the fleet sent since the last turn.
    pub(super) fn fleet_turn(&mut self, now_ns: u64, up: Update<'_>) {
        let Some(link) = self.fleet.as_mut() else {
            return;
        };
        let updates = link.poll();
        for update in updates {
            match update {
                FleetUpdate::Adopt { version, bundle } => self.adopt(version, *bundle, now_ns, up),
                FleetUpdate::Published(v) => self.published(v, up),
                FleetUpdate::PoolClaimed { workload, data } => {
                    self.pool_claimed(workload, data, up)
                }
                FleetUpdate::PoolNotClaimed { workload, claim } => {
                    self.pool_not_claimed(workload, claim, up)
                }
                FleetUpdate::PoolUnavailable { workload, error } => {
                    self.pool_unavailable(workload, error, up)
                }
                FleetUpdate::Log(line) => up(AgentUpdate::Log(line)),
            }
        }
    }

    /// Detects with the fleet's version of a workload from now on: stored
    /// (so a restart without the broker has it), then every container of
    /// the workload gets a detector with it.
    fn adopt(&mut self, version: ModelVersion, bundle: Bundle, now_ns: u64, up: Update<'_>) {
        let key = version.workload.clone();
        let origin = ModelOrigin::of_version(&version);
        let stored = self
            .store
            .save(&key, &bundle)
            .and_then(|_| self.store.set_origin(&key, &origin));
        if let Err(e) = stored {
            up(AgentUpdate::Log(format!(
                "workload {key}: fleet version {} not stored ({e}); detecting with it until the agent stops",
                version.version
            )));
        }
        let w = self
            .workloads
            .entry(key.clone())
            .or_insert_with(|| Workload::new(WorkloadState::Learning));
        let before = w.state.name();
        w.state = WorkloadState::Detecting(Arc::new(bundle));
        w.origin = Some(origin);
        // Its learning ends here: the fleet's model stands for it.
        w.learned = Duration::ZERO;
        w.next_check = Duration::ZERO;
        w.completeness = None;
        w.names = Default::default();
        up(AgentUpdate::Log(format!(
            "workload {key}: fleet version {} from {} ({}), detecting{}",
            version.version,
            version.node,
            version.reason,
            match before {
                "learning" => "; learning stops",
                "training" => "; this node's training is dropped",
                _ => "",
            }
        )));
        // The old streams end: learning files are closed, a detector's open
        // windows are scored with the model they began with.
        let mut dropped = 0;
        for (&id, c) in self
            .containers
            .iter_mut()
            .filter(|(_, c)| c.workload == key)
        {
            let closed = &mut self.closed;
            dropped += c.finish_stream(&self.learn_writer, &mut |w| closed.push((id, w)));
        }
        if let Some(w) = self.workloads.get_mut(&key) {
            w.learn_dropped += dropped;
        }
        self.process_closed(now_ns, up);
        if before != "detecting" {
            let _ = std::fs::remove_dir_all(self.cfg.learn_root.join(folder_name(&key)));
        }
        // A lease held for a training here is given back.
        self.pool_done(&key, false);
        self.restart_streams(&key);
    }

    /// A model this node trained is on the broker: its origin gets the
    /// fleet's version number (when the workload still detects with it).
    fn published(&mut self, v: ModelVersion, up: Update<'_>) {
        up(AgentUpdate::Log(format!(
            "workload {}: model published to the fleet as version {}",
            v.workload, v.version
        )));
        let Some(w) = self.workloads.get_mut(&v.workload) else {
            return;
        };
        if w.origin.as_ref().and_then(|o| o.digest.as_ref()) != Some(&v.digest) {
            return;
        }
        let origin = ModelOrigin::of_version(&v);
        if let Err(e) = self.store.set_origin(&v.workload, &origin) {
            up(AgentUpdate::Log(format!("workload {}: {e}", v.workload)));
        }
        w.origin = Some(origin);
    }

    /// A model this node just trained (and stored): its origin, and with
    /// a fleet its publication.
    pub(super) fn model_trained(&mut self, key: &str, up: Update<'_>) {
        if self
            .workloads
            .get(key)
            .and_then(|w| w.state.bundle())
            .is_none()
        {
            return;
        }
        let learnt_from = self.pool_done(key, true);
        let w = self.workloads.get_mut(key).expect("present above");
        let bundle = w.state.bundle().expect("detecting above");
        let origin = ModelOrigin {
            version: None,
            node: self.node.clone(),
            reason: "trained".into(),
            time_ns: now_ns(),
            digest: bundle.to_bytes().ok().map(|(j, b)| bundle_digest(&j, &b)),
            learnt_from: learnt_from.clone(),
        };
        if let Some(link) = self.fleet.as_mut() {
            link.publish(key, bundle, learnt_from);
        }
        if let Err(e) = self.store.set_origin(key, &origin) {
            up(AgentUpdate::Log(format!("workload {key}: {e}")));
        }
        w.origin = Some(origin);
    }
}

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
