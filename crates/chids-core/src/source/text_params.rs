//! Typed parameters from the `evt.info` text of the text formats
//! (`sysdig -r` output, LID-DS 2019 and 2021).
//!
//! In these formats the text is all there is, so this is the one place that
//! parses it; every other stage reads [`Params`]. A value runs to the next
//! whitespace: the formats have no quoting, so a path with a space in a
//! foreign recording is cut there (chids' own `.sc` writer escapes such
//! bytes, see [`crate::escape`], so its recordings read back exactly).

use std::net::{IpAddr, SocketAddr};

use super::param_rules::{endpoint_side, path_params, Side};
use crate::event::{Direction, Endpoint, Params};

/// The value of the first `name=value` token.
fn param<'a>(info: &'a str, name: &str) -> Option<&'a str> {
    info.split_ascii_whitespace()
        .find_map(|tok| tok.strip_prefix(name).and_then(|r| r.strip_prefix('=')))
}

/// sysdig prints a relative path followed by its resolution,
/// `name=foo(/srv/foo)`: the resolved, absolute path is the one meant.
fn resolved(value: &str) -> &str {
    if value.starts_with('/') {
        return value;
    }
    match value.find("(/") {
        Some(open) if value.ends_with(')') => &value[open + 1..value.len() - 1],
        _ => value,
    }
}

/// `1.2.3.4:80` or `::1:80` (sysdig prints IPv6 without brackets; the port
/// follows the last colon).
fn parse_ip_port(s: &str) -> Option<SocketAddr> {
    let (addr, port) = s.rsplit_once(':')?;
    let addr = addr.trim_start_matches('[').trim_end_matches(']');
    let ip: IpAddr = addr.parse().ok()?;
    Some(SocketAddr::new(ip, port.parse().ok()?))
}

fn endpoint<'a>(info: &'a str, side: Side) -> Option<Endpoint<'a>> {
    if let Some(tuple) = param(info, "tuple") {
        if let Some((src, dst)) = tuple.split_once("->") {
            let peer = if side == Side::Inbound { src } else { dst };
            if let Some(addr) = parse_ip_port(peer) {
                return Some(Endpoint::Ip(addr));
            }
            // A Unix socket: `tuple=ffff..->ffff.. /path` (the path is the
            // next token, absent for unnamed sockets).
            let after = info.split_once(tuple).map(|(_, r)| r).unwrap_or("");
            let path = after
                .split_ascii_whitespace()
                .next()
                .filter(|t| t.starts_with('/') || t.starts_with('@'))
                .unwrap_or("");
            return Some(Endpoint::Unix(path));
        }
    }
    let addr = param(info, "addr")?;
    if addr == "NULL" {
        return None;
    }
    Some(match parse_ip_port(addr) {
        Some(a) => Endpoint::Ip(a),
        None => Endpoint::Unix(addr),
    })
}

/// The typed parameters of one text event.
pub(crate) fn params_from_info<'a>(syscall: &str, dir: Direction, info: &'a str) -> Params<'a> {
    if info.is_empty() {
        return Params::default();
    }
    let path = path_params(syscall)
        .iter()
        .find_map(|name| param(info, name))
        .map(resolved);
    let ret = if dir == Direction::Exit {
        info.split_ascii_whitespace().next().and_then(|tok| {
            let (_, v) = tok.split_once('=')?;
            let digits = v.find('(').map_or(v, |i| &v[..i]);
            digits.parse().ok()
        })
    } else {
        None
    };
    let endpoint = endpoint_side(syscall).and_then(|s| endpoint(info, s));
    Params {
        path,
        endpoint,
        ret,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const X: Direction = Direction::Exit;
    const E: Direction = Direction::Enter;

    #[test]
    fn paths_by_family() {
        let p = params_from_info(
            "openat",
            X,
            "fd=3(<f>/etc/passwd) dirfd=-100(AT_FDCWD) name=/etc/passwd flags=1(O_RDONLY)",
        );
        assert_eq!(p.path, Some("/etc/passwd"));
        assert_eq!(p.ret, Some(3));
        let p = params_from_info("open", X, "fd=-2(ENOENT) name=x.txt(/srv/x.txt) flags=1");
        assert_eq!((p.path, p.ret), (Some("/srv/x.txt"), Some(-2)));
        let p = params_from_info("newfstatat", X, "res=0 dirfd=-100 path=/var/www");
        assert_eq!(p.path, Some("/var/www"));
        let p = params_from_info("execve", E, "filename=/bin/cat");
        assert_eq!(p.path, Some("/bin/cat"));
        let p = params_from_info("clone", X, "res=0 exe=/usr/bin/python3 args=");
        assert_eq!(p.path, Some("/usr/bin/python3"));
        // Not argument-bearing: no path, even with a `name=` token.
        assert_eq!(params_from_info("read", X, "res=1 name=x").path, None);
    }

    #[test]
    fn a_name_token_inside_a_value_is_not_a_parameter() {
        // The first token with the prefix is the parameter; a second one is
        // data. (A space in a foreign recording's path still cuts it.)
        let p = params_from_info("open", X, "fd=3 name=/tmp/x flags=1 name=/etc/shadow");
        assert_eq!(p.path, Some("/tmp/x"));
    }

    #[test]
    fn endpoints() {
        let p = params_from_info("connect", X, "res=0 tuple=10.0.0.2:41234->10.0.0.9:4444");
        assert_eq!(
            p.endpoint,
            Some(Endpoint::Ip("10.0.0.9:4444".parse().unwrap()))
        );
        let p = params_from_info(
            "accept4",
            X,
            "fd=5 tuple=127.0.0.1:50000->127.0.0.1:80 queuepct=0",
        );
        assert_eq!(
            p.endpoint,
            Some(Endpoint::Ip("127.0.0.1:50000".parse().unwrap()))
        );
        let p = params_from_info("bind", E, "fd=3 addr=0.0.0.0:8080");
        assert_eq!(
            p.endpoint,
            Some(Endpoint::Ip("0.0.0.0:8080".parse().unwrap()))
        );
        let p = params_from_info("connect", E, "fd=3 addr=::1:53");
        assert_eq!(p.endpoint, Some(Endpoint::Ip("[::1]:53".parse().unwrap())));
        let p = params_from_info("connect", X, "res=0 tuple=ffff9a->ffff9b /run/nscd/socket");
        assert_eq!(p.endpoint, Some(Endpoint::Unix("/run/nscd/socket")));
        assert_eq!(
            params_from_info("connect", E, "fd=3 addr=NULL").endpoint,
            None
        );
        assert_eq!(
            params_from_info("read", X, "res=0 tuple=1.1.1.1:1->2.2.2.2:2").endpoint,
            None
        );
    }
}
