//! The reference's noise filter (SPEC §1, quirk Q2) answered from decoded
//! fields: whether the line `sysdig -r` would print for an event holds one
//! of the noise words, without rendering the line.
//!
//! Every noise word is made of lower-case letters and `-` only. `evt.info`
//! is built from pieces (parameter names, numbers, symbolic names, paths,
//! fd and process names, buffers) joined by characters outside that set
//! (` `, `=`, `(`, `)`, `<`, `>`, `|`, `:`), so a word is in the line
//! exactly when it is inside one piece. Numbers, hex digits (`a`–`f` only),
//! and the upper-case flag, errno and signal names can hold none (a test
//! walks every table), which leaves the text pieces to test: the parameter
//! names, paths, fd names, process, user and group names, character and
//! byte buffers. A test in `tests/scap_parity.rs` checks this against the
//! rendered line on every event of the shared captures.

use std::cell::OnceCell;
use std::fmt;
use std::sync::LazyLock;

use super::event_table::{PType, GENERIC_E, GENERIC_X};
use super::events_gen::{EVENTS, SYSCALLS};
use super::format::{cstr, int, relative_base, resolve, AT_FDCWD};
use super::ScapEvent;
use crate::source::lines::has_noise_word;

/// A name the reader learns once and prints often (a thread's command, an
/// fd's file), with whether it holds a noise word, decided on first use.
#[derive(Clone, Debug, Default)]
pub struct Text {
    text: String,
    noise: OnceCell<bool>,
}

impl Text {
    pub fn new(text: String) -> Self {
        Text {
            text,
            noise: OnceCell::new(),
        }
    }
    pub fn as_str(&self) -> &str {
        &self.text
    }
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }
    /// Whether the text holds one of the compat noise words.
    pub fn noise(&self) -> bool {
        *self
            .noise
            .get_or_init(|| has_noise_word(self.text.as_bytes()))
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl From<String> for Text {
    fn from(s: String) -> Self {
        Text::new(s)
    }
}

/// Event and syscall names (the only names an event can carry) that hold a
/// noise word.
static NOISY_NAMES: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    EVENTS
        .iter()
        .map(|e| e.name)
        .chain(SYSCALLS.iter().copied())
        .chain(["<unknown>"])
        .filter(|n| has_noise_word(n.as_bytes()))
        .collect()
});

/// Per event type: the index of its first parameter whose name holds a
/// noise word (`usize::MAX` when none does).
static NOISY_PARAM: LazyLock<Vec<usize>> = LazyLock::new(|| {
    EVENTS
        .iter()
        .map(|e| {
            e.params
                .iter()
                .position(|p| has_noise_word(p.name.as_bytes()))
                .unwrap_or(usize::MAX)
        })
        .collect()
});

/// How many bytes of a buffer `evt.info` shows ([`super::format`]).
const BUF_SHOWN: usize = 77;

/// Whether the `sysdig -r` line of `ev` holds a noise word: in its process
/// name, its type or its `evt.info` (the rest of the line is numbers).
pub(crate) fn line_has_noise_word(ev: &ScapEvent<'_>) -> bool {
    // An unknown thread prints as `<NA>`.
    let process_noise = ev.thread.is_some_and(|t| t.comm.noise());
    process_noise || NOISY_NAMES.contains(&ev.name) || info_has_noise_word(ev)
}

