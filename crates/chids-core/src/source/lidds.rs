//! LID-DS recordings.
//!
//! - 2021: a `.zip` holding `<name>.sc` (lines `ts_ns uid pid proc tid
//!   syscall dir args...`) and `<name>.json` (metadata with the exploit
//!   time), or the extracted `.sc` with its `.json` beside it.
//! - 2019: `<name>.txt` (lines `num HH:MM:SS.ns cpu uid proc tid dir
//!   syscall args...`) with the labels in a `runs.csv` next to it.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use super::lines::{
    for_each_line, parse_time_of_day, read_events, rest_from, tokens_with_offsets, LineFormat,
};
use super::text_params::params_from_info;
use super::{EventSource, Position, ReadOptions, ReadStats, Sink, SourceError};
use crate::event::{Direction, Event, Format, Labels, RecordingInfo};

/// Largest `.json` metadata accepted (they are a few kB).
const MAX_JSON: u64 = 16 << 20;

/// Where the `.sc` lives.
enum ScLocation {
    Zip { sc_entry: String },
    Plain { sc: PathBuf },
}

pub struct Lidds2021 {
    info: RecordingInfo,
    location: ScLocation,
}

impl Lidds2021 {
    /// Opens a `.zip` recording: checks the archive and reads its labels.
    pub(crate) fn open_zip(path: &Path) -> Result<Self, SourceError> {
        let file = File::open(path).map_err(|e| SourceError::io(path, Position::Whole, &e))?;
        let mut archive = zip::ZipArchive::new(BufReader::new(file)).map_err(|e| {
            SourceError::new(
                path,
                Position::Whole,
                format!("not a readable zip archive ({e}); truncated?"),
            )
        })?;
        let names: Vec<String> = archive.file_names().map(str::to_string).collect();
        let sc_entries: Vec<&String> = names.iter().filter(|n| n.ends_with(".sc")).collect();
        let sc_entry = match sc_entries.as_slice() {
            [one] => (*one).clone(),
            [] => {
                return Err(SourceError::new(
                    path,
                    Position::Whole,
                    "zip holds no .sc file: not a LID-DS 2021 recording",
                ))
            }
            // Reading one and ignoring the others would score part of
            // what the file holds without a word.
            [a, b, ..] => {
                return Err(SourceError::new(
                    path,
                    Position::Whole,
                    format!(
                        "zip holds {} .sc files ({a}, {b}{}): a LID-DS 2021 recording has one",
                        sc_entries.len(),
                        if sc_entries.len() > 2 { ", ..." } else { "" }
                    ),
                ))
            }
        };
        let json_entry = names.iter().find(|n| n.ends_with(".json")).cloned();
        let labels = match json_entry {
            Some(entry) => {
                let mut text = String::new();
                let mut f = archive.by_name(&entry).map_err(|e| {
                    SourceError::new(path, Position::Whole, format!("{entry}: {e}"))
                })?;
                f.by_ref()
                    .take(MAX_JSON)
                    .read_to_string(&mut text)
                    .map_err(|e| {
                        SourceError::new(path, Position::Whole, format!("{entry}: {e}"))
                    })?;
                parse_labels(&text)
                    .map_err(|m| SourceError::new(path, Position::Whole, format!("{entry}: {m}")))?
            }
            None => Labels::default(),
        };
        let stem = sc_entry.trim_end_matches(".sc");
        let name = Path::new(stem)
            .file_name()
            .map_or_else(|| stem.to_string(), |n| n.to_string_lossy().into_owned());
        Ok(Lidds2021 {
            info: RecordingInfo {
                name,
                path: path.to_path_buf(),
                format: Format::Lidds2021,
                labels,
            },
            location: ScLocation::Zip { sc_entry },
        })
    }

    /// Opens an extracted `.sc`, with its `.json` beside it if present.
    pub fn open_sc(path: &Path) -> Result<Self, SourceError> {
        let json = path.with_extension("json");
        let labels = if json.exists() {
            let text = read_limited(&json)?;
            parse_labels(&text).map_err(|m| SourceError::new(&json, Position::Whole, m))?
        } else {
            Labels::default()
        };
        Ok(Lidds2021 {
            info: RecordingInfo {
                name: super::display_name(path),
                path: path.to_path_buf(),
                format: Format::Lidds2021,
                labels,
            },
            location: ScLocation::Plain {
                sc: path.to_path_buf(),
            },
        })
    }
}

fn read_limited(path: &Path) -> Result<String, SourceError> {
    let mut text = String::new();
    File::open(path)
        .and_then(|f| f.take(MAX_JSON).read_to_string(&mut text))
        .map_err(|e| SourceError::io(path, Position::Whole, &e))?;
    Ok(text)
}

