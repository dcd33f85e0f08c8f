//! The workloads view: what each agent says in its `status.json` (given
//! `--state-dir` folders), and, when a bucket of shared models is named,
//! each model's version and origin from it.
//!
//! Read as JSON values, field by field, so agents older or newer than
//! this console still show what they have.

use std::io::Read;
use std::path::Path;

use serde::Serialize;
use serde_json::Value;

/// A status file larger than this is not read (they are a few KiB).
const MAX_STATUS: u64 = 16 << 20;
/// Keys read from the models bucket, at most.
const MAX_MODELS: usize = 1000;

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub(crate) struct WorkloadRow {
    /// The agent's node name when it sends one, else its state folder.
    pub node: String,
    pub workload: String,
    /// `learning`, `training`, `detecting` (as the agent says).
    pub state: String,
    pub containers: u64,
    pub windows: u64,
    pub alerts: u64,
    /// How complete the baseline is, 0 to 1, where known.
    pub completeness: Option<f64>,
    /// What the completeness figure is.
    pub completeness_note: String,
    pub threshold: Option<f64>,
    pub threshold_source: String,
    pub model_version: String,
    pub model_origin: String,
    /// The agent is not running (its status file says so).
    pub stale: bool,
}

fn text(v: &Value, keys: &[&str]) -> String {
    keys.iter()
        .find_map(|k| match &v[*k] {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
        .unwrap_or_default()
}

fn num(v: &Value, keys: &[&str]) -> Option<f64> {
    keys.iter()
        .find_map(|k| v[*k].as_f64())
        .filter(|x| x.is_finite())
}

/// The completeness figure: the agent's own estimate when it sends one,
/// else, while learning, the share of the minimum learning time done.
fn completeness(w: &Value, learn_for: Option<f64>) -> (Option<f64>, String) {
    if let Some(c) = num(w, &["completeness", "baseline_completeness"]) {
        return (Some(c.clamp(0.0, 1.0)), "agent's estimate".into());
    }
    let learned = num(w, &["learned_seconds"]);
    match (text(w, &["state"]).as_str(), learned, learn_for) {
        ("learning", Some(l), Some(f)) if f > 0.0 => (
            Some((l / f).clamp(0.0, 1.0)),
            format!("{l:.0} s of {f:.0} s learning"),
        ),
        (_, Some(l), _) => (None, format!("learned {l:.0} s")),
        _ => (None, String::new()),
    }
}

fn row(node: &str, stale: bool, learn_for: Option<f64>, w: &Value) -> WorkloadRow {
    let (completeness, completeness_note) = completeness(w, learn_for);
    let model = &w["model"];
    WorkloadRow {
        node: node.to_string(),
        workload: text(w, &["workload"]),
        state: text(w, &["state"]),
        containers: w["containers"].as_u64().unwrap_or(0),
        windows: w["windows"].as_u64().unwrap_or(0),
        alerts: w["alerts"].as_u64().unwrap_or(0),
        completeness,
        completeness_note,
        threshold: num(w, &["threshold", "operating_threshold"]),
        threshold_source: text(w, &["threshold_source", "threshold_from"]),
        model_version: [text(w, &["model_version"]), text(model, &["version"])].concat(),
        model_origin: [text(w, &["model_origin"]), text(model, &["origin", "node"])].concat(),
        stale,
    }
}

/// The rows of one agent's status file, or why there are none.
pub(crate) fn from_state_dir(dir: &Path) -> Result<Vec<WorkloadRow>, String> {
    let path = dir.join("status.json");
    let mut text_buf = String::new();
    std::fs::File::open(&path)
        .and_then(|f| f.take(MAX_STATUS).read_to_string(&mut text_buf))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let v: Value = serde_json::from_str(&text_buf).map_err(|e| {
        format!(
            "{}: line {} column {}: {e}",
            path.display(),
            e.line(),
            e.column()
        )
    })?;
    let node = match text(&v, &["node", "hostname"]) {
        n if n.is_empty() => dir.display().to_string(),
        n => n,
    };
    let stale = v["running"] == Value::Bool(false);
    let learn_for = num(&v, &["learn_for_seconds"]);
    Ok(v["workloads"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|w| row(&node, stale, learn_for, w))
        .collect())
}

/// Models in the shared bucket: one row each, from the entry's JSON where
/// it is JSON (`workload`, `version`, `node`/`origin`), else its key and
/// revision.
pub(crate) async fn from_models_bucket(
    js: &async_nats::jetstream::Context,
    bucket: &str,
) -> Result<Vec<WorkloadRow>, String> {
    use futures_util::StreamExt;
    let kv = js
        .get_key_value(bucket)
        .await
        .map_err(|e| format!("models bucket {bucket}: {e}"))?;
    let mut keys = kv
        .keys()
        .await
        .map_err(|e| format!("models bucket {bucket}: {e}"))?;
    let mut out = Vec::new();
    while let Some(key) = keys.next().await {
        let Ok(key) = key else { break };
        if out.len() >= MAX_MODELS {
            break;
        }
        let Ok(Some(entry)) = kv.entry(key.as_str()).await else {
            continue;
        };
        let v: Value = serde_json::from_slice(&entry.value).unwrap_or(Value::Null);
        let mut r = WorkloadRow {
            node: "models bucket".into(),
            workload: match text(&v, &["workload"]) {
                w if w.is_empty() => key.clone(),
                w => w,
            },
            state: "shared model".into(),
            threshold: num(&v, &["threshold", "operating_threshold"]),
            model_version: match text(&v, &["version"]) {
                s if s.is_empty() => format!("revision {}", entry.revision),
                s => s,
            },
            model_origin: text(&v, &["origin", "node"]),
            ..WorkloadRow::default()
        };
        r.completeness_note = text(&v, &["trained_at", "time"]);
        out.push(r);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_file_rows_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        assert!(from_state_dir(dir.path())
            .unwrap_err()
            .contains("status.json"));
        std::fs::write(
            dir.path().join("status.json"),
            r#"{"running": true, "learn_for_seconds": 60, "workloads": [
                {"workload": "a", "state": "learning", "learned_seconds": 30, "containers": 2},
                {"workload": "b", "state": "detecting", "learned_seconds": 60, "threshold": 0.5,
                 "model": {"version": "3", "origin": "node-a"}, "extra": [1]}]}"#,
        )
        .unwrap();
        let rows = from_state_dir(dir.path()).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].completeness, Some(0.5));
        assert_eq!(rows[0].containers, 2);
        assert_eq!(rows[1].completeness, None);
        assert_eq!(rows[1].threshold, Some(0.5));
        assert_eq!(rows[1].model_version, "3");
        assert_eq!(rows[1].model_origin, "node-a");
        assert!(!rows[1].stale);
        std::fs::write(dir.path().join("status.json"), "{\n  \"workloads\": [}").unwrap();
        assert!(from_state_dir(dir.path()).unwrap_err().contains("line 2"));
    }
}
