//! Path positions that hold one-off names (modern mode).
//!
//! Servers create files whose names are new every time: upload temp files,
//! `mkstemp` and `tempfile` names, session files, caches named by a hash.
//! Each one is an argument training never saw, so without help every
//! normal upload is an "unseen argument". Training shows which directories
//! behave like that: their children are mostly seen in one recording only
//! (high churn across runs), or look generated (hex hashes, UUIDs, numbers,
//! random suffixes). Such a directory becomes a pattern node `DIR/*`; a
//! file access (open, stat) to a name directly in it counts as seen. What
//! a pattern never covers: running a program (`execve`, `clone`) from it,
//! and names outside it.
//!
//! Patterns work on normalised arguments (see [`crate::mode::normalize_path`]),
//! which keep at most a short prefix of a path (deeper names are already
//! cut off there). A pattern replaces one name of the path by `*`: the
//! last (`/tmp/*`) or one in the middle (`/proc/*/stat` for pids).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// A path position that holds one-off names, with the evidence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathPattern {
    /// The path with one name replaced by `*` (`/var/cache/app/*`).
    pub pattern: String,
    /// Distinct names training saw in that position.
    pub distinct_names: u64,
    /// Of those, names seen in one training recording only.
    pub one_off_names: u64,
    /// Of those, names that look generated (hashes, numbers, random suffixes).
    pub generated_names: u64,
    /// Training recordings that used the position.
    pub recordings: u64,
}

/// A directory needs at least this many distinct children to be a pattern.
pub(crate) const MIN_NAMES: usize = 4;
/// ... and at least this share of them one-off or generated.
pub(crate) const MIN_CHURN_SHARE: f64 = 0.5;

/// Paths with more names than this have no pattern positions: each
/// position costs a copy of the path, so a hostile deep path would cost
/// its depth squared in pattern statistics.
pub(crate) const MAX_PATTERN_DEPTH: usize = 16;

/// What one training recording contributes to learning: its normalised
/// arguments, and which of them had a generated-looking raw name.
#[derive(Clone, Debug, Default)]
pub struct RecordingArgs {
    pub args: BTreeSet<String>,
    pub generated: BTreeSet<String>,
}

/// The patterns an argument could fall under: the argument with one of its
/// names replaced by `*`, with the name. Positions whose pattern would have
/// no literal name left (`/*`, `*`) are skipped: no evidence justifies
/// covering every top-level path. Only absolute paths have positions.
fn positions(arg: &str) -> impl Iterator<Item = (String, &str)> + '_ {
    // Paths only: endpoints (`inet:…`, `unix:…`) and program names are not
    // file accesses.
    let parts: Vec<&str> =
        if arg.starts_with('/') && arg.split('/').count() <= MAX_PATTERN_DEPTH + 1 {
            arg.split('/').collect()
        } else {
            Vec::new()
        };
    let literal = parts.iter().filter(|p| !p.is_empty()).count();
    (0..parts.len()).filter_map(move |i| {
        let name = parts[i];
        if name.is_empty() || literal < 2 {
            return None;
        }
        let mut p = parts.clone();
        p[i] = "*";
        Some((p.join("/"), name))
    })
}

/// Learns the patterns of a training set.
///
/// A path position (e.g. the last name under `/var/cache/app`, or the pid
/// in `/proc/<pid>/stat`) is folded when it took at least [`MIN_NAMES`]
/// distinct names, at least [`MIN_CHURN_SHARE`] of them churn, and the
/// churn is real evidence: one-off names from at least two recordings (one
/// recording alone cannot tell a one-off name from a stable one), or at
/// least [`MIN_NAMES`] generated-looking names.
pub fn learn(recordings: &[RecordingArgs]) -> Vec<PathPattern> {
    #[derive(Default)]
    struct Position<'a> {
        /// name → recordings that used it there
        names: BTreeMap<&'a str, u64>,
        /// name → the first recording that used it there
        first_in: BTreeMap<&'a str, usize>,
        generated: BTreeSet<&'a str>,
        recordings: u64,
    }
    let mut found: BTreeMap<String, Position> = BTreeMap::new();
    for (r, rec) in recordings.iter().enumerate() {
        let mut seen_here: BTreeSet<(String, &str)> = BTreeSet::new();
        let mut used: BTreeSet<String> = BTreeSet::new();
        for arg in &rec.args {
            let generated = rec.generated.contains(arg);
            for (pattern, name) in positions(arg) {
                let pos = found.entry(pattern.clone()).or_default();
                if seen_here.insert((pattern.clone(), name)) {
                    *pos.names.entry(name).or_default() += 1;
                }
                pos.first_in.entry(name).or_insert(r);
                if generated {
                    pos.generated.insert(name);
                }
                used.insert(pattern);
            }
        }
        for p in used {
            found.get_mut(&p).expect("just inserted").recordings += 1;
        }
    }
    let mut out = Vec::new();
    for (pattern, pos) in found {
        let names = pos.names.len();
        if names < MIN_NAMES {
            continue;
        }
        let one_off: Vec<&str> = pos
            .names
            .iter()
            .filter(|(_, &n)| n == 1)
            .map(|(&c, _)| c)
            .collect();
        let churn = pos
            .names
            .keys()
            .filter(|c| one_off.contains(c) || pos.generated.contains(*c))
            .count();
        let spread: BTreeSet<usize> = one_off.iter().map(|c| pos.first_in[c]).collect();
        let evidence = spread.len() >= 2 || pos.generated.len() >= MIN_NAMES;
        if evidence && churn as f64 >= MIN_CHURN_SHARE * names as f64 {
            out.push(PathPattern {
                pattern,
                distinct_names: names as u64,
                one_off_names: one_off.len() as u64,
                generated_names: pos.generated.len() as u64,
                recordings: pos.recordings,
            });
        }
    }
    out
}

