//! `chids record`: capture a cgroup into a LID-DS 2021 style zip.
//!
//! The `.sc` lines are streamed to a temporary file beside the output while
//! recording (memory stays flat however long it runs); at the end the file
//! is zipped together with the `.json` metadata and removed. Both temporary
//! files get fresh random names and the zip is renamed into place (see
//! `chids_core::output`): nothing planted in the output folder is written
//! through, and an existing recording is replaced only with `force`.

use std::cell::{Cell, RefCell};
use std::io::{BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::capture::{Capture, Counters, ExecGate};
use super::cgroup::{CgroupRef, CommandCgroup, Target};
use super::format::{write_sc_line, Formatter};
use super::marker::Marker;
use super::{stop_requested, LiveError};
use chids_core::output::{self, PendingFile};

/// What `record` does.
#[derive(Clone, Debug)]
pub struct RecordOptions {
    pub target: Target,
    /// The `.zip` to write; the recording is named after its stem.
    pub out: PathBuf,
    /// Stop after this long (default: until the command exits, or a signal).
    pub duration: Option<Duration>,
    /// Attack start, Unix seconds, if known beforehand.
    pub exploit_at: Option<f64>,
    /// A file scripts touch (or write Unix seconds into) when the attack
    /// starts; its first change during the recording stamps the exploit time.
    pub marker_file: Option<PathBuf>,
    /// Replace `out` if it exists (otherwise that is an error, said before
    /// capturing).
    pub force: bool,
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    CommandExited,
    Duration,
    Signal,
}

/// Why a capture loop should stop now, if it should: the sandboxed command
/// exited (its status is kept), the duration is up, or a signal arrived.
pub(crate) fn should_stop(
    command: &mut Option<CommandCgroup>,
    command_status: &mut Option<i32>,
    duration: Option<Duration>,
    start: Instant,
) -> Result<Option<StopReason>, LiveError> {
    if let Some(c) = command.as_mut() {
        if let Some(code) = c.try_wait()? {
            *command_status = Some(code);
            return Ok(Some(StopReason::CommandExited));
        }
    }
    if duration.is_some_and(|d| start.elapsed() >= d) {
        return Ok(Some(StopReason::Duration));
    }
    if stop_requested() {
        return Ok(Some(StopReason::Signal));
    }
    Ok(None)
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Records until the command exits, the duration passes, or
/// [`stop_requested`](super::stop_requested) (SIGINT/SIGTERM).
pub fn record(
    opts: RecordOptions,
    progress: &mut dyn FnMut(&RecordProgress),
) -> Result<RecordSummary, LiveError> {
    let name = opts
        .out
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| LiveError::Other(format!("{}: no file name", opts.out.display())))?;
    // Everything that can be checked is, before anything is captured.
    output::check_new_file(&opts.out, opts.force)
        .map_err(|m| LiveError::Other(format!("--out {}: {m}", opts.out.display())))?;
    if let Some(t) = opts.exploit_at {
        if !(t.is_finite() && t > 0.0) {
            return Err(LiveError::Other(format!(
                "--exploit-at {t}: not a time (Unix seconds)"
            )));
        }
    }
    let mut marker = match &opts.marker_file {
        Some(p) => Some(Marker::new(p.clone()).map_err(LiveError::Other)?),
        None => None,
    };

    // Load first: privilege / BTF errors come before anything is created.
    let mut capture = Capture::open()?;
    let mut command: Option<CommandCgroup> = None;
    let (cgroup, image) = match &opts.target {
        Target::Cgroup(p) => (CgroupRef::from_path(p)?, p.display().to_string()),
        Target::Container(id) => (CgroupRef::from_container(id)?, id.clone()),
        Target::Command(argv) => {
            let base = argv
                .first()
                .map(|a| {
                    Path::new(a)
                        .file_name()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .into_owned()
                })
                .unwrap_or_default();
            let c = CommandCgroup::create(&format!("record-{base}"))?;
            let cg = c.cgroup.clone();
            command = Some(c);
            (cg, argv.join(" "))
        }
    };
    capture.watch(&cgroup)?;

    let tmp = output::scratch_beside(&opts.out, ".sc.partial").map_err(|e| {
        LiveError::io(
            format!("create a temporary file beside {}", opts.out.display()),
            e,
        )
    })?;
    let tmp_path = tmp.path().to_path_buf();
    let mut sc = BufWriter::with_capacity(1 << 20, tmp);

    let start = Instant::now();
    let cpu_start = super::self_cpu_time();
    let start_secs = now_secs();
    if let (Some(c), Target::Command(argv)) = (command.as_mut(), &opts.target) {
        c.spawn(argv)?;
    }
    let mut exploit_at = opts.exploit_at;

    let mut fmt = Formatter::new();
    let mut line = Vec::with_capacity(512);
    let events = Cell::new(0u64);
    // A failed write (disk full) stops the recording at once: what was
    // written is kept and the error says where.
    let write_err: RefCell<Option<std::io::Error>> = RefCell::new(None);
    // For `-- CMD`, the recording starts at the command's exec: what the
    // child did before (joining the cgroup, namespaces) is chids, not it.
    let mut gate = ExecGate::new(matches!(opts.target, Target::Command(_)));
    let mut on_event = |raw: &super::RawEvent<'_>| {
        if !gate.admit(raw) {
            return;
        }
        let ev = fmt.format(raw);
        line.clear();
        write_sc_line(&mut line, &ev, raw.uid);
        if write_err.borrow().is_some() {
            return;
        }
        match sc.write_all(&line) {
            Ok(()) => events.set(events.get() + 1),
            Err(e) => *write_err.borrow_mut() = Some(e),
        }
    };

    let mut last_progress = Instant::now();
    let mut command_status = None;
    let stopped_by = loop {
        capture.poll(Duration::from_millis(100), &mut on_event)?;
        if exploit_at.is_none() {
            exploit_at = marker.as_mut().and_then(Marker::check);
        }
        if write_err.borrow().is_some() {
            break None;
        }
        if let Some(reason) = should_stop(&mut command, &mut command_status, opts.duration, start)?
        {
            break Some(reason);
        }
        if last_progress.elapsed() >= Duration::from_secs(1) {
            last_progress = Instant::now();
            progress(&RecordProgress {
                events: events.get(),
                counters: capture.counters(),
                elapsed: start.elapsed(),
            });
        }
    };
    // Take what is still in flight: events submitted before the command's
    // exit was noticed.
    if stopped_by.is_some() {
        capture.drain(&mut on_event)?;
    }
    let elapsed = start.elapsed();
    let cpu = super::self_cpu_time().saturating_sub(cpu_start);
    if let Some(c) = command.as_mut() {
        if command_status.is_none() {
            command_status = c.kill();
        }
    }
    capture.unwatch(&cgroup)?;
    let counters = capture.counters();
    if exploit_at.is_none() {
        exploit_at = marker.as_mut().and_then(Marker::check);
    }
    drop(command); // removes the cgroup we made
    let events = events.get();
    let write_err = write_err.into_inner();
    let flushed = match write_err {
        Some(e) => Err(e),
        None => sc.flush(),
    };
    let (sc_file, flushed) = match sc.into_inner() {
        Ok(f) => (f, flushed),
        Err(e) => {
            // The buffer could not be written out: keep the file as is.
            let (err, w) = e.into_parts();
            (w.into_parts().0, flushed.and(Err(err)))
        }
    };
    if let Err(e) = flushed {
        return Err(kept(
            format!("write {}: {e}; recording stopped", tmp_path.display()),
            events,
            sc_file,
        ));
    }

    let stopped_by = stopped_by.expect("only a write error stops without a reason");
    let mut warnings: Vec<String> = marker.and_then(|m| m.ignored).into_iter().collect();
    if let Some(t) = exploit_at {
        let end = start_secs + elapsed.as_secs_f64();
        if !(start_secs..=end).contains(&t) {
            warnings.push(format!(
                "{}: the exploit time {t:.3} is outside the recording ({start_secs:.3} to {end:.3})",
                opts.out.display()
            ));
        }
    }
    let meta = metadata_json(
        &cgroup, &image, start_secs, elapsed, exploit_at, counters, events,
    );
    let mut sc_file = sc_file;
    if let Err(e) = write_zip(&opts.out, opts.force, &name, sc_file.as_file_mut(), &meta) {
        return Err(kept(e, events, sc_file));
    }

    Ok(RecordSummary {
        out: opts.out,
        name,
        cgroup: cgroup.path,
        events,
        counters,
        elapsed,
        exploit_at,
        command_status,
        cpu,
        stopped_by,
        warnings,
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