/// `exploit` and `time.exploit[0].absolute` from a LID-DS 2021 `.json`.
pub(crate) fn parse_labels(text: &str) -> Result<Labels, String> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("invalid JSON metadata: {e}"))?;
    let exploit = v.get("exploit").and_then(|e| e.as_bool()).unwrap_or(false);
    let exploit_ns = match v.pointer("/time/exploit/0/absolute") {
        Some(serde_json::Value::Number(n)) => Some(
            decimal_seconds_to_ns(&n.to_string())
                .ok_or_else(|| format!("time.exploit[0].absolute is not a time: {n}"))?,
        ),
        None | Some(serde_json::Value::Null) => None,
        // Dropping it would make an attack recording count as attacked
        // from its first event.
        Some(other) => {
            return Err(format!(
                "time.exploit[0].absolute is not a number of seconds: {other}"
            ))
        }
    };
    Ok(Labels {
        exploit,
        exploit_ns,
    })
}

/// Exact decimal seconds → ns: going through f64 would move the exploit
/// time by up to ~100 ns at today's epoch values.
pub(crate) fn decimal_seconds_to_ns(s: &str) -> Option<u64> {
    if s.contains(['e', 'E', '-']) {
        let f: f64 = s.parse().ok()?;
        return seconds_to_ns(f);
    }
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: u64 = int.parse().ok()?;
    let mut ns = 0u64;
    for (i, c) in frac.bytes().take(9).enumerate() {
        if !c.is_ascii_digit() {
            return None;
        }
        ns += u64::from(c - b'0') * 10u64.pow(8 - i as u32);
    }
    secs.checked_mul(1_000_000_000)?.checked_add(ns)
}

/// Seconds → ns when that is a time a u64 holds (`as` would saturate inf
/// and 1e19 to u64::MAX, and a later addition wrap it).
fn seconds_to_ns(s: f64) -> Option<u64> {
    let ns = (s * 1e9).round();
    (ns.is_finite() && ns >= 0.0 && ns < u64::MAX as f64).then_some(ns as u64)
}

impl EventSource for Lidds2021 {
    fn info(&self) -> &RecordingInfo {
        &self.info
    }

    fn read(&self, _options: &ReadOptions, sink: &mut Sink<'_>) -> Result<ReadStats, SourceError> {
        let path = &self.info.path;
        match &self.location {
            ScLocation::Plain { sc } => {
                let file = File::open(sc).map_err(|e| SourceError::io(sc, Position::Whole, &e))?;
                read_sc(sc, file, sink)
            }
            ScLocation::Zip { sc_entry } => {
                let file =
                    File::open(path).map_err(|e| SourceError::io(path, Position::Whole, &e))?;
                let mut archive = zip::ZipArchive::new(BufReader::new(file)).map_err(|e| {
                    SourceError::new(
                        path,
                        Position::Whole,
                        format!("not a readable zip archive ({e})"),
                    )
                })?;
                let entry = archive.by_name(sc_entry).map_err(|e| {
                    SourceError::new(path, Position::Whole, format!("{sc_entry}: {e}"))
                })?;
                read_sc(path, entry, sink)
            }
        }
    }
}

fn read_sc(path: &Path, reader: impl Read, sink: &mut Sink<'_>) -> Result<ReadStats, SourceError> {
    let format = LineFormat {
        name: "LID-DS 2021",
        parse: parse_sc_line,
        time_of_day: false,
    };
    read_events(path, reader, &format, false, sink).map_err(|e| {
        // A zip entry cut short surfaces as an I/O error mid-stream.
        if e.message.contains("end of file") || e.message.contains("Invalid checksum") {
            SourceError {
                message: format!("{} (truncated archive?)", e.message),
                ..e
            }
        } else {
            e
        }
    })
}

pub fn parse_sc_line(line: &str) -> Option<Event<'_>> {
    let mut t = tokens_with_offsets(line);
    let ts_ns: u64 = t.next()?.1.parse().ok()?;
    let _uid = t.next()?;
    let pid: i64 = t.next()?.1.parse().ok()?;
    let process = t.next()?.1;
    let tid: i64 = t.next()?.1.parse().ok()?;
    let syscall = t.next()?.1;
    let dir = Direction::from_char(*t.next()?.1.as_bytes().first()?)?;
    let info_start = t.next().map(|(o, _)| o);
    let info = rest_from(line, info_start);
    Some(Event {
        ts_ns,
        tid,
        pid,
        process,
        dir,
        syscall,
        info,
        params: params_from_info(syscall, dir, info),
    })
}

/// A LID-DS 2019 recording: `<name>.txt` labelled by `runs.csv`.
pub(crate) struct Lidds2019 {
    info: RecordingInfo,
}

impl Lidds2019 {
    /// Opens `txt`, taking its labels from `runs_csv`.
    pub fn open(txt: &Path, runs_csv: &Path) -> Result<Self, SourceError> {
        let stem = txt
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let row = find_run(runs_csv, &stem)?;
        let mut labels = Labels {
            exploit: row.0,
            exploit_ns: None,
        };
        if let Some(offset_s) = row.1.filter(|_| row.0) {
            // runs.csv gives the exploit time in seconds after the recording
            // starts; anchor it at the first event.
            let first = first_2019_ts(txt)?;
            labels.exploit_ns = match first {
                Some(t) => Some(
                    seconds_to_ns(offset_s)
                        .and_then(|d| t.checked_add(d))
                        .ok_or_else(|| {
                            SourceError::new(
                                runs_csv,
                                Position::Whole,
                                format!("exploit_start_time {offset_s} of {stem:?} is not a time"),
                            )
                        })?,
                ),
                None => None,
            };
        }
        Ok(Lidds2019 {
            info: RecordingInfo {
                name: super::display_name(txt),
                path: txt.to_path_buf(),
                format: Format::Lidds2019,
                labels,
            },
        })
    }