/// The pattern a file-access argument falls under, if any (`patterns`
/// sorted by pattern, as [`learn`] returns them and the bundle stores them).
pub fn covering<'p>(patterns: &'p [PathPattern], arg: &str) -> Option<&'p PathPattern> {
    if patterns.is_empty() {
        return None;
    }
    positions(arg).find_map(|(candidate, _)| {
        patterns
            .binary_search_by(|p| p.pattern.as_str().cmp(&candidate))
            .ok()
            .map(|i| &patterns[i])
    })
}

/// Whether a raw path's last name looks machine-made: a number (pid,
/// counter, timestamp), a hex hash, a UUID, or a random suffix as
/// `mkstemp`/`tempfile` make them (letters mixed with several digits).
pub(crate) fn looks_generated(raw: &str) -> bool {
    let name = raw.rsplit('/').next().unwrap_or(raw);
    // The longest run of letters and digits carries the randomness;
    // prefixes (`tmp`, `sess_`, `php`) and extensions are separators' business.
    let run = name
        .split(|c: char| !c.is_ascii_alphanumeric())
        .max_by_key(|s| s.len())
        .unwrap_or("");
    let digits = run.bytes().filter(u8::is_ascii_digit).count();
    let letters = run.len() - digits;
    if run.len() >= 3 && letters == 0 {
        return true; // a number
    }
    if is_uuid(name) {
        return true;
    }
    let hex = run.bytes().all(|b| b.is_ascii_hexdigit());
    if hex && run.len() >= 8 && digits >= 1 && letters >= 1 {
        return true; // a hash
    }
    // A random suffix: 6+ characters mixing letters and at least two digits.
    run.len() >= 6 && digits >= 2 && letters >= 1
}

fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(args: &[&str], generated: &[&str]) -> RecordingArgs {
        RecordingArgs {
            args: args.iter().map(|s| s.to_string()).collect(),
            generated: generated.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn generated_names() {
        for g in [
            "/tmp/tmpk3j2ab9x",
            "/var/lib/php/sessions/sess_5f3a9c0d1e2b",
            "/proc/12345",
            "/run/app/0b8f6e52-7c1d-4a57-9b3e-2f4d5c6a7b8e",
            "/var/cache/app/3f9a2b7c.cache",
            "/tmp/php8Fa9Qe",
        ] {
            assert!(looks_generated(g), "{g}");
        }
        for stable in [
            "/etc/ld.so.cache",
            "/lib/x86_64-linux-gnu/libc.so.6",
            "/usr/bin/python3.11",
            "/etc/nginx/nginx.conf",
            "/var/www/index.html",
            "/etc/shadow",
        ] {
            assert!(!looks_generated(stable), "{stable}");
        }
    }

    #[test]
    fn churn_across_recordings_folds_the_directory() {
        let recs = [
            rec(
                &["/etc/passwd", "/srv/up/a", "/srv/up/b", "/srv/up/keep"],
                &[],
            ),
            rec(
                &["/etc/passwd", "/srv/up/c", "/srv/up/d", "/srv/up/keep"],
                &[],
            ),
            rec(&["/etc/passwd", "/srv/up/e", "/srv/up/keep"], &[]),
        ];
        let p = learn(&recs);
        assert_eq!(
            p,
            vec![PathPattern {
                pattern: "/srv/up/*".into(),
                distinct_names: 6,
                one_off_names: 5,
                generated_names: 0,
                recordings: 3,
            }]
        );
        assert!(covering(&p, "/srv/up/zz").is_some());
        // Only direct children: neither the directory itself nor a sibling.
        assert!(covering(&p, "/srv/up").is_none());
        assert!(covering(&p, "/srv/upload/x").is_none());
        assert!(covering(&p, "/srv/up/x/y").is_none());
        assert!(covering(&p, "/etc/shadow").is_none());
    }

    #[test]
    fn a_name_in_the_middle_folds_too() {
        let recs = [
            rec(&["/proc/self/stat", "/proc/a/stat", "/proc/b/stat"], &[]),
            rec(&["/proc/self/stat", "/proc/c/stat", "/proc/d/stat"], &[]),
        ];
        let p = learn(&recs);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].pattern, "/proc/*/stat");
        assert!(covering(&p, "/proc/e/stat").is_some());
        assert!(covering(&p, "/proc/e/environ").is_none());
    }

    #[test]
    fn stable_directories_and_single_recordings_do_not_fold() {
        // Many children, but the same in every recording.
        let etc = ["/etc/a", "/etc/b", "/etc/c", "/etc/d", "/etc/e"];
        assert!(learn(&[rec(&etc, &[]), rec(&etc, &[])]).is_empty());
        // One recording: every child is "one-off"; that is no evidence.
        assert!(learn(&[rec(&etc, &[])]).is_empty());
        // ... unless the names look generated.
        let tmp = ["/tmp/a", "/tmp/b", "/tmp/c", "/tmp/d"];
        let p = learn(&[rec(&tmp, &tmp)]);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].pattern, "/tmp/*");
        assert_eq!(p[0].generated_names, 4);
        // Too few names.
        assert!(learn(&[rec(&tmp[..3], &tmp[..3])]).is_empty());
        // Top-level names never fold into `/*`.
        let top = ["/a", "/b", "/c", "/d", "/e"];
        assert!(learn(&[rec(&top, &top)]).is_empty());
    }
}
