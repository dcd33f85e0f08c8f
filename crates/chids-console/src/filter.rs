//! The timeline's filters: by node, workload, container, kind and time.

use serde::Deserialize;

use crate::alert::Alert;

/// Most alerts one timeline request returns.
pub(crate) const MAX_LIMIT: usize = 1000;

/// A timeline query (the `/api/alerts` query string). Empty strings mean
/// "any", so the page can send every field every time.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub(crate) struct Filter {
    pub node: String,
    pub workload: String,
    /// A container's name or id.
    pub container: String,
    pub kind: String,
    /// Alerts at or after this time (ns since the epoch).
    pub since_ns: Option<u64>,
    /// Alerts before this time.
    pub until_ns: Option<u64>,
    /// Only alerts after this stream sequence (what the page has not seen).
    pub after: Option<u64>,
    /// At most this many, newest first (default and ceiling [`MAX_LIMIT`]).
    pub limit: Option<usize>,
}

fn any_or(want: &str, have: &str) -> bool {
    want.is_empty() || want == have
}

impl Filter {
    pub fn matches(&self, a: &Alert) -> bool {
        any_or(&self.node, &a.node)
            && any_or(&self.workload, &a.workload)
            && any_or(&self.kind, &a.kind)
            && (self.container.is_empty()
                || self.container == a.container
                || self.container == a.container_id)
            && self.since_ns.is_none_or(|t| a.time_ns >= t)
            && self.until_ns.is_none_or(|t| a.time_ns < t)
            && self.after.is_none_or(|s| a.seq > s)
    }

    pub fn limit(&self) -> usize {
        self.limit.unwrap_or(MAX_LIMIT).clamp(1, MAX_LIMIT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn alert(seq: u64, node: &str, workload: &str, name: &str, kind: &str, t: u64) -> Alert {
        Alert::from_json(
            seq,
            &json!({"node": node, "workload": workload, "container_name": name,
                    "container_id": format!("{name}-id"), "kind": kind, "time_ns": t}),
        )
    }

    #[test]
    fn each_field_narrows() {
        let a = alert(5, "n1", "web", "web-1", "anomaly", 100);
        assert!(Filter::default().matches(&a));
        let f = |f: Filter| f.matches(&a);
        assert!(f(Filter {
            node: "n1".into(),
            ..Filter::default()
        }));
        assert!(!f(Filter {
            node: "n2".into(),
            ..Filter::default()
        }));
        assert!(!f(Filter {
            workload: "db".into(),
            ..Filter::default()
        }));
        assert!(f(Filter {
            container: "web-1".into(),
            ..Filter::default()
        }));
        assert!(f(Filter {
            container: "web-1-id".into(),
            ..Filter::default()
        }));
        assert!(!f(Filter {
            container: "web".into(),
            ..Filter::default()
        }));
        assert!(!f(Filter {
            kind: "exec".into(),
            ..Filter::default()
        }));
        assert!(f(Filter {
            since_ns: Some(100),
            ..Filter::default()
        }));
        assert!(!f(Filter {
            since_ns: Some(101),
            ..Filter::default()
        }));
        assert!(!f(Filter {
            until_ns: Some(100),
            ..Filter::default()
        }));
        assert!(f(Filter {
            after: Some(4),
            ..Filter::default()
        }));
        assert!(!f(Filter {
            after: Some(5),
            ..Filter::default()
        }));
    }

    #[test]
    fn limit_is_bounded() {
        assert_eq!(Filter::default().limit(), MAX_LIMIT);
        assert_eq!(
            Filter {
                limit: Some(0),
                ..Filter::default()
            }
            .limit(),
            1
        );
        assert_eq!(
            Filter {
                limit: Some(1 << 40),
                ..Filter::default()
            }
            .limit(),
            MAX_LIMIT
        );
    }
}
