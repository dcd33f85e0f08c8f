//! An alert's reasons, ranked.
//!
//! Order: what training never saw comes before what merely happened more
//! often, because a never-seen name is a fact while a rise is a degree.
//! Among the never-seen: a system call (the program does something new in
//! kind), then a program executed (`exec*` of an unseen path: something
//! new runs), then an endpoint (new network peer), then any other path.
//! Rising counts come last, the largest rise over the training maximum
//! first. Within one rank the agent's order (first occurrence) is kept.

use serde_json::Value;

use crate::alert::Reason;

/// At most this many reasons per alert (an alert from a hostile container
/// may list many; the agent already caps its lists at 32 each).
const MAX_REASONS: usize = 200;

const SYSCALL: f64 = 100.0;
const EXEC: f64 = 90.0;
const ENDPOINT: f64 = 80.0;
const PATH: f64 = 70.0;
/// Rising reasons rank in [RISING, RISING + 39], always below the unseen.
const RISING: f64 = 10.0;

/// A runtime's own name ranks this much lower (still above rising counts).
const RUNTIME_OWN: f64 = 15.0;
/// Process names of container runtimes at work inside a container's cgroup.
const RUNTIME_PROCESSES: &[&str] = &["runc", "crun", "conmon", "containerd-shim", "youki"];

fn runtime_process(p: &str) -> bool {
    RUNTIME_PROCESSES.iter().any(|r| p.starts_with(r))
}

const NETWORK_SYSCALLS: &[&str] = &[
    "connect", "bind", "accept", "accept4", "listen", "sendto", "sendmsg", "recvfrom",
];

fn str_of<'a>(v: &'a Value, keys: &[&str]) -> &'a str {
    keys.iter().find_map(|k| v[*k].as_str()).unwrap_or("")
}

fn list<'a>(v: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    v[key].as_array().into_iter().flatten().take(MAX_REASONS)
}

fn used_by(syscall: &str, process: &str) -> String {
    match (syscall.is_empty(), process.is_empty()) {
        (false, false) => format!("{syscall} by {process}"),
        (false, true) => syscall.to_string(),
        (true, false) => format!("by {process}"),
        (true, true) => String::new(),
    }
}

fn unseen_arg(a: &Value) -> Option<Reason> {
    let arg = a["arg"].as_str().or(a.as_str())?;
    let syscall = str_of(a, &["syscall"]);
    let process = str_of(a, &["process"]);
    let (kind, mut weight) = if syscall.starts_with("exec") {
        ("exec", EXEC)
    } else if NETWORK_SYSCALLS.contains(&syscall) || arg.starts_with("unix:") {
        ("endpoint", ENDPOINT)
    } else {
        ("path", PATH)
    };
    if runtime_process(process) {
        weight -= RUNTIME_OWN;
    }
    Some(Reason {
        kind,
        what: arg.to_string(),
        detail: used_by(syscall, process),
        weight,
    })
}

fn unseen_endpoint(e: &Value) -> Option<Reason> {
    let what = e.as_str().or_else(|| {
        ["endpoint", "what", "arg"]
            .iter()
            .find_map(|k| e[*k].as_str())
    })?;
    Some(Reason {
        kind: "endpoint",
        what: what.to_string(),
        detail: used_by(str_of(e, &["syscall"]), str_of(e, &["process"])),
        weight: ENDPOINT,
    })
}

fn rising(r: &Value) -> Option<Reason> {
    let what = r["what"].as_str()?;
    let count = r["count"].as_f64().unwrap_or(0.0);
    let max = r["training_max"].as_f64().unwrap_or(0.0);
    // How many times the training maximum; a never-seen count (max 0)
    // is the largest rise there is.
    let ratio = if max > 0.0 {
        count / max
    } else {
        f64::INFINITY
    };
    let closeness = if ratio.is_finite() && ratio >= 1.0 {
        1.0 - 1.0 / ratio
    } else if ratio.is_finite() {
        0.0
    } else {
        1.0
    };
    Some(Reason {
        kind: "rising",
        what: what.to_string(),
        detail: format!("{count} (training max {max})"),
        weight: RISING + 39.0 * closeness,
    })
}

