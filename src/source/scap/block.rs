//! Block layer of the capture format (pcapng-like): every block is
//! `type: u32, total_len: u32, body, total_len: u32` with the body padded to
//! four bytes. The reader streams one block at a time into a reusable
//! buffer, so memory stays bounded by the largest block.

use std::io::{self, Read};

pub const SHB: u32 = 0x0A0D_0D0A;
pub const MI: u32 = 0x201;
pub const PL_V1: u32 = 0x202;
pub const FDL: u32 = 0x203;
pub const EV: u32 = 0x204;
pub const IL: u32 = 0x205;
pub const UL: u32 = 0x206;
pub const PL_V2: u32 = 0x207;
pub const EVF: u32 = 0x208;
pub const PL_V3: u32 = 0x209;
pub const PL_V4: u32 = 0x210;
pub const PL_V5: u32 = 0x211;
pub const PL_V6: u32 = 0x212;
pub const PL_V7: u32 = 0x213;
pub const PL_V8: u32 = 0x214;
pub const EV_V2: u32 = 0x216;
pub const EVF_V2: u32 = 0x217;
pub const FDL_V2: u32 = 0x218;
pub const PL_V9: u32 = 0x215;
pub const UL_V2: u32 = 0x220;
pub const EV_V2_LARGE: u32 = 0x221;
pub const EVF_V2_LARGE: u32 = 0x222;
/// "Internal" variants of old blocks have this bit set and the same layout.
pub const INT_BIT: u32 = 0x8000;

pub const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;

/// Largest block we accept. Real event blocks are at most a few MiB; a
/// larger length is corruption, and refusing it keeps allocation bounded.
pub const MAX_BLOCK: u32 = 64 << 20;

/// Why a block could not be read, and at which byte it starts.
#[derive(Debug)]
pub struct BlockError {
    pub offset: u64,
    pub message: String,
}

pub struct Block<'a> {
    pub kind: u32,
    /// Offset of the block header in the (decompressed) stream.
    pub offset: u64,
    pub body: &'a [u8],
}

pub struct BlockReader<R> {
    inner: R,
    offset: u64,
    buf: Vec<u8>,
}

/// Reads as many bytes as are available up to `buf.len()`.
fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

impl<R: Read> BlockReader<R> {
    pub fn new(inner: R) -> Self {
        BlockReader {
            inner,
            offset: 0,
            buf: Vec::new(),
        }
    }

    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The next block, `None` at a clean end of file (no partial header).
    pub fn next_block(&mut self) -> Result<Option<Block<'_>>, BlockError> {
        let start = self.offset;
        let err = |m: String| BlockError {
            offset: start,
            message: m,
        };
        let mut hdr = [0u8; 8];
        let n = read_full(&mut self.inner, &mut hdr).map_err(|e| err(e.to_string()))?;
        if n == 0 {
            return Ok(None);
        }
        if n < 8 {
            return Err(err(format!("truncated block header ({n} of 8 bytes)")));
        }
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
        let rest = total as usize - 8;
        self.buf.clear();
        // Grow in steps while reading so a lying length on a short file
        // cannot force a large allocation up front.
        let mut got = 0usize;
        while got < rest {
            let step = (rest - got).min(1 << 20);
            self.buf.resize(got + step, 0);
            let k = read_full(&mut self.inner, &mut self.buf[got..got + step])
                .map_err(|e| err(e.to_string()))?;
            got += k;
            if k < step {
                return Err(err(format!(
                    "block type {kind:#x} of {total} bytes runs past the end of the file ({} bytes present)",
                    8 + got
                )));
            }
        }
        let trailer = u32::from_le_bytes([
            self.buf[rest - 4],
            self.buf[rest - 3],
            self.buf[rest - 2],
            self.buf[rest - 1],
        ]);
        if trailer != total {
            return Err(err(format!(
                "block type {kind:#x}: trailing length {trailer} differs from leading length {total}"
            )));
        }
        self.offset += total as u64;
        Ok(Some(Block {
            kind,
            offset: start,
            body: &self.buf[..rest - 4],
        }))
    }
}

/// Little-endian cursor over a block body with bounds checks: every read
/// that would run past the end returns `None` instead of panicking.
#[derive(Clone, Copy)]
pub struct Cur<'a> {
    pub data: &'a [u8],
    pub pos: usize,
}

impl<'a> Cur<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Cur { data, pos: 0 }
    }
    pub fn remaining(&self) -> usize {
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
