//! The chids alert console: a web page that shows the alerts every agent
//! publishes to a NATS JetStream stream (a live timeline with filters, an
//! alert's ranked reasons and score) and the workloads the agents learn
//! and watch.
//!
//! It is a process of its own (`chids ui`), not part of the node agent: it
//! shows alerts across nodes, so it reads the stream they all publish to,
//! and a node agent gains no listening socket, no HTTP stack to attack and
//! no page-serving load from it. Everything the browser loads is embedded
//! in the binary; the page builds its DOM from text (never markup), under
//! a Content-Security-Policy that forbids inline script.

mod alert;
mod filter;
mod guard;
mod http;
mod rank;
mod source;
mod state;
mod store;
mod workloads;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

pub use alert::Alert;
pub use guard::{check_listen, read_token_file};

/// Accepting an alert as normal (the fleet's `chids accept`): folds what
/// the alert named into its workload's model and records who did it.
/// The console shows an accept button only when it is given one.
pub trait AcceptHook: Send + Sync {
    /// Where accepted alerts go, in words, for the confirmation dialog
    /// (the fleet's shared bundles on a broker, or a models folder).
    fn target(&self) -> String;
    /// `alert` is the alert's JSON as the agent sent it; `who` the name
    /// the person typed (trimmed, not empty). Blocking: the console calls
    /// it off its event loop, one accept at a time.
    fn accept(&self, alert: &serde_json::Value, who: &str) -> Result<Accepted, String>;
}

/// What an accept did, for the page.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Accepted {
    /// In words: what changed (or that the alert was already accepted).
    pub summary: String,
    /// Where the model is now: the fleet's new version, or the bundle's folder.
    pub model: String,
    /// The bundle's audit entry for this alert (`chids_detect::accept::Acceptance`
    /// as JSON: `alert_id`, `accepted_by`, `accepted_at_ns`, what was added).
    pub audit: Option<serde_json::Value>,
    /// Anything worth a second look (names the alert did not list, a
    /// window that still alarms).
    pub notes: Vec<String>,
}

pub struct Options {
    /// `nats://HOST:PORT`.
    pub nats_url: String,
    /// The JetStream stream holding the agents' alerts.
    pub stream: String,
    pub listen: SocketAddr,
    /// Required on every request when set (see [`read_token_file`]).
    pub token: Option<String>,
    /// Agents' state folders whose `status.json` the workloads view shows.
    pub state_dirs: Vec<PathBuf>,
    /// A JetStream key-value bucket of shared models, when there is one.
    pub models_bucket: Option<String>,
    /// Most alerts held (the newest).
    pub max_alerts: usize,
    /// Most bytes of alerts held, roughly.
    pub max_bytes: usize,
    pub accept: Option<Arc<dyn AcceptHook>>,
}

/// Serves the console until SIGINT or SIGTERM. `listening` is told the
/// bound address (the port may have been 0).
pub fn run(opts: Options, listening: impl FnOnce(SocketAddr)) -> Result<(), String> {
    check_listen(opts.listen, opts.token.is_some())?;
    let shared = Arc::new(state::Shared {
        store: RwLock::new(store::Store::new(opts.max_alerts, opts.max_bytes)),
        source: Mutex::new(state::SourceState {
            connected: false,
            note: format!("connecting to {}", opts.nats_url),
        }),
        stream: opts.stream.clone(),
        state_dirs: opts.state_dirs,
        models_bucket: opts.models_bucket,
        jetstream: OnceLock::new(),
        accept: opts.accept,
        accepting: tokio::sync::Mutex::new(()),
        token: opts.token,
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("start the console's runtime: {e}"))?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(opts.listen)
            .await
            .map_err(|e| format!("--listen {}: {e}", opts.listen))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("--listen {}: {e}", opts.listen))?;
        tokio::spawn(source::follow(
            Arc::clone(&shared),
            opts.nats_url,
            opts.stream,
        ));
        listening(addr);
        axum::serve(listener, http::router(shared))
            .with_graceful_shutdown(stop_signal())
            .await
            .map_err(|e| format!("serving {addr}: {e}"))
    })
}

async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
