//! The console's accept button (`chids ui --allow-accept`): the accept of
//! `chids accept`, on one alert the console holds, into the fleet's shared
//! bundle on the broker (as `chids accept --nats` does) or into a workload's
//! bundle in an agent's `--models` folder.

use std::path::{Path, PathBuf};

use serde_json::Value;

use chids_agent::workloads::ModelStore;
use chids_console::{AcceptHook, Accepted};
use chids_detect::accept::AlertReasons;

use super::accept::{accept_all, fleet_store, into_fleet, Folded};

/// The alert as accept reads it, and its workload.
fn reasons_of(alert: &Value) -> Result<(AlertReasons, String), String> {
    let a = AlertReasons::parse(&alert.to_string(), "the alert")?;
    let Some(workload) = a.workload.clone().filter(|w| !w.is_empty()) else {
        return Err("the alert names no workload, so there is no model to fold it into".into());
    };
    Ok((a, workload))
}

/// The page's answer from what folding did.
fn answer(folded: Folded, summary: String, model: String) -> Accepted {
    let audit = folded
        .audit
        .first()
        .and_then(|a| serde_json::to_value(a).ok());
    let mut notes = folded.lines;
    notes.extend(folded.warnings);
    Accepted {
        summary,
        model,
        audit,
        notes,
    }
}

/// Into the fleet's bundle: fetched, folded into, published as the next
/// version, which agents following the broker adopt.
pub struct FleetAccept {
    pub url: String,
    pub models_bucket: String,
    pub bundles_bucket: String,
}

impl AcceptHook for FleetAccept {
    fn target(&self) -> String {
        format!(
            "the fleet's shared model on {} (bucket {}), published as its next version",
            self.url, self.models_bucket
        )
    }

    fn accept(&self, alert: &Value, who: &str) -> Result<Accepted, String> {
        let (a, workload) = reasons_of(alert)?;
        // A connection per accept: accepts are rare, and a broker that
        // went away meanwhile costs nothing to find again.
        let store = fleet_store(&self.url, &self.models_bucket, &self.bundles_bucket, who)
            .map_err(|e| format!("{e:#}"))?;
        let done = into_fleet(&store, &workload, &[a], who).map_err(|e| format!("{e:#}"))?;
        let (summary, version) = match done.published {
            Some(v) => (
                format!(
                    "folded into version {} of {workload}; published as version {v}",
                    done.version
                ),
                v,
            ),
            None => (
                format!(
                    "already accepted: version {} of {workload} stays",
                    done.version
                ),
                done.version,
            ),
        };
        let model = format!("{workload} version {version} on {}", self.url);
        Ok(answer(done.folded, summary, model))
    }
}

/// Into the workload's bundle in an agent's `--models` folder (the agent
/// reads it when it starts).
pub struct FolderAccept {
    dir: PathBuf,
}

impl FolderAccept {
    /// `dir` must be an existing folder: the console never makes one.
    pub fn new(dir: &Path) -> Result<FolderAccept, String> {
        if !std::fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir()) {
            return Err(format!(
                "--models {}: not a folder (give an agent's --models folder, by default STATE_DIR/models)",
                dir.display()
            ));
        }
        ModelStore::open(dir)?;
        Ok(FolderAccept {
            dir: dir.to_path_buf(),
        })
    }
}

impl AcceptHook for FolderAccept {
    fn target(&self) -> String {
        format!(
            "the workload's model in {} (an agent reads it when it starts)",
            self.dir.display()
        )
    }

    fn accept(&self, alert: &Value, who: &str) -> Result<Accepted, String> {
        let (a, workload) = reasons_of(alert)?;
        let store = ModelStore::open(&self.dir)?;
        let Some((mut bundle, folder)) = store.load(&workload)? else {
            return Err(format!(
                "{}: no model of workload {workload} (is it still learning?)",
                self.dir.display()
            ));
        };
        let folded = accept_all(&mut bundle, &[a], who);
        let summary = if folded.changed > 0 {
            store.save(&workload, &bundle)?;
            format!("folded into the model of {workload} and saved")
        } else {
            format!("already accepted: the model of {workload} stays")
        };
        Ok(answer(folded, summary, folder.display().to_string()))
    }
}
