//! `chids record`: capture a cgroup into a LID-DS 2021 style zip.
//!
//! The `.sc` lines are streamed to a temporary file beside the output while
//! recording (memory stays flat however long it runs); at the end the file
//! is zipped together with the `.json` metadata and removed. Both temporary
//! files get fresh random names and the zip is renamed into place (see
//! `chids_core::output`): nothing planted in the output folder is written
//! through, and an existing recording is replaced only with `force`.

use std::io::{BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::capture::{Counters, RawEvent};
use super::cgroup::{CgroupRef, Target};
use super::format::{write_sc_line, Formatter};
use super::marker::Marker;
use super::session::{Session, StopReason, StopToken};
use super::LiveError;
use chids_core::output::{self, PendingFile};

/// What `record` does.
#[derive(Clone, Debug)]
pub struct RecordOptions {
    pub target: Target,
    /// The `.zip` to write; the recording is named after its stem.
    pub out: PathBuf,
    /// Stop after this long (default: until the command exits, or a stop).
    pub duration: Option<Duration>,
    /// Attack start, Unix seconds, if known beforehand.
    pub exploit_at: Option<f64>,
    /// A file scripts touch (or write Unix seconds into) when the attack
    /// starts; its first change during the recording stamps the exploit time.
    pub marker_file: Option<PathBuf>,
    /// Replace `out` if it exists (otherwise that is an error, said before
    /// capturing).
    pub force: bool,
    /// Ends the recording cleanly when set (see [`StopToken::on_signals`]).
    pub stop: StopToken,
}

/// Reported about once a second while recording.
#[derive(Clone, Debug, Default)]
pub struct RecordProgress {
    pub events: u64,
    pub counters: Counters,
    pub elapsed: Duration,
}

/// What a finished recording holds.
#[derive(Clone, Debug)]
pub struct RecordSummary {
    pub out: PathBuf,
    pub name: String,
    pub cgroup: PathBuf,
    pub events: u64,
    pub counters: Counters,
    pub elapsed: Duration,
    /// Unix seconds of the attack start, if stamped.
    pub exploit_at: Option<f64>,
    /// Exit code of the command (`-- CMD` only).
    pub command_status: Option<i32>,
    /// CPU time chids itself used while capturing (user + system), not
    /// counting the final zip.
    pub cpu: Duration,
    /// Why recording stopped.
    pub stopped_by: StopReason,
    /// What the caller should tell the user (an ignored marker file, an
    /// exploit time outside the recording).
    pub warnings: Vec<String>,
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The recording's name, after checking everything that can be checked
/// before anything is captured.
fn check_options(opts: &RecordOptions) -> Result<String, LiveError> {
    let name = opts
        .out
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| LiveError::Other(format!("{}: no file name", opts.out.display())))?;
    output::check_new_file(&opts.out, opts.force)
        .map_err(|m| LiveError::Other(format!("--out {}: {m}", opts.out.display())))?;
    if let Some(t) = opts.exploit_at {
        if !(t.is_finite() && t > 0.0) {
            return Err(LiveError::Other(format!(
                "--exploit-at {t}: not a time (Unix seconds)"
            )));
        }
    }
    Ok(name)
}

/// The `.sc` lines of one recording, streamed to a temporary file. A
/// failed write (disk full) stops the recording at once: what was written
/// is kept and the error says where.
struct ScWriter {
    sc: BufWriter<tempfile::NamedTempFile>,
    path: PathBuf,
    fmt: Formatter,
    line: Vec<u8>,
    events: u64,
    error: Option<std::io::Error>,
}

impl ScWriter {
    fn create(out: &Path) -> Result<ScWriter, LiveError> {
        let tmp = output::scratch_beside(out, ".sc.partial").map_err(|e| {
            LiveError::io(
                format!("create a temporary file beside {}", out.display()),
                e,
            )
        })?;
        Ok(ScWriter {
            path: tmp.path().to_path_buf(),
            sc: BufWriter::with_capacity(1 << 20, tmp),
            fmt: Formatter::new(),
            line: Vec::with_capacity(512),
            events: 0,
            error: None,
        })
    }

    fn event(&mut self, raw: &RawEvent<'_>) {
        if self.error.is_some() {
            return;
        }
        let ev = self.fmt.format(raw);
        self.line.clear();
        write_sc_line(&mut self.line, &ev, raw.uid);
        match self.sc.write_all(&self.line) {
            Ok(()) => self.events += 1,
            Err(e) => self.error = Some(e),
        }
    }

    /// The finished temporary file, or the error of a recording that could
    /// not be written (with where its events are kept).
    fn finish(self) -> Result<(tempfile::NamedTempFile, u64), LiveError> {
        let ScWriter {
            sc,
            path,
            events,
            error,
            ..
        } = self;
        let flushed = match error {
            Some(e) => Err((e, sc.into_parts().0)),
            None => sc.into_inner().map_err(|e| {
                let (err, w) = e.into_parts();
                (err, w.into_parts().0)
            }),
        };
        match flushed {
            Ok(f) => Ok((f, events)),
            Err((e, f)) => Err(kept(
                format!("write {}: {e}; recording stopped", path.display()),
                events,
                f,
            )),
        }
    }
}

/// Records until the command exits, the duration passes, or a stop is
/// requested through `opts.stop` (SIGINT/SIGTERM).
pub fn record(
    opts: RecordOptions,
    progress: &mut dyn FnMut(&RecordProgress),
) -> Result<RecordSummary, LiveError> {
    let name = check_options(&opts)?;
    let mut marker = match &opts.marker_file {
        Some(p) => Some(Marker::new(p.clone()).map_err(LiveError::Other)?),
        None => None,
    };
    let (mut session, target) =
        Session::for_target(&opts.target, "record", opts.stop.clone(), opts.duration)?;
    let cgroup = target.cgroup;
    let image = match &opts.target {
        Target::Cgroup(p) => p.display().to_string(),
        Target::Container(id) => id.clone(),
        Target::Command(argv) => argv.join(" "),
    };
    session.capture().watch(&cgroup)?;
    let mut writer = ScWriter::create(&opts.out)?;

    let start_secs = now_secs();
    session.begin()?;
    let mut exploit_at = opts.exploit_at;
    let mut last_progress = Instant::now();
    let stopped_by = loop {
        session.poll(Duration::from_millis(100), &mut |raw| writer.event(raw))?;
        if exploit_at.is_none() {
            exploit_at = marker.as_mut().and_then(Marker::check);
        }
        if writer.error.is_some() {
            break None;
        }
        if let Some(reason) = session.stop_reason()? {
            break Some(reason);
        }
        if last_progress.elapsed() >= Duration::from_secs(1) {
            last_progress = Instant::now();
            progress(&RecordProgress {
                events: writer.events,
                counters: session.capture_ref().counters(),
                elapsed: session.elapsed(),
            });
        }
    };
    // Take what is still in flight: events submitted before the command's
    // exit was noticed.
    if stopped_by.is_some() {
        session.drain(&mut |raw| writer.event(raw))?;
    }
    let end = session.end();
    session.capture().unwatch(&cgroup)?;
    let counters = session.capture_ref().counters();
    if exploit_at.is_none() {
        exploit_at = marker.as_mut().and_then(Marker::check);
    }
    session.release_command();
    let (mut sc_file, events) = writer.finish()?;

    let stopped_by = stopped_by.expect("only a write error stops without a reason");
    let mut warnings: Vec<String> = marker.and_then(|m| m.ignored).into_iter().collect();
    warnings.extend(exploit_outside(
        &opts.out,
        exploit_at,
        start_secs,
        end.elapsed,
    ));
    let meta = metadata_json(
        &cgroup,
        &image,
        start_secs,
        end.elapsed,
        exploit_at,
        counters,
        events,
    );
    if let Err(e) = write_zip(&opts.out, opts.force, &name, sc_file.as_file_mut(), &meta) {
        return Err(kept(e, events, sc_file));
    }

    Ok(RecordSummary {
        out: opts.out,
        name,
        cgroup: cgroup.path,
        events,
        counters,
        elapsed: end.elapsed,
        exploit_at,
        command_status: end.command_status,
        cpu: end.cpu,
        stopped_by,
        warnings,
    })
}

/// A warning when the exploit time lies outside the recording.
fn exploit_outside(
    out: &Path,
    exploit_at: Option<f64>,
    start_secs: f64,
    elapsed: Duration,
) -> Option<String> {
    let t = exploit_at?;
    let end = start_secs + elapsed.as_secs_f64();
    (!(start_secs..=end).contains(&t)).then(|| {
        format!(
            "{}: the exploit time {t:.3} is outside the recording ({start_secs:.3} to {end:.3})",
            out.display()
        )
    })
}

/// The `.json` beside the `.sc`, with the key layout of LID-DS 2021
/// (`exploit`, `time.exploit[0].absolute`, ...). Keys come out sorted, as
/// in the dataset's files.
fn metadata_json(
    cg: &CgroupRef,
    image: &str,
    start: f64,
    elapsed: Duration,
    exploit_at: Option<f64>,
    counters: Counters,
    events: u64,
) -> serde_json::Value {
    use serde_json::json;
    let exploit: Vec<serde_json::Value> = exploit_at
        .map(|t| {
            vec![json!({
                "absolute": t,
                "name": "attack",
                "relative": t - start,
                "source": "CHIDS",
            })]
        })
        .unwrap_or_default();
    json!({
        "container": [{ "ip": "", "name": cg.name, "role": "victim" }],
        "exploit": exploit_at.is_some(),
        "exploit_name": if exploit_at.is_some() { "default" } else { "" },
        "image": image,
        "recording_time": elapsed.as_secs_f64().round() as u64,
        "time": {
            "container_ready": { "absolute": start, "relative": 0.0, "source": "CHIDS" },
            "exploit": exploit,
            "warmup_end": { "absolute": start, "relative": 0.0, "source": "CHIDS" },
        },
        // Not in LID-DS: what the capture itself saw.
        "chids": {
            "cgroup": cg.path.display().to_string(),
            "cgroup_id": cg.id,
            "events": events,
            "dropped_events": counters.dropped,
            "path_read_faults": counters.path_faults,
            "migrated_tasks": counters.migrated,
            "exec_enters_lost": counters.exec_unmatched,
            "undecodable_records": counters.undecodable,
        },
    })
}

/// The error of a recording that could not be finished, with where the
/// events captured so far are (the temporary `.sc` is kept, not removed).
fn kept(what: String, events: u64, sc: tempfile::NamedTempFile) -> LiveError {
    let kept = match sc.keep() {
        Ok((_, p)) => format!(
            "the {events} events written so far are kept in {}",
            p.display()
        ),
        Err(e) => format!("keeping the events written so far failed too ({})", e.error),
    };
    LiveError::Other(format!("{what}; {kept}"))
}

/// Zips the `.json` and the `.sc` (read back from `sc`) into `out`,
/// through a temporary name; replaces an existing `out` only if `force`.
fn write_zip(
    out: &Path,
    force: bool,
    name: &str,
    sc: &mut std::fs::File,
    meta: &serde_json::Value,
) -> Result<(), String> {
    let io = |e: std::io::Error| format!("write {}: {e}", out.display());
    let zerr = |e: zip::result::ZipError| format!("write {}: {e}", out.display());
    let mut pending = PendingFile::create(out, output::OUTPUT_MODE).map_err(io)?;
    let mut zip = zip::ZipWriter::new(BufWriter::new(pending.file()));
    // Level 1: several times faster than the default 6 on .sc text (for
    // ~1.5x the bytes); a long recording should not take minutes to close.
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(1))
        .large_file(true);
    zip.start_file(format!("{name}.json"), opts).map_err(zerr)?;
    let text = serde_json::to_string_pretty(meta).map_err(|e| e.to_string())?;
    zip.write_all(text.as_bytes()).map_err(io)?;
    zip.start_file(format!("{name}.sc"), opts).map_err(zerr)?;
    sc.rewind().map_err(io)?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = sc.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        zip.write_all(&buf[..n]).map_err(io)?;
    }
    let mut inner = zip.finish().map_err(zerr)?;
    inner.flush().map_err(io)?;
    drop(inner);
    let done = if force {
        pending.commit()
    } else {
        pending.commit_new()
    };
    done.map_err(io)
}
