//! Pooled learning in the agent's loop (`--nats` with a learning bucket,
//! see `fleet/pool.rs`): a learning workload's data are uploaded every
//! few seconds; when its learning period ends here, this node asks for the
//! workload's training lease. Granted, it trains on every node's data
//! with the same code as local training and publishes the model, which
//! names the nodes it learnt from. Held by another node, this node learns
//! on until that node's model arrives (adopted as any fleet version).
//! With the broker away it trains alone on its own data, as without a
//! fleet.

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::{AgentRun, Update};
use crate::fleet::{Claim, PoolData};
use crate::learning::segment_length;
use crate::state::WorkloadState;
use crate::workloads::folder_name;
use crate::AgentUpdate;

/// How often a learning workload's new data go to the pool.
const UPLOAD_EVERY: Duration = Duration::from_secs(5);

/// What the agent keeps about the pool.
pub(super) struct PoolSync {
    last_upload: Instant,
    /// The nodes whose data a training in progress here learns from, by
    /// workload.
    learnt_from: std::collections::HashMap<String, Vec<String>>,
}

impl PoolSync {
    pub(super) fn new() -> PoolSync {
        PoolSync {
            last_upload: Instant::now(),
            learnt_from: Default::default(),
        }
    }
}

/// A barrier that is already passed (the pool's thread waited for the
/// learning files before it answered).
fn written_already() -> mpsc::Receiver<()> {
    let (tx, rx) = mpsc::channel();
    let _ = tx.send(());
    rx
}

impl AgentRun {
    /// Where the pool of a workload is read for its training here.
    fn pool_dir(&self, key: &str) -> PathBuf {
        self.cfg.state_dir.join("pool").join(folder_name(key))
    }

    /// Every [`UPLOAD_EVERY`]: what the learning workloads wrote since.
    pub(super) fn pool_uploads(&mut self) {
        let Some(link) = self.fleet.as_mut().filter(|l| l.pooled()) else {
            return;
        };
        if self.pool.last_upload.elapsed() < UPLOAD_EVERY {
            return;
        }
        self.pool.last_upload = Instant::now();
        for (key, w) in &self.workloads {
            if matches!(w.state, WorkloadState::Learning) && w.containers > 0 {
                link.upload_learning(key, &self.cfg.learn_root.join(folder_name(key)));
            }
        }
    }

    /// With pooled learning: asks for the workload's training lease (the
    /// answer comes with the fleet's updates) and returns `None`; without,
    /// gives `written` back for a local training.
    pub(super) fn claim_pool(
        &mut self,
        key: &str,
        written: mpsc::Receiver<()>,
    ) -> Option<mpsc::Receiver<()>> {
        let into = self.pool_dir(key);
        let dir = self.cfg.learn_root.join(folder_name(key));
        match self.fleet.as_mut().filter(|l| l.pooled()) {
            Some(link) => {
                link.claim_pool(key, &dir, written, &into);
                None
            }
            None => Some(written),
        }
    }

    /// Still training here (not adopted meanwhile)?
    fn still_training(&self, key: &str) -> bool {
        self.workloads
            .get(key)
            .is_some_and(|w| matches!(w.state, WorkloadState::Training))
    }

    /// This node holds the lease: it trains on the pool's data.
    pub(super) fn pool_claimed(&mut self, key: String, data: PoolData, up: Update<'_>) {
        let dir = self.pool_dir(&key);
        if !self.still_training(&key) {
            let _ = std::fs::remove_dir_all(&dir);
            if let Some(link) = self.fleet.as_mut() {
                link.release_pool(&key);
            }
            return;
        }
        up(AgentUpdate::Log(format!(
            "workload {key}: training on the pooled learning data of {} ({} files, {} bytes{})",
            data.nodes.join(", "),
            data.files,
            data.bytes,
            match data.left_out {
                0 => String::new(),
                n => format!(", {n} files past the pool's bound left out"),
            }
        )));
        self.pool.learnt_from.insert(key.clone(), data.nodes);
        self.submit_training(key, dir, written_already());
    }

    /// Another node trains the pool (or the fleet has a model): learn on
    /// until its model arrives.
    pub(super) fn pool_not_claimed(&mut self, key: String, claim: Claim, up: Update<'_>) {
        if !self.still_training(&key) {
            return;
        }
        let segment = segment_length(self.cfg.learn_for);
        let w = self.workloads.get_mut(&key).expect("checked above");
        w.state = WorkloadState::Learning;
        w.next_check = w.learned + segment;
        up(AgentUpdate::Log(format!(
            "workload {key}: {}; learning on until its model arrives (asking again in {:.0}s)",
            match claim {
                Claim::HeldBy(node) => format!("{node} trains the pooled learning data"),
                Claim::Trained(v) => format!("the fleet has version {v}"),
                Claim::Taken => "the lease was taken".into(),
            },
            segment.as_secs_f64()
        )));
        self.restart_streams(&key);
    }

    /// The broker cannot be asked: this node trains alone on its data.
    pub(super) fn pool_unavailable(&mut self, key: String, error: String, up: Update<'_>) {
        if !self.still_training(&key) {
            return;
        }
        up(AgentUpdate::Log(format!(
            "workload {key}: the learning pool cannot be used ({error}); training on this node's data alone"
        )));
        let dir = self.cfg.learn_root.join(folder_name(&key));
        self.submit_training(key, dir, written_already());
    }

    /// The nodes a model just trained here learnt from (empty when it is
    /// this node's data alone), and the pool's files and lease let go.
    pub(super) fn pool_done(&mut self, key: &str, published: bool) -> Vec<String> {
        let _ = std::fs::remove_dir_all(self.pool_dir(key));
        let learn_dir = self.cfg.learn_root.join(folder_name(key));
        if let Some(link) = self.fleet.as_mut() {
            // Published: the lease goes back once the model is out.
            if !published {
                link.release_pool(key);
            }
            if !learn_dir.exists() {
                link.forget_learning(&learn_dir);
            }
        }
        self.pool.learnt_from.remove(key).unwrap_or_default()
    }
}
