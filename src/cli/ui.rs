//! `chids ui`: the alert console in the browser (crates/chids-console).
//!
//! A process of its own rather than a flag of the agent: the console shows
//! alerts across nodes, so it reads the JetStream stream every agent
//! publishes to, and a node agent stays without a web server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use std::sync::Arc;

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
    /// A JetStream key-value bucket of shared models, for the workloads view
    /// (and where --allow-accept publishes; default there: chids-models).
    #[arg(long, value_name = "BUCKET")]
    pub models_bucket: Option<String>,
    /// Let the alert page accept an alert as normal: its reasons are folded
    /// into the workload's model with an audit entry. Into the fleet's
    /// shared model on --nats, or with --models into an agent's folder.
    #[arg(long)]
    pub allow_accept: bool,
    /// With --allow-accept: an agent's --models folder to accept into
    /// (read by the agent at its next start) instead of the fleet's model.
    #[arg(long, value_name = "DIR", requires = "allow_accept")]
    pub models: Option<PathBuf>,
    /// With --allow-accept: the object-store bucket of the fleet's bundle files.
    #[arg(long, value_name = "BUCKET", default_value = "chids-bundles")]
    pub bundles_bucket: String,
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
    let accept = if a.allow_accept {
        Some(accept_hook(&a)?)
    } else {
        None
    };
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
        accept,
    };
    chids_console::run(opts, |addr| {
        eprintln!("chids: console at http://{addr}/");
    })
    .map_err(anyhow::Error::msg)?;
    Ok(ExitCode::SUCCESS)
}

/// The accept button's work: into the agent's folder given with --models,
/// else into the fleet's model on the broker.
#[cfg(feature = "live")]
fn accept_hook(a: &Args) -> Result<Arc<dyn chids_console::AcceptHook>> {
    use super::ui_accept::{FleetAccept, FolderAccept};
    Ok(match &a.models {
        Some(dir) => Arc::new(FolderAccept::new(dir).map_err(anyhow::Error::msg)?),
        None => Arc::new(FleetAccept {
            url: a.nats.clone(),
            models_bucket: a
                .models_bucket
                .clone()
                .unwrap_or_else(|| "chids-models".into()),
            bundles_bucket: a.bundles_bucket.clone(),
        }),
    })
}

#[cfg(not(feature = "live"))]
fn accept_hook(_: &Args) -> Result<Arc<dyn chids_console::AcceptHook>> {
    bail!(
        "--allow-accept updates models with the agent's code, which this build leaves out: \
         build with `cargo build --release --features live`"
    )
}