    pub(crate) fn looks_like(line: &str) -> bool {
        parse_2019_line(line).is_some()
    }
}

/// (is_executing_exploit, exploit_start_time) of the row for `name`.
fn find_run(runs_csv: &Path, name: &str) -> Result<(bool, Option<f64>), SourceError> {
    let text = read_limited(runs_csv)?;
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .unwrap_or("")
        .split(',')
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    let col = |n: &str| header.iter().position(|h| h == n);
    let (Some(c_name), Some(c_exploit)) = (
        col("scenario_name").or(col("recording_name")),
        col("is_executing_exploit"),
    ) else {
        return Err(SourceError::new(
            runs_csv,
            Position::Line(1),
            "runs.csv header lacks scenario_name / is_executing_exploit",
        ));
    };
    let c_start = col("exploit_start_time");
    for (i, line) in lines.enumerate() {
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        if cells.get(c_name) != Some(&name) {
            continue;
        }
        let exploit = matches!(
            cells
                .get(c_exploit)
                .map(|s| s.to_ascii_lowercase())
                .as_deref(),
            Some("true" | "1")
        );
        let start = match c_start.and_then(|c| cells.get(c)) {
            Some(s) if !s.is_empty() => Some(
                s.parse::<f64>()
                    .ok()
                    .filter(|t| t.is_finite())
                    .ok_or_else(|| {
                        SourceError::new(
                            runs_csv,
                            Position::Line(i as u64 + 2),
                            format!("exploit_start_time {s:?} is not a number of seconds"),
                        )
                    })?,
            ),
            _ => None,
        };
        return Ok((exploit, start.filter(|s| *s >= 0.0)));
    }
    Err(SourceError::new(
        runs_csv,
        Position::Whole,
        format!("no row for recording {name:?}"),
    ))
}

fn first_2019_ts(txt: &Path) -> Result<Option<u64>, SourceError> {
    let file = File::open(txt).map_err(|e| SourceError::io(txt, Position::Whole, &e))?;
    let mut first = None;
    let stop = SourceError::new(txt, Position::Whole, "");
    let r = for_each_line(txt, file, |_, raw| {
        if let Some(e) = std::str::from_utf8(raw).ok().and_then(parse_2019_line) {
            first = Some(e.ts_ns);
            return Err(stop.clone());
        }
        Ok(())
    });
    match r {
        Err(e) if e.message.is_empty() => Ok(first),
        Err(e) => Err(e),
        Ok(()) => Ok(first),
    }
}

fn parse_2019_line(line: &str) -> Option<Event<'_>> {
    let mut t = tokens_with_offsets(line);
    let _num: u64 = t.next()?.1.parse().ok()?;
    let ts_ns = parse_time_of_day(t.next()?.1)?;
    let _cpu: u32 = t.next()?.1.parse().ok()?;
    let _uid = t.next()?;
    let process = t.next()?.1;
    let tid: i64 = t.next()?.1.parse().ok()?;
    let dir = Direction::from_char(*t.next()?.1.as_bytes().first()?)?;
    let syscall = t.next()?.1;
    let info_start = t.next().map(|(o, _)| o);
    let info = rest_from(line, info_start);
    Some(Event {
        ts_ns,
        tid,
        pid: 0,
        process,
        dir,
        syscall,
        info,
        params: params_from_info(syscall, dir, info),
    })
}

impl EventSource for Lidds2019 {
    fn info(&self) -> &RecordingInfo {
        &self.info
    }

    fn read(&self, _options: &ReadOptions, sink: &mut Sink<'_>) -> Result<ReadStats, SourceError> {
        let path = &self.info.path;
        let file = File::open(path).map_err(|e| SourceError::io(path, Position::Whole, &e))?;
        // The 2019 clock is a time of day; unwrap midnight in both modes
        // (the reference never read this format).
        let format = LineFormat {
            name: "LID-DS 2019",
            parse: parse_2019_line,
            time_of_day: true,
        };
        read_events(path, file, &format, false, sink)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_exploit_time() {
        assert_eq!(
            decimal_seconds_to_ns("1631078877.513988"),
            Some(1_631_078_877_513_988_000)
        );
        assert_eq!(decimal_seconds_to_ns("12"), Some(12_000_000_000));
        assert_eq!(decimal_seconds_to_ns("x"), None);
    }

    #[test]
    fn sc_line() {
        let e =
            parse_sc_line("1631078867380457267 0 2902771 apache2 2902771 select < res=0 ").unwrap();
        assert_eq!(e.syscall, "select");
        assert_eq!(e.info, "res=0");
        assert_eq!(e.dir, Direction::Exit);
        assert!(parse_sc_line("garbage").is_none());
    }
}
