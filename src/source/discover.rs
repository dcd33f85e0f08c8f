//! From command-line paths to recordings: folders are walked recursively,
//! and each file's format is recognised from its extension and first bytes.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::lidds::{Lidds2019, Lidds2021};
use super::sysdig_text::SysdigText;
use super::{EventSource, Position, SourceError};

/// The recordings found under some paths, plus what was passed over.
pub struct Discovered {
    pub recordings: Vec<Box<dyn EventSource>>,
    /// Companion files ignored on purpose (`.json` beside a `.sc`, `.pcap`, ...).
    pub ignored: Vec<PathBuf>,
    /// Files inside folders skipped with a reason (empty files).
    pub warnings: Vec<String>,
}

/// Files that travel with recordings and are not recordings themselves.
const COMPANIONS: [&str; 7] = ["json", "res", "pcap", "csv", "md", "log", "sha256"];

/// Finds every recording under `paths`, in sorted path order (so results do
/// not depend on directory listing order). An empty folder is an error.
pub fn discover(paths: &[PathBuf]) -> Result<Discovered, SourceError> {
    let mut found = Discovered {
        recordings: Vec::new(),
        ignored: Vec::new(),
        warnings: Vec::new(),
    };
    for path in paths {
        let meta =
            std::fs::metadata(path).map_err(|e| SourceError::io(path, Position::Whole, &e))?;
        if meta.is_dir() {
            let mut files = Vec::new();
            let mut models = Vec::new();
            walk(path, &mut files, &mut models)?;
            models.sort();
            for m in models {
                found.warnings.push(format!(
                    "{}: a chids model folder inside the recordings; skipped",
                    m.display()
                ));
            }
            files.sort();
            let before = found.recordings.len();
            for file in files {
                let ext = extension(&file);
                let hidden = file
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'));
                if hidden || COMPANIONS.contains(&ext.as_str()) {
                    found.ignored.push(file);
                    continue;
                }
                // An empty recording inside a folder run is passed over
                // (the reference aborts the whole run there).
                if std::fs::metadata(&file).is_ok_and(|m| m.len() == 0) {
                    found
                        .warnings
                        .push(format!("{}: empty file; skipped", file.display()));
                    continue;
                }
                found.recordings.push(open(&file)?);
            }
            if found.recordings.len() == before {
                return Err(SourceError::new(
                    path,
                    Position::Whole,
                    "folder holds no recording",
                ));
            }
        } else {
            found.recordings.push(open(path)?);
        }
    }
    Ok(found)
}

/// Whether `dir` is a model bundle (`chids baseline --od`): it holds
/// `baseline.json` beside a weights or sequences file.
fn is_model_folder(dir: &Path) -> bool {
    dir.join("baseline.json").is_file()
        && (dir.join("model.safetensors").is_file() || dir.join("stide_sequences.json").is_file())
}

/// Collects the files under `dir`; model folders (an `--od` inside a
/// `--td`, say) are not walked but listed in `models`.
fn walk(dir: &Path, out: &mut Vec<PathBuf>, models: &mut Vec<PathBuf>) -> Result<(), SourceError> {
    if is_model_folder(dir) {
        models.push(dir.to_path_buf());
        return Ok(());
    }
    let entries = std::fs::read_dir(dir).map_err(|e| SourceError::io(dir, Position::Whole, &e))?;
    for entry in entries {
        let entry = entry.map_err(|e| SourceError::io(dir, Position::Whole, &e))?;
        let path = entry.path();
        let ty = entry
            .file_type()
            .map_err(|e| SourceError::io(&path, Position::Whole, &e))?;
        if ty.is_dir() {
            walk(&path, out, models)?;
        } else if ty.is_file() || ty.is_symlink() && path.is_file() {
            out.push(path);
        }
    }
    Ok(())
}

fn extension(path: &Path) -> String {
    path.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default()
}

/// Opens one file as a recording, recognising its format.
pub fn open(path: &Path) -> Result<Box<dyn EventSource>, SourceError> {
    let mut head = [0u8; 4096];
    let n = File::open(path)
        .and_then(|mut f| read_up_to(&mut f, &mut head))
        .map_err(|e| SourceError::io(path, Position::Whole, &e))?;
    let head = &head[..n];
    if head.is_empty() {
        return Err(SourceError::new(path, Position::Whole, "empty file"));
    }
    let ext = extension(path);
    if head.starts_with(b"PK\x03\x04") || ext == "zip" {
        return Ok(Box::new(Lidds2021::open_zip(path)?));
    }
    if is_scap(head) || ext == "scap" || path.to_string_lossy().ends_with(".scap.gz") {
        return open_scap(path);
    }
    let first_line = first_text_line(head);
    if ext == "sc" {
        return Ok(Box::new(Lidds2021::open_sc(path)?));
    }
    if let Some(line) = first_line {
        if SysdigText::looks_like(line) {
            return Ok(Box::new(SysdigText::new(path)));
        }
        if Lidds2019::looks_like(line) {
            return match find_runs_csv(path) {
                Some(csv) => Ok(Box::new(Lidds2019::open(path, &csv)?)),
                None => Err(SourceError::new(
                    path,
                    Position::Whole,
                    "looks like LID-DS 2019 but no runs.csv was found beside it or above it",
                )),
            };
        }
    }
    Err(SourceError::new(
        path,
        Position::Byte(0),
        "unrecognised format (expected a .scap capture, a LID-DS .zip/.sc/.txt, or sysdig -r text)",
    ))
}

fn read_up_to(f: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// The first non-empty line of `head`, if it is text.
fn first_text_line(head: &[u8]) -> Option<&str> {
    let end = head.iter().position(|&b| b == b'\n').unwrap_or(head.len());
    let line = std::str::from_utf8(&head[..end]).ok()?;
    (!line.trim().is_empty()).then_some(line)
}

/// Section header block magic of a capture, or gzip.
fn is_scap(head: &[u8]) -> bool {
    head.starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]) || head.starts_with(&[0x1f, 0x8b])
}

fn open_scap(path: &Path) -> Result<Box<dyn EventSource>, SourceError> {
    Ok(Box::new(super::scap::ScapSource::open(path)?))
}

fn find_runs_csv(txt: &Path) -> Option<PathBuf> {
    txt.ancestors()
        .skip(1)
        .take(3)
        .map(|d| d.join("runs.csv"))
        .find(|p| p.is_file())
}
