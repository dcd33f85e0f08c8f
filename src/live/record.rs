//! `chids record`: capture a cgroup into a LID-DS 2021 style zip.
//!
//! The `.sc` lines are streamed to a temporary file beside the output while
//! recording (memory stays flat however long it runs); at the end the file
//! is zipped together with the `.json` metadata and removed.

use std::fs::{self, File};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::capture::{Capture, Counters, ExecGate};
use super::cgroup::{CgroupRef, CommandCgroup, Target};
use super::format::{write_sc_line, Formatter};
use super::{stop_requested, LiveError};

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

/// Watches the marker file for its first change after the start.
struct Marker {
    path: PathBuf,
    initial: Option<SystemTime>,
}

impl Marker {
    fn new(path: PathBuf) -> Marker {
        let initial = fs::metadata(&path).and_then(|m| m.modified()).ok();
        Marker { path, initial }
    }

    /// The exploit time if the marker changed: its content when that is a
    /// number of Unix seconds, else its mtime.
    fn check(&self) -> Option<f64> {
        let m = fs::metadata(&self.path).and_then(|m| m.modified()).ok()?;
        if Some(m) == self.initial {
            return None;
        }
        let content = fs::read_to_string(&self.path).unwrap_or_default();
        if let Ok(t) = content.trim().parse::<f64>() {
            if t > 1e9 {
                return Some(t);
            }
        }
        m.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs_f64())
    }
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

    let tmp_path = opts.out.with_extension("sc.partial");
    let tmp = File::create(&tmp_path)
        .map_err(|e| LiveError::io(format!("create {}", tmp_path.display()), e))?;
    let mut sc = BufWriter::with_capacity(1 << 20, tmp);

    let start = Instant::now();
    let cpu_start = super::self_cpu_time();
    let start_secs = now_secs();
    if let (Some(c), Target::Command(argv)) = (command.as_mut(), &opts.target) {
        c.spawn(argv)?;
    }
    let marker = opts.marker_file.clone().map(Marker::new);
    let mut exploit_at = opts.exploit_at;

    let mut fmt = Formatter::new();
    let mut line = Vec::with_capacity(512);
    let events = std::cell::Cell::new(0u64);
    let mut write_err: Option<std::io::Error> = None;
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
        if write_err.is_none() {
            if let Err(e) = sc.write_all(&line) {
                write_err = Some(e);
            }
        }
        events.set(events.get() + 1);
    };

    let mut last_progress = Instant::now();
    let mut command_status = None;
    let stopped_by = loop {
        capture.poll(Duration::from_millis(100), &mut on_event)?;
        if exploit_at.is_none() {
            exploit_at = marker.as_ref().and_then(Marker::check);
        }
        if let Some(reason) = should_stop(&mut command, &mut command_status, opts.duration, start)?
        {
            break reason;
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
    capture.drain(&mut on_event)?;
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
        exploit_at = marker.as_ref().and_then(Marker::check);
    }
    if let Some(e) = write_err {
        return Err(LiveError::io(format!("write {}", tmp_path.display()), e));
    }
    sc.flush()
        .map_err(|e| LiveError::io(format!("write {}", tmp_path.display()), e))?;
    drop(sc);
    drop(command); // removes the cgroup we made

    let events = events.get();
    let meta = metadata_json(
        &cgroup, &image, start_secs, elapsed, exploit_at, counters, events,
    );
    write_zip(&opts.out, &name, &tmp_path, &meta)?;
    let _ = fs::remove_file(&tmp_path);

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

fn write_zip(
    out: &Path,
    name: &str,
    sc_path: &Path,
    meta: &serde_json::Value,
) -> Result<(), LiveError> {
    let io = |e: std::io::Error| LiveError::io(format!("write {}", out.display()), e);
    let zerr = |e: zip::result::ZipError| LiveError::Other(format!("write {}: {e}", out.display()));
    let partial = out.with_extension("zip.partial");
    let file = File::create(&partial).map_err(io)?;
    let mut zip = zip::ZipWriter::new(BufWriter::new(file));
    // Level 1: several times faster than the default 6 on .sc text (for
    // ~1.5x the bytes); a long recording should not take minutes to close.
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(1))
        .large_file(true);
    zip.start_file(format!("{name}.json"), opts).map_err(zerr)?;
    let text = serde_json::to_string_pretty(meta).map_err(|e| LiveError::Other(e.to_string()))?;
    zip.write_all(text.as_bytes()).map_err(io)?;
    zip.start_file(format!("{name}.sc"), opts).map_err(zerr)?;
    let mut src = File::open(sc_path).map_err(io)?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = src.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        zip.write_all(&buf[..n]).map_err(io)?;
    }
    let mut inner = zip.finish().map_err(zerr)?;
    inner.flush().map_err(io)?;
    drop(inner);
    fs::rename(&partial, out).map_err(io)?;
    Ok(())
}
