//! Which events carry an argument into the model, and how a path argument
//! is normalised (SPEC §3).
//!
//! The two analysis modes differ only in the small, named places gathered
//! in [`Mode`]: how an event type maps to a graph node, which token is the
//! argument, the time precision and the noise filter.

use serde::{Deserialize, Serialize};

use std::fmt::Write as _;

use crate::event::{Endpoint, Event};

/// The analysis mode, stored in the model so scoring always matches training.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The reference implementation to the letter.
    Compat,
    /// Syscall families, named parameters, nanosecond time.
    #[default]
    Modern,
}

/// Which argument-bearing call an event is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgKind {
    Open,
    Stat,
    Clone,
    Execve,
    /// A socket call naming an endpoint (modern mode only): `connect`,
    /// `accept`, `bind`, `sendto`/`sendmsg`, `recvfrom`/`recvmsg`.
    Socket,
}

/// The argument of one event, before normalisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RawArg<'a> {
    /// A path (or, in compat mode, whatever token the reference slices),
    /// normalised by [`normalize_path`].
    Path(&'a str),
    /// A socket endpoint, normalised by [`normalize_endpoint`].
    Endpoint(Endpoint<'a>),
}

impl Mode {
    /// The graph node name of an event type. Compat keeps sysdig's name;
    /// modern folds the variants libc picks today into one family, so that
    /// `openat` on a new system matches `open` on an old one and carries
    /// its path into the model.
    pub fn node_name(self, syscall: &str) -> &str {
        match self {
            Mode::Compat => syscall,
            // io_uring operations that name a path or a peer are their
            // syscall's family: what they touch is judged as the syscall's
            // argument would be, whichever interface asked. (Other
            // operations keep their own nodes, io_uring_read etc.)
            Mode::Modern => match syscall {
                "open" | "openat" | "openat2" | "io_uring_openat" | "io_uring_openat2" => "open",
                "stat" | "lstat" | "fstatat" | "newfstatat" | "statx" | "io_uring_statx" => "stat",
                "clone" | "clone3" | "fork" | "vfork" => "clone",
                "execve" | "execveat" => "execve",
                "accept" | "accept4" | "io_uring_accept" => "accept",
                "io_uring_connect" => "connect",
                "io_uring_bind" => "bind",
                other => other,
            },
        }
    }

    /// Whether a node carries an argument in this mode.
    pub fn arg_kind(self, node: &str) -> Option<ArgKind> {
        match node {
            "open" => Some(ArgKind::Open),
            "stat" => Some(ArgKind::Stat),
            "clone" => Some(ArgKind::Clone),
            "execve" => Some(ArgKind::Execve),
            "connect" | "accept" | "bind" | "sendto" | "sendmsg" | "recvfrom" | "recvmsg"
                if self == Mode::Modern =>
            {
                Some(ArgKind::Socket)
            }
            _ => None,
        }
    }

    /// The raw argument of an event whose node is argument-bearing, before
    /// normalisation. `None` when the event has no such argument.
    pub(crate) fn raw_arg<'a>(self, kind: ArgKind, event: &Event<'a>) -> Option<RawArg<'a>> {
        match self {
            // The reference slices fixed-width prefixes off fixed token
            // positions of the rendered text, whatever the token really is
            // (SPEC §3, quirk Q7). This is compat's rule by design: it is
            // what the reference computes.
            Mode::Compat => {
                let (index, skip) = compat_token(kind)?;
                let token = event.tokens().nth(index)?;
                Some(RawArg::Path(py_slice_from(token, skip)))
            }
            // Modern reads the typed parameters the source filled.
            Mode::Modern => match kind {
                ArgKind::Socket => event.params.endpoint.map(RawArg::Endpoint),
                _ => event.params.path.map(RawArg::Path),
            },
        }
    }

    /// Time as the mode sees it: the reference truncates to microseconds.
    pub fn timestamp(self, ts_ns: u64) -> u64 {
        match self {
            Mode::Compat => ts_ns - ts_ns % 1_000,
            Mode::Modern => ts_ns,
        }
    }

    /// Whether the reference's noise filter applies to text lines.
    pub fn line_filter(self) -> bool {
        self == Mode::Compat
    }
}

