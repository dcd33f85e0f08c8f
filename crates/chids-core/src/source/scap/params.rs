//! Typed parameters of a scap event, straight from its binary parameters
//! (no rendering): the path a call names, its socket endpoint, its return
//! value.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use std::sync::LazyLock;

use super::event_table::{EventInfo, PType, GENERIC_E, GENERIC_X};
use super::events_gen::EVENTS;
use super::format::{cstr, int, relative_base, resolve};
use super::ScapEvent;
use crate::escape::push_escaped;
use crate::event::{Direction, Endpoint, Params};
use crate::source::param_rules::{endpoint_side, path_params, Side};

/// Buffers the typed parameters of one event borrow from.
#[derive(Default)]
pub(crate) struct ParamBufs {
    path: String,
    unix: String,
}

fn port(b: &[u8]) -> u16 {
    u16::from_le_bytes([b[0], b[1]])
}

fn v4(b: &[u8]) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
}

fn v6(b: &[u8]) -> IpAddr {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[..16]);
    let ip = Ipv6Addr::from(a);
    // The same peer whether the socket is v4 or dual-stack.
    match ip.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(ip),
    }
}

/// A `PT_SOCKTUPLE`: family, then source and destination.
fn tuple_peer<'b>(p: &[u8], side: Side, unix: &'b mut String) -> Option<Endpoint<'b>> {
    let inbound = side == Side::Inbound;
    match *p.first()? {
        2 if p.len() >= 13 => {
            let (ip, pt) = if inbound { (1, 5) } else { (7, 11) };
            Some(Endpoint::Ip(SocketAddr::new(v4(&p[ip..]), port(&p[pt..]))))
        }
        10 if p.len() >= 37 => {
            let (ip, pt) = if inbound { (1, 17) } else { (19, 35) };
            Some(Endpoint::Ip(SocketAddr::new(v6(&p[ip..]), port(&p[pt..]))))
        }
        1 if p.len() >= 17 => {
            push_escaped(unix, cstr(&p[17..]));
            Some(Endpoint::Unix(unix))
        }
        _ => None,
    }
}

/// A `PT_SOCKADDR`: family, then one address.
fn sockaddr<'b>(p: &[u8], unix: &'b mut String) -> Option<Endpoint<'b>> {
    match *p.first()? {
        2 if p.len() >= 7 => Some(Endpoint::Ip(SocketAddr::new(v4(&p[1..]), port(&p[5..])))),
        10 if p.len() >= 19 => Some(Endpoint::Ip(SocketAddr::new(v6(&p[1..]), port(&p[17..])))),
        1 => {
            push_escaped(unix, cstr(&p[1..]));
            Some(Endpoint::Unix(unix))
        }
        _ => None,
    }
}

/// Where an event type's typed parameters are, decided once per type
/// from its name and parameter table ([`path_params`], [`endpoint_side`]).
struct Slots {
    /// The path's parameter candidates, in preference order.
    path: Vec<usize>,
    /// The side of the endpoint and its (first socket-address) parameter.
    endpoint: Option<(Side, usize)>,
    /// Whether the first parameter of an exit is its return value.
    ret: bool,
}

impl Slots {
    fn of(name: &str, info: &EventInfo) -> Slots {
        let path = path_params(name)
            .iter()
            .filter_map(|want| info.params.iter().position(|p| p.name == *want))
            .collect();
        let endpoint = endpoint_side(name).and_then(|side| {
            let i = info
                .params
                .iter()
                .position(|p| matches!(p.ty, PType::SockTuple | PType::SockAddr))?;
            Some((side, i))
        });
        let ret = info
            .params
            .first()
            .is_some_and(|p| matches!(p.ty, PType::Errno | PType::Fd | PType::Pid | PType::I64));
        Slots {
            path,
            endpoint,
            ret,
        }
    }
}

static SLOTS: LazyLock<Vec<Slots>> =
    LazyLock::new(|| EVENTS.iter().map(|e| Slots::of(e.name, e)).collect());

/// The typed parameters of `ev`, borrowing `bufs`.
pub(crate) fn typed_params<'b>(ev: &ScapEvent<'_>, bufs: &'b mut ParamBufs) -> Params<'b> {
    let Some(info) = ev.info else {
        return Params::default();
    };
    let ParamBufs { path, unix } = bufs;
    path.clear();
    unix.clear();
    // Generic events are named by their syscall, not their type: rare,
    // decided here.
    let generic;
    let slots = if ev.ty == GENERIC_E || ev.ty == GENERIC_X {
        generic = Slots::of(ev.name, info);
        &generic
    } else {
        match SLOTS.get(ev.ty as usize) {
            Some(s) => s,
            None => return Params::default(),
        }
    };
    let mut has_path = false;
    for &i in &slots.path {
        let Some(raw) = ev.params.get(i) else {
            continue;
        };
        let raw = cstr(raw);
        let pi = &info.params[i];
        // A relative path is resolved against what it is relative to (the
        // working directory, or the directory fd), as sysdig shows it.
        let base = if raw.is_empty() || raw.starts_with(b"/") {
            None
        } else {
            relative_base(ev, pi.ty)
        };
        match base {
            Some(base) => {
                let rel = String::from_utf8_lossy(raw);
                push_escaped(path, resolve(&base, &rel).as_bytes());
            }
            None => push_escaped(path, raw),
        }
        has_path = true;
        break;
    }
    let ret = match (ev.dir, ev.params.first()) {
        (Direction::Exit, Some(p)) if slots.ret => Some(int(p)),
        _ => None,
    };
    let endpoint = slots.endpoint.and_then(|(side, i)| {
        let p = ev.params.get(i)?;
        match info.params[i].ty {
            PType::SockTuple => tuple_peer(p, side, unix),
            _ => sockaddr(p, unix),
        }
    });
    Params {
        path: has_path.then_some(path.as_str()),
        endpoint,
        ret,
    }
}
