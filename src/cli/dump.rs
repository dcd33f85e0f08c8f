//! `chids dump FILE [--format sysdig|json] [--container ID] [--all-events]`:
//! print a capture's events.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use chids_core::source::scap::{dump, DumpFormat, DumpOptions};

#[derive(Clone, Copy, clap::ValueEnum)]
enum Format {
    /// Lines like `sysdig -r FILE`.
    Sysdig,
    /// One JSON object per line.
    Json,
}

#[derive(clap::Args)]
pub struct Args {
    /// A sysdig/Falco capture (.scap, optionally gzip-compressed).
    file: PathBuf,
    #[arg(long, value_enum, default_value = "sysdig")]
    format: Format,
    /// Keep only the events of this container: its full id or a unique
    /// prefix, from the capture's cgroups.
    #[arg(long)]
    container: Option<String>,
    /// Also print the events `sysdig -r` leaves out: internal ones and the
    /// container metadata stamped with time 0.
    #[arg(long)]
    all_events: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let format = match args.format {
        Format::Sysdig => DumpFormat::Sysdig,
        Format::Json => DumpFormat::Json,
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let options = DumpOptions {
        format,
        container: args.container,
        all_events: args.all_events,
    };
    let result = dump(&args.file, &options, &mut out);
    // Whatever was dumped before an error is still written out.
    let flushed = out.flush();
    let stats = result?;
    if let Err(e) = flushed {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            return Err(e.into());
        }
    }
    if stats.read.malformed > 0 {
        let first = match &stats.read.first_malformed {
            Some((at, why)) => format!(" (first at {at}: {why})"),
            None => String::new(),
        };
        eprintln!(
            "chids: warning: {}: skipped {} unknown or malformed event(s){first}",
            args.file.display(),
            stats.read.malformed
        );
    }
    Ok(ExitCode::SUCCESS)
}
