//! From command-line paths to recordings: folders are walked recursively
//! (following symlinked sub-folders, each real folder once: a symlink loop
//! is reported, not walked forever), and each file's format is recognised
//! from its extension and first bytes.

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
    /// Files inside folders skipped with a reason (empty files, broken
    /// symlinks, symlink loops).
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
        check_regular(path)?;
        let meta =
            std::fs::metadata(path).map_err(|e| SourceError::io(path, Position::Whole, &e))?;
        if meta.is_dir() {
            let mut files = Vec::new();
            walk(path, &mut files, &mut found.warnings)?;
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

/// The files under `dir`. Symlinks are followed; `walkdir` reports a link
/// back to a folder being walked (a loop) instead of entering it again. A
/// model folder (an `--od` inside a `--td`, say) is skipped with a warning.
fn walk(dir: &Path, out: &mut Vec<PathBuf>, warnings: &mut Vec<String>) -> Result<(), SourceError> {
    let mut entries = walkdir::WalkDir::new(dir)
        .follow_links(true)
        .min_depth(1)
        .sort_by_file_name()
        .into_iter();
    while let Some(entry) = entries.next() {
        match entry {
            Ok(e) if e.file_type().is_dir() && is_model_folder(e.path()) => {
                warnings.push(format!(
                    "{}: a chids model folder inside the recordings; skipped",
                    e.path().display()
                ));
                entries.skip_current_dir();
            }
            Ok(e) if e.file_type().is_file() => out.push(e.into_path()),
            Ok(_) => {}
            Err(e) if e.loop_ancestor().is_some() => warnings.push(format!(
                "{}: symlink loop (back to {}); not followed",
                e.path()
                    .map_or_else(|| dir.display().to_string(), |p| p.display().to_string()),
                e.loop_ancestor().map(Path::display).expect("a loop"),
            )),
            // A dangling symlink: nothing to read, say so.
            Err(e) if e.path().is_some_and(|p| p.is_symlink() && !p.exists()) => {
                warnings.push(format!(
                    "{}: broken symlink; skipped",
                    e.path().map(Path::display).expect("a path")
                ))
            }
            Err(e) => {
                let path = e.path().unwrap_or(dir).to_path_buf();
                let io = e
                    .into_io_error()
                    .unwrap_or_else(|| std::io::Error::other("unreadable"));
                return Err(SourceError::io(&path, Position::Whole, &io));
            }
        }
    }
    Ok(())
}

fn extension(path: &Path) -> String {
    path.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default()
}

/// Refuses anything but a regular file (after links): reading a FIFO
/// would wait for a writer forever, a device could be endless.
fn check_regular(path: &Path) -> Result<(), SourceError> {
    use std::os::unix::fs::FileTypeExt;
    let t = std::fs::metadata(path)
        .map_err(|e| SourceError::io(path, Position::Whole, &e))?
        .file_type();
    let what = if t.is_file() || t.is_dir() {
        return Ok(());
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    };
    Err(SourceError::new(
        path,
        Position::Whole,
        format!("is {what}, not a recording file; refusing to read it"),
    ))
}

/// Opens one file as a recording, recognising its format.
pub fn open(path: &Path) -> Result<Box<dyn EventSource>, SourceError> {
    check_regular(path)?;
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
