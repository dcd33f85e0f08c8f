//! One alert as the console shows it, read from the agent's JSON.
//!
//! The wire format grows (other work adds `kind`, `alert_id`, `score`,
//! `rising`, `unseen_endpoints`, ...), so nothing here is required: every
//! field is looked up in a `serde_json::Value` and a missing or oddly typed
//! one is simply absent. The original JSON is kept for the alert's page.

use serde::Serialize;
use serde_json::Value;

/// Why an alert was raised, one named thing.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Reason {
    /// `syscall`, `exec`, `endpoint`, `path`, `rising` or `other`.
    pub kind: &'static str,
    /// The name itself (a syscall, a path, an endpoint, a transition).
    pub what: String,
    /// What used it, or how far it rose, in words.
    pub detail: String,
    /// Rank key: higher first.
    #[serde(skip)]
    pub weight: f64,
}

/// The fields the timeline, the filters and the alert page use.
#[derive(Clone, Debug, Serialize)]
pub struct Alert {
    /// The console's own number (the JetStream stream sequence): unique
    /// in the stream, used in the page's links.
    pub seq: u64,
    /// The agent's id (`alert_id`, else `id`).
    pub id: String,
    /// `anomaly` (the default when absent), `exec`, `suppressed`, ...
    pub kind: String,
    pub time_ns: u64,
    pub node: String,
    pub workload: String,
    /// Container name where known, else its id.
    pub container: String,
    pub container_id: String,
    pub image: String,
    pub error: Option<f64>,
    pub threshold: Option<f64>,
    /// `score` as sent, else error / threshold.
    pub score: Option<f64>,
    /// Processes named by the alert (distinct, in order).
    pub processes: Vec<String>,
    /// Ranked, most telling first.
    pub reasons: Vec<Reason>,
    /// Names the agent counted but did not list.
    pub more_reasons: u64,
    /// One line for the timeline: the first reasons, or the kind's gist.
    pub summary: String,
}

