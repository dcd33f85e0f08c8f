//! Following the fleet's models: a thread that watches the version
//! records and hands every new version, fetched and checked, to the agent.
//! It connects (and reconnects) on its own; while the broker is away the
//! agent goes on with what it has.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use async_nats::jetstream::kv;
use futures_util::StreamExt;

use super::store::{fetch_bundle, parse_version};
use super::{FleetOptions, ModelVersion};
use chids_detect::model::Bundle;

/// What the watch tells the agent.
pub enum FleetEvent {
    /// A workload's new version, its files checked against the digest.
    Model {
        version: ModelVersion,
        bundle: Box<Bundle>,
    },
    /// A line for the log (connection state, refused versions).
    Log(String),
}

/// The watching thread; stopped and joined on drop.
pub struct FleetWatch {
    rx: mpsc::Receiver<FleetEvent>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Between connection attempts.
const RETRY: Duration = Duration::from_secs(2);
/// How often the thread looks at the stop flag while waiting.
const TICK: Duration = Duration::from_millis(200);

impl FleetWatch {
    pub fn start(opts: FleetOptions) -> Result<FleetWatch, String> {
        let (tx, rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("chids-fleet".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = tx.send(FleetEvent::Log(format!("fleet: no runtime: {e}")));
                        return;
                    }
                };
                rt.block_on(follow(&opts, &tx, &flag));
            })
            .map_err(|e| format!("start the fleet thread: {e}"))?;
        Ok(FleetWatch {
            rx,
            stop,
            thread: Some(thread),
        })
    }

    /// What arrived since the last call.
    pub fn poll(&self) -> Vec<FleetEvent> {
        self.rx.try_iter().collect()
    }
}

impl Drop for FleetWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Connects, watches, and starts again after any failure, until stopped.
async fn follow(opts: &FleetOptions, tx: &mpsc::Sender<FleetEvent>, stop: &AtomicBool) {
    // The newest version handed over per workload: a re-watch after a
    // reconnect delivers the current records again.
    let mut known: HashMap<String, u64> = HashMap::new();
    let mut said_down = false;
    while !stop.load(Ordering::Relaxed) {
        match watch_once(opts, tx, stop, &mut known, &mut said_down).await {
            Ok(()) => {}
            Err(e) => {
                if !said_down {
                    let _ = tx.send(FleetEvent::Log(format!(
                        "fleet: {e}; working alone, trying again every {}s",
                        RETRY.as_secs()
                    )));
                    said_down = true;
                }
            }
        }
        let mut waited = Duration::ZERO;
        while waited < RETRY && !stop.load(Ordering::Relaxed) {
            tokio::time::sleep(TICK).await;
            waited += TICK;
        }
    }
}

async fn watch_once(
    opts: &FleetOptions,
    tx: &mpsc::Sender<FleetEvent>,
    stop: &AtomicBool,
    known: &mut HashMap<String, u64>,
    said_down: &mut bool,
) -> Result<(), String> {
    let client = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .connect(opts.url.as_str())
        .await
        .map_err(|e| format!("NATS {}: {e}", opts.url))?;
    let js = async_nats::jetstream::new(client);
    // The buckets are made by whoever publishes first; until then there is
    // nothing to follow.
    let store = js.get_key_value(&opts.models_bucket).await.map_err(|e| {
        format!(
            "no models on {} yet, or it cannot be read (KV bucket {}: {e})",
            opts.url, opts.models_bucket
        )
    })?;
    let objects = js
        .get_object_store(&opts.bundles_bucket)
        .await
        .map_err(|e| format!("object store {}: {e}", opts.bundles_bucket))?;
    let mut entries = store
        .watch_with_history(">")
        .await
        .map_err(|e| format!("watching {}: {e}", opts.models_bucket))?;
    if *said_down {
        let _ = tx.send(FleetEvent::Log(format!(
            "fleet: following {} on {}",
            opts.models_bucket, opts.url
        )));
        *said_down = false;
    }
    while !stop.load(Ordering::Relaxed) {
        let entry = match tokio::time::timeout(TICK, entries.next()).await {
            Err(_) => continue,
            Ok(None) => return Err("the watch ended".into()),
            Ok(Some(Err(e))) => return Err(format!("watch: {e}")),
            Ok(Some(Ok(entry))) => entry,
        };
        if entry.operation != kv::Operation::Put {
            continue;
        }
        let Some(event) = take_entry(&objects, &entry, known).await else {
            continue;
        };
        if tx.send(event).is_err() {
            return Ok(());
        }
    }
    Ok(())
}

/// The event for one record: its bundle when it is new, a log line when
/// it cannot be used.
async fn take_entry(
    objects: &async_nats::jetstream::object_store::ObjectStore,
    entry: &kv::Entry,
    known: &mut HashMap<String, u64>,
) -> Option<FleetEvent> {
    // The record names its workload; the key must be that workload's.
    let workload = serde_json::from_slice::<serde_json::Value>(&entry.value)
        .ok()
        .and_then(|v| v.get("workload")?.as_str().map(str::to_string))
        .filter(|w| super::bucket_key(w) == entry.key);
    let Some(workload) = workload else {
        return Some(FleetEvent::Log(format!(
            "fleet: record {:?} names no workload of that key; ignored",
            entry.key
        )));
    };
    let version = match parse_version(&entry.value, &workload) {
        Ok(v) => v,
        Err(e) => return Some(FleetEvent::Log(format!("fleet: {e}; ignored"))),
    };
    if known.get(&workload).is_some_and(|&k| k >= version.version) {
        return None;
    }
    match fetch_bundle(objects, &version).await {
        Ok(bundle) => {
            known.insert(workload, version.version);
            Some(FleetEvent::Model {
                version,
                bundle: Box::new(bundle),
            })
        }
        Err(e) => Some(FleetEvent::Log(format!("fleet: {e}"))),
    }
}
