//! Inflating a gzip capture on a thread of its own, a few chunks ahead of
//! the parser: inflate is a fifth of reading a compressed capture, and it
//! needs nothing from the parser, so with a core to spare the two overlap.
//! At most [`IN_FLIGHT`] + 2 chunks of [`CHUNK`] bytes exist at a time.

use std::io::{self, Read};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

/// Bytes per chunk handed from the inflating thread to the reader.
const CHUNK: usize = 256 << 10;
/// Chunks inflated ahead of the reader.
const IN_FLIGHT: usize = 2;

/// A reader fed by a thread that reads `inner`.
pub(super) struct Prefetch {
    chunks: Receiver<io::Result<Vec<u8>>>,
    /// Spent chunks go back for reuse.
    spent: SyncSender<Vec<u8>>,
    current: Vec<u8>,
    pos: usize,
    done: bool,
}

/// Fills `buf` from `r` up to its end, the end of the input or an error;
/// returns the bytes read and the error, if one stopped it.
fn fill(r: &mut impl Read, buf: &mut [u8]) -> (usize, Option<io::Error>) {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (n, Some(e)),
        }
    }
    (n, None)
}

impl Prefetch {
    /// Starts the thread (an error when the system cannot start one).
    pub(super) fn spawn<R: Read + Send + 'static>(mut inner: R) -> io::Result<Self> {
        let (tx, chunks) = sync_channel::<io::Result<Vec<u8>>>(IN_FLIGHT);
        let (spent, recycled) = sync_channel::<Vec<u8>>(IN_FLIGHT + 2);
        std::thread::Builder::new()
            .name("chids-inflate".into())
            .spawn(move || loop {
                let mut buf = recycled.try_recv().unwrap_or_default();
                buf.resize(CHUNK, 0);
                let (n, err) = fill(&mut inner, &mut buf);
                buf.truncate(n);
                // A send fails only when the reader is gone: stop.
                if n > 0 && tx.send(Ok(buf)).is_err() {
                    return;
                }
                if let Some(e) = err {
                    let _ = tx.send(Err(e));
                    return;
                }
                if n < CHUNK {
                    return; // end of input: dropping `tx` tells the reader
                }
            })?;
        Ok(Prefetch {
            chunks,
            spent,
            current: Vec::new(),
            pos: 0,
            done: false,
        })
    }
}

impl Read for Prefetch {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.current.len() {
            if self.done {
                return Ok(0);
            }
            match self.chunks.recv() {
                Ok(Ok(next)) => {
                    let spent = std::mem::replace(&mut self.current, next);
                    let _ = self.spent.try_send(spent);
                    self.pos = 0;
                }
                Ok(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                // The thread ended after the last chunk.
                Err(_) => self.done = true,
            }
        }
        let n = buf.len().min(self.current.len() - self.pos);
        buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Yields `data`, then fails.
    struct Failing {
        data: Vec<u8>,
        pos: usize,
    }

    impl Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.pos == self.data.len() {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "corrupt"));
            }
            let n = buf.len().min(self.data.len() - self.pos).min(1000);
            buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[test]
    fn hands_on_every_byte_in_order() {
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 5 * CHUNK + 17] {
            let data = pattern(len);
            let Ok(mut r) = Prefetch::spawn(io::Cursor::new(data.clone())) else {
                panic!("no thread")
            };
            let mut out = Vec::new();
            r.read_to_end(&mut out).unwrap();
            assert_eq!(out, data, "{len}");
        }
    }

    #[test]
    fn an_error_comes_after_the_bytes_before_it() {
        let data = pattern(3 * CHUNK + 5);
        let Ok(mut r) = Prefetch::spawn(Failing {
            data: data.clone(),
            pos: 0,
        }) else {
            panic!("no thread")
        };
        let mut out = vec![0u8; data.len()];
        let mut got = 0;
        let err = loop {
            match r.read(&mut out[got..]) {
                Ok(0) => panic!("end of input instead of the error"),
                Ok(k) => got += k,
                Err(e) => break e,
            }
        };
        assert_eq!(got, data.len());
        assert_eq!(out, data);
        assert_eq!(err.to_string(), "corrupt");
    }

    #[test]
    fn dropping_the_reader_early_ends_the_thread() {
        let Ok(mut r) = Prefetch::spawn(io::repeat(1)) else {
            panic!("no thread")
        };
        let mut buf = [0u8; 10];
        r.read_exact(&mut buf).unwrap();
        drop(r); // the thread's next send fails and it returns
    }
}
