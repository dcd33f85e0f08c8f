//! The kernel-window records of map `agg_ring` (`struct chids_agg_rec` in
//! `bpf/chids_abi.h`), decoded. A MISS record is an event the kernel could
//! not label (an argument it does not know as seen, or a syscall outside its
//! table); a SUCC record is the label that followed a MISS in its thread.

use super::abi::{self, chids_agg_kind, chids_agg_rec, chids_arg_class};
use super::capture::direction;
use chids_core::event::Direction;

/// One decoded record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AggRecord<'a> {
    Miss(Miss<'a>),
    /// The label after the pending event `seq` in its thread.
    Succ {
        watch: u64,
        window: u64,
        seq: u32,
        next: u32,
    },
}

/// An event the kernel left for user space to label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Miss<'a> {
    pub watch: u64,
    pub window: u64,
    pub seq: u32,
    /// The label before it in its thread (`LBL_NONE`, a label, or
    /// `LBL_PENDING | seq` of an earlier MISS).
    pub prev: u32,
    pub nr: i32,
    pub dir: Direction,
    /// The task's `comm` up to its NUL.
    pub comm: &'a [u8],
    pub class: chids_arg_class,
    /// The argument's bytes as the kernel read them (a path counts its NUL).
    pub arg: &'a [u8],
    /// The kernel's keyed hash of the argument (`agg_args`' key).
    pub arg_hash: u64,
}

/// Why a record could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BadRecord {
    /// Shorter than its kind's header.
    Short(usize),
    /// The argument length it claims runs past the record's end.
    ArgPastEnd {
        claimed: usize,
        have: usize,
    },
    UnknownKind(u32),
}

/// Decodes one record as the kernel sent it: a SUCC record is the header
/// only, a MISS record the header, the hash and the key up to its length.
pub(crate) fn decode(b: &[u8]) -> Result<AggRecord<'_>, BadRecord> {
    if b.len() < abi::AGG_REC_HEADER_LEN {
        return Err(BadRecord::Short(b.len()));
    }
    let r: chids_agg_rec = abi::read_prefix(b);
    match chids_agg_kind(r.kind) {
        chids_agg_kind::AGG_SUCC => Ok(AggRecord::Succ {
            watch: r.watch,
            window: r.window,
            seq: r.seq & abi::chids_label::SEQ_MASK.0,
            next: r.prev,
        }),
        chids_agg_kind::AGG_MISS => {
            if b.len() < abi::AGG_REC_ARG_AT {
                return Err(BadRecord::Short(b.len()));
            }
            let claimed = usize::from(r.key.len).min(abi::ARG_LEN);
            let arg = b
                .get(abi::AGG_REC_ARG_AT..abi::AGG_REC_ARG_AT + claimed)
                .ok_or(BadRecord::ArgPastEnd {
                    claimed,
                    have: b.len() - abi::AGG_REC_ARG_AT,
                })?;
            let comm_at = std::mem::offset_of!(chids_agg_rec, comm);
            let comm = &b[comm_at..comm_at + abi::COMM_LEN];
            let comm = &comm[..comm.iter().position(|&c| c == 0).unwrap_or(comm.len())];
            Ok(AggRecord::Miss(Miss {
                watch: r.watch,
                window: r.window,
                seq: r.seq & abi::chids_label::SEQ_MASK.0,
                prev: r.prev,
                nr: r.nr,
                dir: direction(r.dir),
                comm,
                class: chids_arg_class(u32::from(r.key.class)),
                arg,
                arg_hash: r.arg_hash,
            }))
        }
        _ => Err(BadRecord::UnknownKind(r.kind)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::{bytes, chids_dir, chids_label, zeroed, AGG_REC_ARG_AT};

    /// A MISS record as the kernel sends it: the struct cut after `arg`.
    fn miss(arg: &[u8], class: chids_arg_class) -> Vec<u8> {
        let mut r: chids_agg_rec = zeroed();
        r.watch = 41;
        r.window = 3;
        r.kind = chids_agg_kind::AGG_MISS.0;
        r.seq = 5 | chids_label::LBL_PENDING.0;
        r.prev = chids_label::LBL_NONE.0;
        r.nr = 257;
        r.dir = chids_dir::DIR_EXIT.0 as u8;
        for (c, b) in r.comm.iter_mut().zip(b"cat") {
            *c = *b as i8;
        }
        r.arg_hash = 0xfeed;
        r.key.class = class.0 as u16;
        r.key.len = arg.len() as u16;
        r.key.bytes[..arg.len()].copy_from_slice(arg);
        bytes(&r)[..AGG_REC_ARG_AT + arg.len()].to_vec()
    }

    #[test]
    fn decodes_a_miss_with_its_argument() {
        let b = miss(b"/etc/shadow\0", chids_arg_class::ARG_PATH);
        let Ok(AggRecord::Miss(m)) = decode(&b) else {
            panic!("not a MISS: {:?}", decode(&b));
        };
        assert_eq!((m.watch, m.window, m.seq, m.nr), (41, 3, 5, 257));
        assert_eq!(m.prev, chids_label::LBL_NONE.0);
        assert_eq!(m.dir, Direction::Exit);
        assert_eq!(m.comm, b"cat");
        assert_eq!(m.class, chids_arg_class::ARG_PATH);
        assert_eq!(m.arg, b"/etc/shadow\0");
        assert_eq!(m.arg_hash, 0xfeed);
    }

    #[test]
    fn decodes_a_succ_from_its_header_alone() {
        let mut r: chids_agg_rec = zeroed();
        r.kind = chids_agg_kind::AGG_SUCC.0;
        r.window = 9;
        r.seq = 77;
        r.prev = 12;
        let b = &bytes(&r)[..abi::AGG_REC_HEADER_LEN];
        assert_eq!(
            decode(b),
            Ok(AggRecord::Succ {
                watch: 0,
                window: 9,
                seq: 77,
                next: 12
            })
        );
    }

    #[test]
    fn rejects_truncated_records() {
        let b = miss(b"/x\0", chids_arg_class::ARG_PATH);
        assert_eq!(decode(&b[..10]), Err(BadRecord::Short(10)));
        // A MISS without its key header.
        let cut = abi::AGG_REC_HEADER_LEN + 4;
        assert_eq!(decode(&b[..cut]), Err(BadRecord::Short(cut)));
        assert_eq!(decode(&[]), Err(BadRecord::Short(0)));
    }

    #[test]
    fn rejects_an_argument_claimed_past_the_end() {
        let mut b = miss(b"/etc/passwd\0", chids_arg_class::ARG_PATH);
        b.truncate(b.len() - 4);
        assert_eq!(
            decode(&b),
            Err(BadRecord::ArgPastEnd {
                claimed: 12,
                have: 8
            })
        );
    }

    #[test]
    fn caps_a_claimed_length_at_the_key_size() {
        let mut r: chids_agg_rec = zeroed();
        r.kind = chids_agg_kind::AGG_MISS.0;
        r.key.len = u16::MAX;
        // The kernel sends the whole struct when the argument fills the key.
        let Ok(AggRecord::Miss(m)) = decode(bytes(&r)) else {
            panic!("not a MISS");
        };
        assert_eq!(m.arg.len(), abi::ARG_LEN);
    }

    #[test]
    fn rejects_an_unknown_kind() {
        let mut b = miss(b"", chids_arg_class::ARG_NR);
        let at = std::mem::offset_of!(chids_agg_rec, kind);
        b[at..at + 4].copy_from_slice(&99u32.to_ne_bytes());
        assert_eq!(decode(&b), Err(BadRecord::UnknownKind(99)));
    }
}
