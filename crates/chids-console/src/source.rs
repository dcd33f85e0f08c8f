//! Alerts from the JetStream stream the agents publish to: an ordered
//! consumer (ephemeral, no acknowledgements: the console only reads),
//! delivering everything the stream holds, then each new alert as it is
//! stored. When the broker or the stream is away the console says so on
//! the page and tries again; it resumes after the last alert it has.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull::OrderedConfig, consumer::DeliverPolicy};
use futures_util::StreamExt;

use crate::state::Shared;

/// Larger messages are refused (counted): an alert is a few KiB.
const MAX_MESSAGE: usize = 1 << 20;
const RETRY: Duration = Duration::from_secs(2);

/// Reads the stream into the store until the process ends.
pub async fn follow(shared: Arc<Shared>, url: String, stream: String) {
    let client = match async_nats::ConnectOptions::new()
        .name("chids ui")
        .retry_on_initial_connect()
        .connect(url.as_str())
        .await
    {
        Ok(c) => c,
        Err(e) => {
            shared.set_source(false, format!("NATS {url}: {e}"));
            return;
        }
    };
    let js = jetstream::new(client);
    let _ = shared.jetstream.set(js.clone());
    loop {
        if let Err(e) = read_stream(&shared, &js, &stream).await {
            shared.set_source(false, e);
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// One consumer's life: from after the last alert held to an error.
async fn read_stream(shared: &Shared, js: &jetstream::Context, name: &str) -> Result<(), String> {
    let stream = js
        .get_stream(name)
        .await
        .map_err(|e| format!("stream {name}: {e} (retrying)"))?;
    let last = shared.store.read().unwrap().last_seq();
    let deliver_policy = if last == 0 {
        DeliverPolicy::All
    } else {
        DeliverPolicy::ByStartSequence {
            start_sequence: last + 1,
        }
    };
    let consumer = stream
        .create_consumer(OrderedConfig {
            deliver_policy,
            ..Default::default()
        })
        .await
        .map_err(|e| format!("stream {name}: consumer: {e} (retrying)"))?;
    let mut messages = consumer
        .messages()
        .await
        .map_err(|e| format!("stream {name}: {e} (retrying)"))?;
    shared.set_source(true, format!("reading stream {name}"));
    while let Some(m) = messages.next().await {
        let m = m.map_err(|e| format!("stream {name}: {e} (retrying)"))?;
        let Ok(info) = m.info() else { continue };
        let seq = info.stream_sequence;
        let mut store = shared.store.write().unwrap();
        if seq <= store.last_seq() {
            continue;
        }
        if m.payload.len() > MAX_MESSAGE {
            store.refused += 1;
            continue;
        }
        // A message that is not an alert is counted and skipped.
        let _ = store.push(seq, &m.payload);
    }
    Err(format!("stream {name}: consumer ended (retrying)"))
}
