//! Block layer of the capture format (pcapng-like): every block is
//! `type: u32, total_len: u32, body, total_len: u32` with the body padded to
//! four bytes. The reader streams one block at a time into a reusable
//! buffer, so memory stays bounded by the largest block.

use std::io::{self, Read};

pub const SHB: u32 = 0x0A0D_0D0A;
pub const MI: u32 = 0x201;
pub(crate) const PL_V1: u32 = 0x202;
pub(crate) const FDL: u32 = 0x203;
pub(crate) const EV: u32 = 0x204;
pub const IL: u32 = 0x205;
pub(crate) const UL: u32 = 0x206;
pub(crate) const PL_V2: u32 = 0x207;
pub(crate) const EVF: u32 = 0x208;
pub(crate) const PL_V3: u32 = 0x209;
pub(crate) const PL_V4: u32 = 0x210;
pub(crate) const PL_V5: u32 = 0x211;
pub(crate) const PL_V6: u32 = 0x212;
pub(crate) const PL_V7: u32 = 0x213;
pub(crate) const PL_V8: u32 = 0x214;
pub const EV_V2: u32 = 0x216;
pub(crate) const EVF_V2: u32 = 0x217;
pub const FDL_V2: u32 = 0x218;
pub const PL_V9: u32 = 0x215;
pub(crate) const UL_V2: u32 = 0x220;
pub const EV_V2_LARGE: u32 = 0x221;
pub(crate) const EVF_V2_LARGE: u32 = 0x222;
/// "Internal" variants of old blocks have this bit set and the same layout.
pub(crate) const INT_BIT: u32 = 0x8000;

pub(crate) const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;

/// Largest block we accept. Real event blocks are at most a few MiB; a
/// larger length is corruption, and refusing it keeps allocation bounded.
pub(crate) const MAX_BLOCK: u32 = 64 << 20;

/// Why a block could not be read, and at which byte it starts.
#[derive(Debug)]
pub(crate) struct BlockError {
    pub offset: u64,
    pub message: String,
}

pub struct Block<'a> {
    pub kind: u32,
    /// Offset of the block header in the (decompressed) stream.
    pub offset: u64,
    pub body: &'a [u8],
}

/// How much the reader asks its input for at a time: one call per 256 KiB
/// of (decompressed) capture, not two per event.
const CHUNK: usize = 256 << 10;

/// Streams blocks out of one large buffer: each block is handed out as a
/// slice of the bytes read, without a copy per block (only the partial
/// block at the end of a chunk moves to the front).
pub(crate) struct BlockReader<R> {
    inner: R,
    /// Stream offset of `buf[start]`.
    offset: u64,
    buf: Vec<u8>,
    /// `buf[start..end]` holds bytes read but not handed out.
    start: usize,
    end: usize,
    eof: bool,
}

impl<R: Read> BlockReader<R> {
    pub fn new(inner: R) -> Self {
        BlockReader {
            inner,
            offset: 0,
            buf: Vec::new(),
            start: 0,
            end: 0,
            eof: false,
        }
    }

    /// Reads until `need` bytes are buffered or the input ends. The buffer
    /// grows only as data arrives (at most doubling what is there), so a
    /// lying block length on a short file cannot force a large allocation.
    fn fill(&mut self, need: usize) -> io::Result<()> {
        while self.end - self.start < need && !self.eof {
            if self.start > 0 && self.buf.len() - self.start < need.max(CHUNK) {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.end == self.buf.len() {
                let grown = (self.buf.len() * 2).clamp(CHUNK, (MAX_BLOCK as usize).max(need));
                self.buf.resize(grown, 0);
            }
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(k) => self.end += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The next block, `None` at a clean end of file (no partial header).
    pub(crate) fn next_block(&mut self) -> Result<Option<Block<'_>>, BlockError> {
        let start = self.offset;
        let err = |m: String| BlockError {
            offset: start,
            message: m,
        };
        self.fill(8).map_err(|e| err(e.to_string()))?;
        let n = self.end - self.start;
        if n == 0 {
            return Ok(None);
        }
        if n < 8 {
            return Err(err(format!("truncated block header ({n} of 8 bytes)")));
        }
        let hdr = &self.buf[self.start..self.start + 8];
        let kind = u32::from_le_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]);
        let total = u32::from_le_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]);
        if total < 12 {
            return Err(err(format!(
                "block type {kind:#x} has impossible length {total}"
            )));
        }
        if total > MAX_BLOCK {
            return Err(err(format!(
                "block type {kind:#x} length {total} exceeds the {MAX_BLOCK}-byte limit"
            )));
        }
        let total_len = total as usize;
        self.fill(total_len).map_err(|e| err(e.to_string()))?;
        let got = self.end - self.start;
        if got < total_len {
            return Err(err(format!(
                "block type {kind:#x} of {total} bytes runs past the end of the file ({got} bytes present)"
            )));
        }
        let block = &self.buf[self.start..self.start + total_len];
        let trailer = u32::from_le_bytes([
            block[total_len - 4],
            block[total_len - 3],
            block[total_len - 2],
            block[total_len - 1],
        ]);
        if trailer != total {
            return Err(err(format!(
                "block type {kind:#x}: trailing length {trailer} differs from leading length {total}"
            )));
        }
        self.start += total_len;
        self.offset += total as u64;
        Ok(Some(Block {
            kind,
            offset: start,
            body: &block[8..total_len - 4],
        }))
    }
}

/// Little-endian cursor over a block body with bounds checks: every read
/// that would run past the end returns `None` instead of panicking.
#[derive(Clone, Copy)]
pub(crate) struct Cur<'a> {
    pub data: &'a [u8],
    pub pos: usize,
}

impl<'a> Cur<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Cur { data, pos: 0 }
    }
    pub(crate) fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }
    pub fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.data.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }
    pub fn u8(&mut self) -> Option<u8> {
        self.bytes(1).map(|b| b[0])
    }
    pub fn u16(&mut self) -> Option<u16> {
        self.bytes(2).map(|b| u16::from_le_bytes([b[0], b[1]]))
    }
    pub fn u32(&mut self) -> Option<u32> {
        self.bytes(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub fn u64(&mut self) -> Option<u64> {
        self.bytes(8).map(|b| {
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            u64::from_le_bytes(a)
        })
    }
    /// A u16-length-prefixed string (not NUL terminated on disk).
    pub fn str16(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()? as usize;
        self.bytes(n)
    }
}
