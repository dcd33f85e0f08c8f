//! Stand-alone front end for the live commands until the main CLI mounts
//! them as `chids record` / `chids monitor` (same argument structs and run
//! functions, in src/cli/live.rs).

#[path = "../cli/live.rs"]
mod live_cli;

use std::process::ExitCode;

use clap::Parser;
use live_cli::{LiveCli, LiveCommand};

fn main() -> ExitCode {
    let cli = LiveCli::parse();
    let result = match cli.command {
        LiveCommand::Record(args) => live_cli::run_record(&args),
        LiveCommand::Monitor(args) => live_cli::run_monitor(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("chids: {e}");
            ExitCode::from(2)
        }
    }
}