fn text(v: &Value, keys: &[&str]) -> String {
    keys.iter()
        .find_map(|k| match &v[*k] {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
        .unwrap_or_default()
}

fn number(v: &Value, key: &str) -> Option<f64> {
    v[key].as_f64().filter(|x| x.is_finite())
}

fn count(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or(0)
}

/// The node an alert came from: the agent's `node`/`host` field when it
/// sends one (today's agents do not), else `-`.
fn node_of(v: &Value) -> String {
    let n = text(v, &["node", "hostname", "host"]);
    if n.is_empty() {
        "-".to_string()
    } else {
        n
    }
}

impl Alert {
    /// Reads an alert; `seq` is its place in the stream.
    pub(crate) fn from_json(seq: u64, v: &Value) -> Alert {
        let error = number(v, "error");
        let threshold = number(v, "threshold");
        let score = number(v, "score").or(match (error, threshold) {
            (Some(e), Some(t)) if t > 0.0 => Some(e / t),
            _ => None,
        });
        let container_id = text(v, &["container_id", "container"]);
        let mut container = text(v, &["container_name"]);
        if container.is_empty() {
            container = container_id.clone();
        }
        let mut id = text(v, &["alert_id", "id"]);
        if id.is_empty() {
            id = format!("#{seq}");
        }
        let kind = match text(v, &["kind"]) {
            k if k.is_empty() => "anomaly".to_string(),
            k => k,
        };
        let reasons = crate::rank::reasons(v);
        let more_reasons = count(v, "more_unseen_syscalls")
            + count(v, "more_unseen_args")
            + count(v, "more_unseen_endpoints");
        let mut alert = Alert {
            seq,
            id,
            kind,
            // A `suppressed` summary has the times of the first and last
            // alert it folded, not one of its own.
            time_ns: ["time_ns", "last_time_ns", "first_time_ns"]
                .iter()
                .find_map(|k| v[*k].as_u64())
                .unwrap_or(0),
            node: node_of(v),
            workload: text(v, &["workload"]),
            container,
            container_id,
            image: text(v, &["image"]),
            error,
            threshold,
            score,
            processes: processes(v),
            reasons,
            more_reasons,
            summary: String::new(),
        };
        alert.summary = summary(&alert, v);
        alert
    }
}

/// Distinct processes: the alert's own `process`/`comm`, then those of
/// its unseen arguments.
fn processes(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let own = text(v, &["process", "comm"]);
    let from_args = v["unseen_args"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| text(a, &["process"]));
    for p in std::iter::once(own).chain(from_args) {
        if !p.is_empty() && !out.contains(&p) && out.len() < 16 {
            out.push(p);
        }
    }
    out
}

fn summary(a: &Alert, v: &Value) -> String {
    match a.kind.as_str() {
        "exec" => {
            let cmd = text(v, &["command", "cmdline", "command_line"]);
            let user = text(v, &["user"]);
            match (cmd.is_empty(), user.is_empty()) {
                (false, false) => format!("exec {cmd} (user {user})"),
                (false, true) => format!("exec {cmd}"),
                _ => "exec session".to_string(),
            }
        }
        "suppressed" => {
            let budget = match (text(v, &["budget"]), text(v, &["period_seconds"])) {
                (b, p) if !b.is_empty() && !p.is_empty() => format!(" (budget {b} per {p} s)"),
                _ => " (over the alert budget)".to_string(),
            };
            format!("{} alert(s) folded{budget}", text(v, &["count"]))
        }
        _ if a.reasons.is_empty() => "no reason given".to_string(),
        _ => a
            .reasons
            .iter()
            .take(3)
            .map(|r| r.what.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn today_s_alert() {
        let v = json!({"id": "a-1", "time_ns": 5, "container": "abc", "container_name": "web",
            "container_id": "abcdef", "image": "img:1", "workload": "img:1", "error": 3.0, "threshold": 1.5,
            "unseen_syscalls": [], "unseen_args": [{"arg": "/etc/shadow", "syscall": "openat", "process": "cat"}],
            "more_unseen_args": 2});
        let a = Alert::from_json(7, &v);
        assert_eq!(a.id, "a-1");
        assert_eq!(a.kind, "anomaly");
        assert_eq!(a.container, "web");
        assert_eq!(a.container_id, "abcdef");
        assert_eq!(a.score, Some(2.0));
        assert_eq!(a.processes, vec!["cat"]);
        assert_eq!(a.more_reasons, 2);
        assert_eq!(a.summary, "/etc/shadow");
        assert_eq!(a.node, "-");
    }

    #[test]
    fn odd_and_missing_fields_are_absent_not_errors() {
        let v = json!({"alert_id": 12, "kind": "exec", "error": "NaN", "threshold": 0,
            "command": "sh -c true", "container": "c1", "unseen_args": "not a list"});
        let a = Alert::from_json(1, &v);
        assert_eq!(a.id, "12");
        assert_eq!(a.container, "c1");
        assert_eq!(a.score, None);
        assert_eq!(a.summary, "exec sh -c true");
        let empty = Alert::from_json(2, &json!(null));
        assert_eq!(empty.id, "#2");
        assert_eq!(empty.kind, "anomaly");
        assert_eq!(empty.summary, "no reason given");
    }

    #[test]
    fn suppressed_summary_as_the_agent_sends_it() {
        let v = json!({"alert_id": "n-9", "kind": "suppressed", "workload": "w", "count": 12,
            "first_alert_id": "n-1", "last_alert_id": "n-8", "first_time_ns": 10, "last_time_ns": 20,
            "budget": 10, "period_seconds": 60});
        let a = Alert::from_json(3, &v);
        assert_eq!(a.time_ns, 20);
        assert_eq!(a.kind, "suppressed");
        assert_eq!(a.summary, "12 alert(s) folded (budget 10 per 60 s)");
    }

    #[test]
    fn sent_score_wins() {
        let v = json!({"error": 3.0, "threshold": 1.0, "score": 2.5});
        assert_eq!(Alert::from_json(1, &v).score, Some(2.5));
    }
}