/// Every reason the alert names, most telling first.
pub fn reasons(v: &Value) -> Vec<Reason> {
    let mut out: Vec<Reason> = list(v, "unseen_syscalls")
        .filter_map(|s| s.as_str())
        .map(|s| Reason {
            kind: "syscall",
            what: s.to_string(),
            detail: "never seen in training".to_string(),
            weight: SYSCALL,
        })
        .collect();
    out.extend(list(v, "unseen_args").filter_map(unseen_arg));
    out.extend(list(v, "unseen_endpoints").filter_map(unseen_endpoint));
    out.extend(list(v, "rising").filter_map(rising));
    // Stable: equal ranks keep the agent's order.
    out.sort_by(|a, b| b.weight.total_cmp(&a.weight));
    out.truncate(MAX_REASONS);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn whats(v: &Value) -> Vec<String> {
        reasons(v).into_iter().map(|r| r.what).collect()
    }

    #[test]
    fn unseen_before_rising_and_kinds_in_order() {
        let v = json!({
            "rising": [{"what": "read->write", "count": 40, "training_max": 20},
                       {"what": "openat", "count": 900, "training_max": 10}],
            "unseen_args": [{"arg": "/etc/shadow", "syscall": "openat", "process": "cat"},
                            {"arg": "10.0.0.9:4444", "syscall": "connect", "process": "nc"},
                            {"arg": "/tmp/ls", "syscall": "execve", "process": "sh"}],
            "unseen_endpoints": ["192.168.1.1:22"],
            "unseen_syscalls": ["ptrace"],
        });
        assert_eq!(
            whats(&v),
            [
                "ptrace",
                "/tmp/ls",
                "10.0.0.9:4444",
                "192.168.1.1:22",
                "/etc/shadow",
                "openat",
                "read->write"
            ]
        );
        let r = reasons(&v);
        assert_eq!(r[1].kind, "exec");
        assert_eq!(r[1].detail, "execve by sh");
        assert_eq!(r[2].kind, "endpoint");
        assert_eq!(r[4].kind, "path");
        assert_eq!(r[5].kind, "rising");
    }

    #[test]
    fn the_runtime_s_own_names_rank_below_the_workload_s() {
        let v = json!({"unseen_args": [
            {"arg": "/proc/self/fd", "syscall": "openat", "process": "runc:[2:INIT]"},
            {"arg": "/etc/passwd", "syscall": "openat", "process": "crun"},
            {"arg": "/etc/shadow", "syscall": "openat", "process": "cat"}],
            "rising": [{"what": "x", "count": 1, "training_max": 0}]});
        assert_eq!(
            whats(&v),
            ["/etc/shadow", "/proc/self/fd", "/etc/passwd", "x"]
        );
    }

    #[test]
    fn same_rank_keeps_the_agent_s_order() {
        let v = json!({"unseen_args": [{"arg": "/b"}, {"arg": "/a"}, {"arg": "/c"}]});
        assert_eq!(whats(&v), ["/b", "/a", "/c"]);
    }

    #[test]
    fn a_rise_from_nothing_ranks_first_among_rises() {
        let v = json!({"rising": [{"what": "x", "count": 3, "training_max": 2},
                                  {"what": "y", "count": 1, "training_max": 0},
                                  {"what": "z", "count": 1, "training_max": 5}]});
        assert_eq!(whats(&v), ["y", "x", "z"]);
        assert!(reasons(&v).iter().all(|r| r.weight < PATH));
    }

    #[test]
    fn hostile_shapes_are_skipped_and_capped() {
        let v = json!({"unseen_syscalls": [1, null, "open"], "unseen_args": [{"x": 1}, "/plain"],
                       "rising": [{"count": 2}], "unseen_endpoints": [{"endpoint": "unix:/s"}]});
        assert_eq!(whats(&v), ["open", "unix:/s", "/plain"]);
        let many: Vec<String> = (0..1000).map(|i| format!("s{i}")).collect();
        assert_eq!(
            reasons(&json!({ "unseen_syscalls": many })).len(),
            MAX_REASONS
        );
    }
}
