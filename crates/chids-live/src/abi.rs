//! The kernel interface (`bpf/chids_abi.h`) as the Rust side uses it: the
//! structs and constants libbpf-cargo generates into the skeleton from the
//! program's BTF, so there is one definition of every record, map value
//! and constant, the C header. What the decoders rely on (sizes, offsets)
//! is asserted at compile time here and in the header (`_Static_assert`).

use std::mem::{offset_of, size_of};

pub(crate) use super::skel::types::{
    chids_agg_cfg, chids_agg_flight, chids_agg_kind, chids_agg_rec, chids_agg_thread,
    chids_agg_window, chids_arg_class, chids_arg_key, chids_counter, chids_dir, chids_event,
    chids_event_flag, chids_label, chids_limit, chids_watch, chids_watch_flag,
};

/// A constant of the kernel interface as a `usize` (lengths, counts).
pub(crate) const fn limit(l: chids_limit) -> usize {
    l.0 as usize
}

pub(crate) const COMM_LEN: usize = limit(chids_limit::COMM_LEN);
pub(crate) const PATH_LEN: usize = limit(chids_limit::PATH_LEN);
pub(crate) const ARG_LEN: usize = limit(chids_limit::ARG_LEN);
pub(crate) const LBL_WORDS: usize = limit(chids_limit::LBL_WORDS);
pub(crate) const NR_TABLE: usize = limit(chids_limit::NR_TABLE);
pub(crate) const AGG_SLOTS: u32 = chids_limit::AGG_SLOTS.0;
pub(crate) const AGG_WATCHES: u32 = chids_limit::AGG_WATCHES.0;

/// Bytes of `struct chids_event` before an event's payload.
pub(crate) const EVENT_HEADER_LEN: usize = size_of::<chids_event>();
/// Bytes of a kernel-window record before its argument key (a SUCC record
/// is this long).
pub(crate) const AGG_REC_HEADER_LEN: usize = offset_of!(chids_agg_rec, arg_hash);
/// Bytes of a MISS record before the argument's bytes.
pub(crate) const AGG_REC_ARG_AT: usize =
    offset_of!(chids_agg_rec, key) + offset_of!(chids_arg_key, bytes);

// The same facts chids_abi.h asserts: the generated types are the header's.
const _: () = assert!(size_of::<chids_event>() == 64);
const _: () = assert!(offset_of!(chids_event, comm) == 44);
const _: () = assert!(offset_of!(chids_event, flags) == 60);
const _: () = assert!(size_of::<chids_watch>() == 16);
const _: () = assert!(size_of::<chids_agg_cfg>() == 32 + 8 * LBL_WORDS);
const _: () = assert!(size_of::<chids_agg_window>() == 24 + 4 * 8 * LBL_WORDS);
const _: () = assert!(size_of::<chids_agg_thread>() == 16);
const _: () = assert!(offset_of!(chids_agg_rec, arg_hash) == 72);
const _: () = assert!(offset_of!(chids_agg_rec, key) == 80);
const _: () = assert!(offset_of!(chids_arg_key, bytes) == 8);
const _: () = assert!(size_of::<chids_agg_rec>() == 80 + 8 + ARG_LEN);
const _: () = assert!(size_of::<chids_agg_flight>() == 40);
const _: () = assert!(chids_counter::CNT_MAX.0 == 6);
const _: () = assert!(LBL_WORDS * 64 > NR_TABLE);

/// Kernel-interface structs that are plain data: integers and arrays of
/// them, laid out without implicit padding (the sizes above are the sums
/// of their fields), so every byte is initialised and every bit pattern is
/// a valid value.
///
/// # Safety
/// Only for such types.
pub(crate) unsafe trait Plain: Copy + 'static {}

// SAFETY: generated from chids_abi.h; integer fields and arrays only, and
// their sizes asserted above equal the sums of their fields.
unsafe impl Plain for chids_event {}
unsafe impl Plain for chids_watch {}
unsafe impl Plain for chids_agg_cfg {}
unsafe impl Plain for chids_agg_window {}
unsafe impl Plain for chids_agg_thread {}
unsafe impl Plain for chids_agg_rec {}
unsafe impl Plain for chids_agg_flight {}
unsafe impl Plain for u32 {}
unsafe impl Plain for u64 {}

/// A value read from the first `size_of::<T>()` bytes of `b` (any
/// alignment); `None` when `b` is shorter.
pub(crate) fn read<T: Plain>(b: &[u8]) -> Option<T> {
    if b.len() < size_of::<T>() {
        return None;
    }
    // SAFETY: enough bytes; T: Plain accepts any bit pattern;
    // read_unaligned has no alignment requirement.
    Some(unsafe { std::ptr::read_unaligned(b.as_ptr().cast::<T>()) })
}

/// A value of which `b` holds a prefix (a record sent shorter than its
/// struct): the bytes `b` has, zeros after.
pub(crate) fn read_prefix<T: Plain>(b: &[u8]) -> T {
    // SAFETY: T: Plain, so all-zero bytes are a valid value.
    let mut value: T = unsafe { std::mem::zeroed() };
    let n = b.len().min(size_of::<T>());
    // SAFETY: n bytes fit in both; they do not overlap (value is a local).
    unsafe {
        std::ptr::copy_nonoverlapping(b.as_ptr(), (&mut value as *mut T).cast::<u8>(), n);
    }
    value
}

/// The bytes of a value, as a map update wants them.
pub(crate) fn bytes<T: Plain>(value: &T) -> &[u8] {
    // SAFETY: T: Plain has no padding, so all size_of::<T>() bytes are
    // initialised; the slice borrows `value`.
    unsafe { std::slice::from_raw_parts((value as *const T).cast::<u8>(), size_of::<T>()) }
}

/// A zeroed value (the kernel's maps start zeroed too).
pub(crate) fn zeroed<T: Plain>() -> T {
    read_prefix(&[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_needs_the_whole_value_and_any_alignment_does() {
        let mut buf = vec![0u8; 1 + size_of::<chids_watch>()];
        let w = chids_watch {
            id: 7,
            flags: chids_watch_flag::W_AGG.0,
            slot: 3,
        };
        buf[1..].copy_from_slice(bytes(&w));
        let back: chids_watch = read(&buf[1..]).unwrap();
        assert_eq!((back.id, back.flags, back.slot), (7, 2, 3));
        assert!(read::<chids_watch>(&buf[1..buf.len() - 1]).is_none());
    }

    #[test]
    fn read_prefix_zero_fills() {
        let w = chids_watch {
            id: u64::MAX,
            flags: 1,
            slot: 9,
        };
        let back: chids_watch = read_prefix(&bytes(&w)[..8]);
        assert_eq!((back.id, back.flags, back.slot), (u64::MAX, 0, 0));
    }
}