/// Compat's argument of an event: which whitespace-separated token of
/// `evt.info` it is, and how many characters the reference slices off its
/// front (`name=`, `exe=`, `filename=`). `None`: not an argument in compat.
pub(crate) fn compat_token(kind: ArgKind) -> Option<(usize, usize)> {
    match kind {
        ArgKind::Open | ArgKind::Stat => Some((1, 5)),
        ArgKind::Clone => Some((1, 4)),
        ArgKind::Execve => Some((0, 9)),
        ArgKind::Socket => None,
    }
}

/// Python's `s[n:]` on a str: by characters, empty when too short.
fn py_slice_from(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[i..],
        None => "",
    }
}

/// Ports from here up are ephemeral (Linux's default range starts at
/// 32768; IANA's at 49152): they name a connection, not a service.
pub(crate) const EPHEMERAL_PORT_MIN: u16 = 32768;

/// The model argument of a socket endpoint: `inet:ADDRESS:PORT`,
/// `inet6:[ADDRESS]:PORT` or `unix:PATH`, with an ephemeral or zero port
/// folded to `*`, so that a client's changing source port is one argument
/// while a new service or peer (a reverse shell's listener) is unseen.
pub(crate) fn normalize_endpoint(endpoint: &Endpoint<'_>, out: &mut String) {
    out.clear();
    match endpoint {
        Endpoint::Ip(addr) => {
            let port = addr.port();
            match addr.ip() {
                std::net::IpAddr::V4(ip) => {
                    let _ = write!(out, "inet:{ip}:");
                }
                std::net::IpAddr::V6(ip) => {
                    let _ = write!(out, "inet6:[{ip}]:");
                }
            }
            if port == 0 || port >= EPHEMERAL_PORT_MIN {
                out.push('*');
            } else {
                let _ = write!(out, "{port}");
            }
        }
        Endpoint::Unix(path) => {
            out.push_str("unix:");
            out.push_str(path);
        }
    }
}

/// Normalises a path argument exactly as the reference's `process_path`
/// (PATH_LENGTH = 3). Lossy by design: it keeps a short, stable prefix.
pub fn normalize_path(s: &str) -> String {
    let slashes = s.matches('/').count();
    let reduced: String = match (s.find('('), s.find(')')) {
        (Some(open), Some(close)) => {
            let inside = if open < close {
                &s[open + 1..close]
            } else {
                ""
            };
            let before = &s[..open];
            // Python's max(key=len) keeps the first on a tie: `inside`.
            let (longer, shorter) = if before.chars().count() > inside.chars().count() {
                (before, inside)
            } else {
                (inside, before)
            };
            if slashes > 3 {
                if shorter.is_empty() {
                    longer.to_string()
                } else {
                    longer.replace(shorter, "")
                }
            } else {
                longer.to_string()
            }
        }
        _ if slashes > 3 => py_dirname(url_path(s)).to_string(),
        _ => s.to_string(),
    };
    // split('/'), then keep the last element (digits deleted) if it is
    // lower case, else drop it, and join again.
    let (head, last) = match reduced.rfind('/') {
        Some(i) => (&reduced[..i], &reduced[i + 1..]),
        None => ("", reduced.as_str()),
    };
    if py_islower(last) {
        let kept: String = last.chars().filter(|c| !c.is_ascii_digit()).collect();
        match reduced.rfind('/') {
            Some(_) => format!("{head}/{kept}"),
            None => kept,
        }
    } else {
        head.to_string()
    }
}

/// Python `str.islower()`: at least one cased character, none upper/title case.
fn py_islower(s: &str) -> bool {
    let mut cased = false;
    for c in s.chars() {
        if c.is_uppercase() || is_titlecase(c) {
            return false;
        }
        if c.is_lowercase() {
            cased = true;
        }
    }
    cased
}

fn is_titlecase(c: char) -> bool {
    // The Lt category is tiny; these are all of it outside Greek extended.
    matches!(c, '\u{01C5}' | '\u{01C8}' | '\u{01CB}' | '\u{01F2}')
        || ('\u{1F88}'..='\u{1F8F}').contains(&c)
        || ('\u{1F98}'..='\u{1F9F}').contains(&c)
        || ('\u{1FA8}'..='\u{1FAF}').contains(&c)
        || matches!(c, '\u{1FBC}' | '\u{1FCC}' | '\u{1FFC}')
}

