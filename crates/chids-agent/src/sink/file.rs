//! Alerts as JSON lines in a file (appended) or on stdout, flushed per alert.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use super::{AlertSink, SinkStats};
use chids_live::LiveError;

pub struct FileSink {
    out: Box<dyn Write + Send>,
    what: String,
    delivered: u64,
}

impl FileSink {
    /// Appends to `path` (created 0600 if missing), as `monitor --alerts`
    /// does: never through a symlink, never into a FIFO or device.
    pub fn open(path: &Path) -> Result<FileSink, LiveError> {
        let f = chids_core::output::open_append(path, false)
            .map_err(|e| LiveError::io(format!("--alerts {}", path.display()), e))?;
        Ok(FileSink {
            out: Box::new(f),
            what: path.display().to_string(),
            delivered: 0,
        })
    }

    /// Writes to any stream (the CLI passes stdout).
    pub fn to_writer(out: Box<dyn Write + Send>, what: &str) -> FileSink {
        FileSink {
            out,
            what: what.to_string(),
            delivered: 0,
        }
    }
}

impl AlertSink for FileSink {
    fn kind(&self) -> &'static str {
        "file"
    }

    fn send(&mut self, alert: &[u8]) -> Result<(), LiveError> {
        let mut line = Vec::with_capacity(alert.len() + 1);
        line.extend_from_slice(alert);
        line.push(b'\n');
        self.out
            .write_all(&line)
            .and_then(|()| self.out.flush())
            .map_err(|e| LiveError::io(format!("write alerts to {}", self.what), e))?;
        self.delivered += 1;
        Ok(())
    }

    fn stats(&self) -> SinkStats {
        SinkStats {
            delivered: self.delivered,
            connected: true,
            ..SinkStats::default()
        }
    }

    fn close(&mut self, _grace: Duration) {
        let _ = self.out.flush();
    }
}