/// Whether `evt.info` of `ev`, as [`super::format::info`] renders it, holds
/// a noise word. Walks the same parameters, testing only the text pieces.
pub(crate) fn info_has_noise_word(ev: &ScapEvent<'_>) -> bool {
    let Some(info) = ev.info else { return false };
    if ev.ty == GENERIC_E || ev.ty == GENERIC_X {
        return false;
    }
    let shown = ev.params.len().min(info.params.len());
    if NOISY_PARAM.get(ev.ty as usize).is_some_and(|&i| i < shown) {
        return true;
    }
    let st = ev.state;
    let buf = |b: &[u8]| has_noise_word(&b[..b.len().min(BUF_SHOWN)]);
    ev.params
        .iter()
        .zip(info.params)
        .any(|(&p, pi)| match pi.ty {
            PType::Fd => {
                let v = int(p);
                v >= 0 && v != AT_FDCWD && st.fd(ev.tid, v).is_some_and(|f| f.name.noise())
            }
            PType::Pid => st.threads.get(&int(p)).is_some_and(|t| t.comm.noise()),
            PType::FsPath | PType::FsRelPath(_) => {
                let raw = cstr(p);
                if has_noise_word(raw) {
                    return true;
                }
                if raw.is_empty() || raw.starts_with(b"/") {
                    return false;
                }
                // A relative path is shown resolved too; `..` can drop
                // directories, so test the resolved text itself.
                let rel = String::from_utf8_lossy(raw);
                let base = relative_base(ev, pi.ty).unwrap_or_default();
                has_noise_word(resolve(&base, &rel).as_bytes())
            }
            PType::CharBuf => has_noise_word(cstr(p)),
            PType::SockTuple => {
                p.first() == Some(&1) && p.len() >= 17 && has_noise_word(cstr(&p[17..]))
            }
            PType::SockAddr => p.first() == Some(&1) && has_noise_word(cstr(&p[1..])),
            PType::Uid => st
                .users
                .get(&(super::format::uint(p) as u32))
                .is_some_and(|n| has_noise_word(n.as_bytes())),
            PType::Gid => st
                .groups
                .get(&(super::format::uint(p) as u32))
                .is_some_and(|n| has_noise_word(n.as_bytes())),
            PType::Dyn => p.len() > 1 && !matches!(p.len() - 1, 1 | 2 | 4 | 8) && buf(&p[1..]),
            PType::ByteBuf | PType::SyscallId | PType::CharBufArray | PType::CharBufPairArray => {
                buf(p)
            }
            PType::Ipv4Addr => p.len() != 4 && buf(p),
            PType::Ipv6Addr => p.len() != 16 && buf(p),
            // Numbers, hex, and upper-case symbolic names.
            PType::Errno
            | PType::Flags8
            | PType::Flags16
            | PType::Flags32
            | PType::Mode
            | PType::EnumFlags8
            | PType::EnumFlags16
            | PType::EnumFlags32
            | PType::SigType
            | PType::RelTime
            | PType::FdList
            | PType::U8
            | PType::U16
            | PType::U32
            | PType::U64
            | PType::SigSet
            | PType::I8
            | PType::I16
            | PType::I32
            | PType::I64
            | PType::AbsTime => false,
        })
}

#[cfg(test)]
mod tests {
    use super::super::names::{errno_name, flag_table, signal_name};
    use super::*;

    /// The shortcut above skips flag, errno and signal names: sound only
    /// while no table name holds a noise word.
    #[test]
    fn no_symbolic_name_holds_a_noise_word() {
        let mut tables = 0;
        for e in EVENTS.iter() {
            for p in e.params {
                if let Some(t) = p.table.and_then(flag_table) {
                    tables += 1;
                    for (name, _) in t {
                        assert!(!has_noise_word(name.as_bytes()), "{name}");
                    }
                }
            }
        }
        assert!(tables > 50, "walked {tables} flag tables");
        for e in (1..600).filter_map(errno_name) {
            assert!(!has_noise_word(e.as_bytes()), "{e}");
        }
        for s in (1..64).filter_map(signal_name) {
            assert!(!has_noise_word(s.as_bytes()), "{s}");
        }
    }

    #[test]
    fn parameter_and_event_names_with_noise_words_are_known() {
        // The container events name their parameter `json`.
        assert!(NOISY_PARAM.iter().any(|&i| i != usize::MAX));
        assert!(NOISY_NAMES.contains(&"container"));
        let t = Text::new("/var/lib/containerd/x".into());
        assert!(t.noise());
        assert!(!Text::new("/etc/passwd".into()).noise());
    }
}