/// The `path` component of Python's `urllib.parse.urlparse(s)`.
fn url_path(s: &str) -> &str {
    let mut url = s;
    let mut scheme = "";
    if let Some(i) = url.find(':') {
        if i > 0
            && url[..i]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-' || b == b'.')
        {
            scheme = &url[..i];
            url = &url[i + 1..];
        }
    }
    if let Some(rest) = url.strip_prefix("//") {
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        url = &rest[end..];
    }
    if let Some(i) = url.find('#') {
        url = &url[..i];
    }
    if let Some(i) = url.find('?') {
        url = &url[..i];
    }
    const USES_PARAMS: [&str; 15] = [
        "", "ftp", "hdl", "prospero", "http", "imap", "https", "shttp", "rtsp", "rtspu", "sip",
        "sips", "mms", "sftp", "tel",
    ];
    if url.contains(';') && USES_PARAMS.iter().any(|p| p.eq_ignore_ascii_case(scheme)) {
        let from = url.rfind('/').unwrap_or(0);
        if let Some(i) = url[from..].find(';') {
            url = &url[..from + i];
        }
    }
    url
}

/// Python's `os.path.dirname` (posixpath).
fn py_dirname(p: &str) -> &str {
    let i = p.rfind('/').map_or(0, |i| i + 1);
    let head = &p[..i];
    if !head.is_empty() && head.bytes().any(|b| b != b'/') {
        head.trim_end_matches('/')
    } else {
        head
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worked_cases() {
        assert_eq!(normalize_path("/etc/ld.so.cache"), "/etc/ld.so.cache");
        assert_eq!(
            normalize_path("/lib/x86_64-linux-gnu/libc.so.6"),
            "/lib/x86_64-linux-gnu/libc.so."
        );
        assert_eq!(
            normalize_path("/usr/lib/x86_64-linux-gnu/libc.so.6"),
            "/usr/lib/x_-linux-gnu"
        );
        assert_eq!(
            normalize_path("/proc/self/fd/3(/dev/null)"),
            "/proc/self/fd"
        );
        assert_eq!(normalize_path("/tmp/Ab"), "/tmp");
        assert_eq!(normalize_path(""), "");
        assert_eq!(normalize_path("curl"), "curl");
        assert_eq!(normalize_path("a:b/c/d/e/f"), "b/c/d/e");
        assert_eq!(normalize_path("/a/b/c/d;p=1"), "/a/b/c");
    }

    #[test]
    fn families_only_in_modern() {
        assert_eq!(Mode::Compat.node_name("openat"), "openat");
        assert_eq!(Mode::Modern.node_name("openat"), "open");
        assert_eq!(Mode::Modern.node_name("newfstatat"), "stat");
        assert_eq!(Mode::Modern.node_name("clone3"), "clone");
        assert_eq!(Mode::Modern.node_name("execveat"), "execve");
        assert_eq!(Mode::Modern.node_name("io_uring_openat"), "open");
        assert_eq!(Mode::Modern.node_name("io_uring_connect"), "connect");
        assert_eq!(Mode::Modern.node_name("io_uring_read"), "io_uring_read");
        assert_eq!(Mode::Compat.node_name("io_uring_openat"), "io_uring_openat");
        assert_eq!(Mode::Modern.node_name("read"), "read");
        assert_eq!(Mode::Modern.node_name("accept4"), "accept");
        assert_eq!(Mode::Compat.arg_kind("connect"), None);
        assert_eq!(Mode::Modern.arg_kind("connect"), Some(ArgKind::Socket));
    }

    #[test]
    fn endpoints_fold_ephemeral_ports() {
        let mut s = String::new();
        normalize_endpoint(&Endpoint::Ip("10.0.0.9:4444".parse().unwrap()), &mut s);
        assert_eq!(s, "inet:10.0.0.9:4444");
        normalize_endpoint(&Endpoint::Ip("127.0.0.1:50000".parse().unwrap()), &mut s);
        assert_eq!(s, "inet:127.0.0.1:*");
        normalize_endpoint(&Endpoint::Ip("[::1]:53".parse().unwrap()), &mut s);
        assert_eq!(s, "inet6:[::1]:53");
        normalize_endpoint(&Endpoint::Unix("/run/x.sock"), &mut s);
        assert_eq!(s, "unix:/run/x.sock");
    }
}
