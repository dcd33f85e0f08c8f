//! The alerts the console holds: the newest ones, bounded in count and
//! bytes (the stream may hold more than a browser needs or memory allows).

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use crate::alert::Alert;
use crate::filter::Filter;

/// Distinct values listed per filter menu.
const MAX_FACET: usize = 500;

struct Stored {
    alert: Alert,
    raw: Arc<Value>,
    bytes: usize,
}

pub struct Store {
    alerts: VecDeque<Stored>,
    bytes: usize,
    max_alerts: usize,
    max_bytes: usize,
    /// Alerts dropped to stay within the bounds, and messages refused.
    pub evicted: u64,
    pub refused: u64,
}

/// The values the filter menus offer.
#[derive(Debug, Default, Serialize, PartialEq)]
pub(crate) struct Facets {
    pub nodes: BTreeSet<String>,
    pub workloads: BTreeSet<String>,
    pub containers: BTreeSet<String>,
    pub kinds: BTreeSet<String>,
}

fn add(set: &mut BTreeSet<String>, v: &str) {
    if !v.is_empty() && set.len() < MAX_FACET {
        set.insert(v.to_string());
    }
}

impl Store {
    pub fn new(max_alerts: usize, max_bytes: usize) -> Store {
        Store {
            alerts: VecDeque::new(),
            bytes: 0,
            max_alerts: max_alerts.max(1),
            max_bytes,
            evicted: 0,
            refused: 0,
        }
    }

    /// Adds one message of the stream, `bytes` long. Not JSON: refused
    /// (counted), the console goes on.
    pub fn push(&mut self, seq: u64, payload: &[u8]) -> Result<(), String> {
        let raw: Value = match serde_json::from_slice(payload) {
            Ok(v @ Value::Object(_)) => v,
            Ok(_) => {
                self.refused += 1;
                return Err(format!("stream message {seq}: not a JSON object"));
            }
            Err(e) => {
                self.refused += 1;
                return Err(format!("stream message {seq}: not JSON: {e}"));
            }
        };
        let alert = Alert::from_json(seq, &raw);
        // What it costs held twice (raw and read), roughly.
        let bytes = payload.len() * 2 + 256;
        self.alerts.push_back(Stored {
            alert,
            raw: Arc::new(raw),
            bytes,
        });
        self.bytes += bytes;
        while self.alerts.len() > self.max_alerts
            || (self.bytes > self.max_bytes && self.alerts.len() > 1)
        {
            let old = self.alerts.pop_front().expect("not empty");
            self.bytes -= old.bytes;
            self.evicted += 1;
        }
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.alerts.len()
    }

    pub(crate) fn last_seq(&self) -> u64 {
        self.alerts.back().map_or(0, |s| s.alert.seq)
    }

    /// Matching alerts, newest first.
    pub fn query(&self, f: &Filter) -> Vec<Alert> {
        self.alerts
            .iter()
            .rev()
            .filter(|s| f.matches(&s.alert))
            .take(f.limit())
            .map(|s| s.alert.clone())
            .collect()
    }

    pub(crate) fn facets(&self) -> Facets {
        let mut out = Facets::default();
        for s in &self.alerts {
            let a = &s.alert;
            add(&mut out.nodes, &a.node);
            add(&mut out.workloads, &a.workload);
            add(&mut out.containers, &a.container);
            add(&mut out.kinds, &a.kind);
        }
        out
    }

    fn find(&self, seq: u64) -> Option<&Stored> {
        let i = self
            .alerts
            .binary_search_by_key(&seq, |s| s.alert.seq)
            .ok()?;
        self.alerts.get(i)
    }

    /// An alert and its original JSON.
    pub fn get(&self, seq: u64) -> Option<(Alert, Arc<Value>)> {
        self.find(seq)
            .map(|s| (s.alert.clone(), Arc::clone(&s.raw)))
    }

    /// The alerts of the same container within `span_ns` of `a`, in time
    /// order (`a` included): what the alert page charts when the alert
    /// carries no scores of its neighbouring windows.
    pub fn around(&self, a: &Alert, span_ns: u64) -> Vec<Alert> {
        let mut out: Vec<Alert> = self
            .alerts
            .iter()
            .map(|s| &s.alert)
            .filter(|o| {
                o.container_id == a.container_id
                    && o.container == a.container
                    && o.time_ns.abs_diff(a.time_ns) <= span_ns
            })
            .take(500)
            .cloned()
            .collect();
        out.sort_by_key(|o| (o.time_ns, o.seq));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(name: &str, t: u64) -> Vec<u8> {
        format!(r#"{{"container_name":"{name}","container_id":"{name}","time_ns":{t},"kind":"anomaly"}}"#)
            .into_bytes()
    }

    #[test]
    fn bounded_newest_first_and_refusals_counted() {
        let mut s = Store::new(3, usize::MAX);
        for i in 1..=5 {
            s.push(i, &msg("c", i * 10)).unwrap();
        }
        assert!(s.push(6, b"[1]").is_err());
        assert!(s.push(7, b"{oops").unwrap_err().contains("message 7"));
        assert_eq!((s.len(), s.evicted, s.refused), (3, 2, 2));
        let seqs: Vec<u64> = s.query(&Filter::default()).iter().map(|a| a.seq).collect();
        assert_eq!(seqs, [5, 4, 3]);
        assert!(s.get(2).is_none());
        assert_eq!(s.get(4).unwrap().1["time_ns"], 40);
        assert_eq!(s.last_seq(), 5);
    }

    #[test]
    fn bytes_bound_keeps_the_newest() {
        let mut s = Store::new(1000, 1500);
        for i in 1..=10 {
            s.push(i, &msg("c", i)).unwrap();
        }
        assert!(s.len() < 10 && s.len() >= 1);
        assert_eq!(s.last_seq(), 10);
    }

    #[test]
    fn around_is_same_container_within_span() {
        let mut s = Store::new(100, usize::MAX);
        s.push(1, &msg("a", 100)).unwrap();
        s.push(2, &msg("b", 110)).unwrap();
        s.push(3, &msg("a", 120)).unwrap();
        s.push(4, &msg("a", 1000)).unwrap();
        let (a, _) = s.get(3).unwrap();
        let seqs: Vec<u64> = s.around(&a, 50).iter().map(|a| a.seq).collect();
        assert_eq!(seqs, [1, 3]);
        let f = s.facets();
        assert_eq!(f.containers.into_iter().collect::<Vec<_>>(), ["a", "b"]);
    }
}
