//! The agent's status file, `<state-dir>/status.json`: which workloads are
//! learning or detecting, which containers are watched, how the sinks are
//! doing. Rewritten about once a second (write, then rename, so a reader
//! never sees half a file); `chids agent status` prints it.

use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::sink::SinkStats;

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct WorkloadStatus {
    pub workload: String,
    /// `learning`, `training` or `detecting`.
    pub state: String,
    pub containers: usize,
    pub learned_seconds: f64,
    pub windows: u64,
    pub alerts: u64,
    /// Events dropped for their time (see `AgentStatus::late_events`).
    #[serde(default)]
    pub late_events: u64,
    /// The detection threshold, once detecting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// Where the threshold comes from and the data behind it, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold_source: Option<String>,
    /// Windows the model was trained on (non-empty ones).
    #[serde(default)]
    pub training_windows: u64,
    /// Windows of normal data the operating threshold was calibrated on.
    #[serde(default)]
    pub calibration_windows: u64,
    /// New names expected per hour (`chids_detect::completeness`), from
    /// the last estimate on the learning data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_names_per_hour: Option<f64>,
    /// Errors confined to this workload (learning files, training).
    #[serde(default)]
    pub errors: u64,
    /// Where the model detection uses comes from, once detecting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelOrigin>,
}

/// Where a workload's model comes from: its fleet version (when it is on
/// the broker), the node that trained or published it, why and when.
/// Kept beside the bundle in the models folder (`origin.json`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ModelOrigin {
    /// The fleet's version number; none for a model only this node has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// The node that trained or published it (`accept:<who>` for
    /// `chids accept`).
    pub node: String,
    /// `trained`, or `accepted by <who>`.
    pub reason: String,
    /// When it was trained or published, ns since the epoch.
    pub time_ns: u64,
    /// SHA-256 over the bundle's files, as on the broker (see
    /// `fleet::bundle_digest`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// The nodes whose learning data it was trained on (pooled
    /// learning); empty for a model of one node's data.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub learnt_from: Vec<String>,
}

impl ModelOrigin {
    /// A fleet version's origin.
    pub(crate) fn of_version(v: &crate::fleet::ModelVersion) -> ModelOrigin {
        ModelOrigin {
            version: Some(v.version),
            node: v.node.clone(),
            reason: v.reason.clone(),
            time_ns: v.published_ns,
            digest: Some(v.digest.clone()),
            learnt_from: v.learnt_from.clone(),
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ContainerStatus {
    pub id: String,
    pub name: String,
    pub image: Option<String>,
    pub runtime: String,
    pub workload: String,
    pub cgroup: String,
    pub cgroup_id: u64,
    pub events: u64,
    pub windows: u64,
    pub alerts: u64,
    #[serde(default)]
    pub late_events: u64,
    /// Events of the container runtime's own tasks (runc init, conmon):
    /// counted, not fed to the model.
    #[serde(default)]
    pub runtime_events: u64,
    /// Windows over the threshold on rising counts alone while an exec
    /// session ran: not raised (the exec has its own record).
    #[serde(default)]
    pub exec_rises: u64,
}

/// A running container the agent does not watch, and why.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ExcludedStatus {
    pub id: String,
    pub name: String,
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub why: String,
}

/// A container watched while the agent finds out who it is (runtime state
/// on disk, the CRI socket): its events are held meanwhile, then replayed
/// into its workload's stream (see `held.rs`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct IdentifyingStatus {
    /// The container id (from its cgroup's name).
    pub id: String,
    /// The runtime its cgroup's name says (`podman`, `containerd`, ...).
    pub runtime: String,
    /// Always `identifying`.
    pub state: String,
    pub cgroup: String,
    pub cgroup_id: u64,
    /// When it was found (and watched), ns since the epoch.
    pub since_ns: u64,
    /// Events held for it so far.
    pub held_events: u64,
    /// Events past the bounds of what is held: not detected on.
    pub held_dropped: u64,
    /// Its cgroup is gone already (its events are still detected on once
    /// it is known).
    #[serde(default)]
    pub stopped: bool,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct SinkStatus {
    pub kind: String,
    pub delivered: u64,
    /// Alerts waiting in the outbox for this sink.
    #[serde(default)]
    pub pending: u64,
    #[serde(default)]
    pub pending_bytes: u64,
    pub lost: u64,
    pub connected: bool,
}

impl SinkStatus {
    pub(crate) fn new(kind: &str, s: SinkStats) -> SinkStatus {
        SinkStatus {
            kind: kind.to_string(),
            delivered: s.delivered,
            pending: s.pending,
            pending_bytes: s.pending_bytes,
            lost: s.lost,
            connected: s.connected,
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct AgentStatus {
    /// When this was written, ns since the epoch.
    pub updated_ns: u64,
    /// The agent's pid; 0 once it has stopped.
    pub pid: u32,
    pub running: bool,
    pub learn_for_seconds: f64,
    pub rss_bytes: u64,
    /// Entries in the kernel's map of watched cgroups.
    pub kernel_watched: usize,
    pub events: u64,
    pub dropped_events: u64,
    /// Events the windowers dropped for their time: more than two windows
    /// late, before a stream's first window, or absurdly far ahead.
    #[serde(default)]
    pub late_events: u64,
    pub alerts: u64,
    pub workloads: Vec<WorkloadStatus>,
    pub containers: Vec<ContainerStatus>,
    /// Running containers not watched (--include / --exclude).
    #[serde(default)]
    pub excluded: Vec<ExcludedStatus>,
    /// Containers watched, not yet identified (oldest first).
    #[serde(default)]
    pub identifying: Vec<IdentifyingStatus>,
    pub sinks: Vec<SinkStatus>,
}

const FILE: &str = "status.json";

/// Writes the status file; failures are ignored (status is advisory and
/// must never stop detection).
pub(crate) fn write(state_dir: &Path, status: &AgentStatus) {
    let Ok(text) = serde_json::to_vec_pretty(status) else {
        return;
    };
    // A fresh temporary name, then a rename: never through a planted link.
    let _ = chids_core::output::write_file(
        &state_dir.join(FILE),
        &text,
        chids_core::output::OUTPUT_MODE,
    );
}

/// Reads `<state_dir>/status.json`.
pub fn read_status(state_dir: &Path) -> Result<AgentStatus, String> {
    let path = state_dir.join(FILE);
    let text = fs::read_to_string(&path).map_err(|e| {
        format!(
            "{}: {e} (is `chids agent --state-dir {}` running?)",
            path.display(),
            state_dir.display()
        )
    })?;
    serde_json::from_str(&text).map_err(|e| {
        format!(
            "{}: line {} column {}: {e}",
            path.display(),
            e.line(),
            e.column()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_status(dir.path()).unwrap_err().contains("status.json"));
        let st = AgentStatus {
            pid: 42,
            running: true,
            workloads: vec![WorkloadStatus {
                workload: "w".into(),
                state: "learning".into(),
                ..WorkloadStatus::default()
            }],
            ..AgentStatus::default()
        };
        write(dir.path(), &st);
        assert_eq!(read_status(dir.path()).unwrap(), st);
        fs::write(dir.path().join(FILE), "{\n\"pid\": \"x\"}").unwrap();
        assert!(read_status(dir.path()).unwrap_err().contains("line 2"));
    }
}
