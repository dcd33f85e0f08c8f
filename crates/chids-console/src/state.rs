//! What the HTTP handlers and the stream reader share.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use serde::Serialize;

use crate::store::Store;
use crate::AcceptHook;

/// How the alert source is doing, for the page's status line.
#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct SourceState {
    pub connected: bool,
    pub note: String,
}

pub struct Shared {
    pub store: RwLock<Store>,
    pub source: Mutex<SourceState>,
    pub stream: String,
    pub state_dirs: Vec<PathBuf>,
    pub models_bucket: Option<String>,
    /// Set once the NATS client exists (the models bucket is read through it).
    pub jetstream: OnceLock<async_nats::jetstream::Context>,
    pub accept: Option<Arc<dyn AcceptHook>>,
    /// Held while an accept runs (they read and write the same model).
    pub accepting: tokio::sync::Mutex<()>,
    /// The console token, when one is required.
    pub token: Option<String>,
}

impl Shared {
    pub(crate) fn set_source(&self, connected: bool, note: String) {
        *self.source.lock().unwrap() = SourceState { connected, note };
    }
}
