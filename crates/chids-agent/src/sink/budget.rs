//! The per-workload alert budget: at most `per_period` alerts of one
//! workload per period (a minute); past that, the workload's alerts of the
//! period are folded into one summary record (`"kind": "suppressed"`, how
//! many, the first and last `alert_id`), written when the period ends.
//!
//! So a container raising alerts nonstop costs the outbox one commit per
//! alert up to the budget and one more per minute: it can neither fill
//! the outbox nor stand in front of another workload's alerts.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::Serialize;

/// What the budget says about one alert.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Send,
    Suppress,
}

/// Alerts of one workload folded away in one period.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct Suppressed {
    /// This record's own id (set when it is committed).
    pub alert_id: String,
    pub kind: &'static str,
    pub workload: String,
    pub count: u64,
    pub first_alert_id: String,
    pub last_alert_id: String,
    /// Wall-clock times (ns since the epoch) of the first and last.
    pub first_time_ns: u64,
    pub last_time_ns: u64,
    /// The budget: alerts per period, and the period in seconds.
    pub budget: u32,
    pub period_seconds: u64,
}

#[derive(Debug)]
struct Period {
    start: Instant,
    sent: u32,
    folded: Option<Suppressed>,
}

#[derive(Debug)]
pub struct AlertBudget {
    per_period: u32,
    period: Duration,
    workloads: HashMap<String, Period>,
    /// Folded alerts so far, per workload (for the metrics).
    suppressed_total: HashMap<String, u64>,
}

impl AlertBudget {
    /// `per_period` 0: no limit.
    pub fn new(per_period: u32, period: Duration) -> AlertBudget {
        AlertBudget {
            per_period,
            period,
            workloads: HashMap::new(),
            suppressed_total: HashMap::new(),
        }
    }

    /// Whether `workload`'s next alert goes out, at `now`. A summary of a
    /// period that ended is left for [`AlertBudget::due`].
    pub fn admit(&mut self, workload: &str, now: Instant) -> Verdict {
        if self.per_period == 0 {
            return Verdict::Send;
        }
        let p = self
            .workloads
            .entry(workload.to_string())
            .or_insert_with(|| Period {
                start: now,
                sent: 0,
                folded: None,
            });
        if now.duration_since(p.start) >= self.period && p.folded.is_none() {
            p.start = now;
            p.sent = 0;
        }
        if p.sent < self.per_period && p.folded.is_none() {
            p.sent += 1;
            Verdict::Send
        } else {
            Verdict::Suppress
        }
    }

    /// Records a suppressed alert (its id and wall-clock time).
    pub fn fold(&mut self, workload: &str, alert_id: &str, time_ns: u64) {
        *self
            .suppressed_total
            .entry(workload.to_string())
            .or_default() += 1;
        let Some(p) = self.workloads.get_mut(workload) else {
            return;
        };
        let s = p.folded.get_or_insert_with(|| Suppressed {
            alert_id: String::new(),
            kind: "suppressed",
            workload: workload.to_string(),
            count: 0,
            first_alert_id: alert_id.to_string(),
            last_alert_id: String::new(),
            first_time_ns: time_ns,
            last_time_ns: 0,
            budget: self.per_period,
            period_seconds: self.period.as_secs(),
        });
        s.count += 1;
        s.last_alert_id = alert_id.to_string();
        s.last_time_ns = time_ns;
    }

    /// Summaries of periods that have ended by `now` (or all of them when
    /// `all`, at shutdown); their workloads start a fresh period. Idle
    /// workloads are forgotten.
    pub(crate) fn due(&mut self, now: Instant, all: bool) -> Vec<Suppressed> {
        let mut out = Vec::new();
        let period = self.period;
        self.workloads.retain(|_, p| {
            if !all && now.duration_since(p.start) < period {
                return true;
            }
            match p.folded.take() {
                Some(s) => {
                    out.push(s);
                    // The folding period ends here; the next alert opens
                    // a new one.
                    p.start = now;
                    p.sent = 0;
                    true
                }
                None => false,
            }
        });
        out.sort_by(|a, b| a.workload.cmp(&b.workload));
        out
    }

    /// Folded alerts per workload so far.
    pub(crate) fn suppressed_total(&self) -> &HashMap<String, u64> {
        &self.suppressed_total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_past_the_budget_and_summarises_once_per_period() {
        let t0 = Instant::now();
        let minute = Duration::from_secs(60);
        let mut b = AlertBudget::new(2, minute);
        for i in 0..5 {
            let v = b.admit("noisy", t0);
            if i < 2 {
                assert_eq!(v, Verdict::Send);
            } else {
                assert_eq!(v, Verdict::Suppress);
                b.fold("noisy", &format!("n.{i}"), i);
            }
        }
        // Another workload is not affected.
        assert_eq!(b.admit("quiet", t0), Verdict::Send);
        assert!(b.due(t0 + Duration::from_secs(30), false).is_empty());
        let due = b.due(t0 + minute, false);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].count, 3);
        assert_eq!(due[0].first_alert_id, "n.2");
        assert_eq!(due[0].last_alert_id, "n.4");
        assert_eq!(b.suppressed_total()["noisy"], 3);
        // A fresh period: the budget is back.
        assert_eq!(b.admit("noisy", t0 + minute), Verdict::Send);
        assert!(b.due(t0 + minute, true).is_empty());
    }

    #[test]
    fn zero_means_no_limit() {
        let mut b = AlertBudget::new(0, Duration::from_secs(60));
        let t0 = Instant::now();
        assert!((0..1000).all(|_| b.admit("w", t0) == Verdict::Send));
    }
}
