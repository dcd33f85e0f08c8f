//! `chids ui`: the alert console in the browser (crates/chids-console).
//!
//! A process of its own rather than a flag of the agent: the console shows
//! alerts across nodes, so it reads the JetStream stream every agent
//! publishes to, and a node agent stays without a web server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Args as ClapArgs;

#[derive(ClapArgs)]
pub struct Args {
    /// The NATS server the agents publish to (`nats://HOST:PORT`).
    #[arg(long, value_name = "URL")]
    pub nats: String,
    /// The JetStream stream that holds the alerts.
    #[arg(long, value_name = "NAME", default_value = "CHIDS_ALERTS")]
    pub stream: String,
    /// Where to serve the console. Anything but loopback needs --ui-token-file.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// A file whose first line is the secret every request must carry
    /// (the login form sets it as a cookie; or `Authorization: Bearer`).
    #[arg(long, value_name = "FILE")]
    pub ui_token_file: Option<PathBuf>,
    /// An agent's --state-dir, for the workloads view (repeatable).
    #[arg(long = "state-dir", value_name = "DIR")]
    pub state_dirs: Vec<PathBuf>,
    /// A JetStream key-value bucket of shared models, for the workloads view.
    #[arg(long, value_name = "BUCKET")]
    pub models_bucket: Option<String>,
    /// Most alerts held in memory (the newest).
    #[arg(long, value_name = "N", default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub keep: u64,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let token = match &a.ui_token_file {
        Some(f) => Some(chids_console::read_token_file(f).map_err(anyhow::Error::msg)?),
        None => None,
    };
    if let Err(e) = chids_console::check_listen(a.listen, token.is_some()) {
        bail!(e);
    }
    let opts = chids_console::Options {
        nats_url: a.nats,
        stream: a.stream,
        listen: a.listen,
        token,
        state_dirs: a.state_dirs,
        models_bucket: a.models_bucket,
        max_alerts: a.keep as usize,
        // Alerts are a few KiB; this bounds memory whatever they hold.
        max_bytes: 256 << 20,
        // No accept capability exists yet (the fleet work adds one).
        accept: None,
    };
    chids_console::run(opts, |addr| {
        eprintln!("chids: console at http://{addr}/");
    })
    .map_err(anyhow::Error::msg)?;
    Ok(ExitCode::SUCCESS)
}
