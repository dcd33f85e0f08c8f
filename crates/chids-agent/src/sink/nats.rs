//! Alerts to a NATS subject, from the outbox.
//!
//! Alerts are committed to the [`super::outbox`] by the agent; this sink's
//! delivery thread takes them from there (round-robin across workloads)
//! and publishes them, each with its `alert_id` as `Nats-Msg-Id`.
//!
//! With JetStream (the default) a record counts as delivered only once
//! the stream acknowledged it; a publish retried after a lost
//! acknowledgement or a crash is dropped by the stream as a duplicate.
//! While no stream covers the subject, records stay pending and a warning
//! says so (and is repeated while it lasts); the sink never falls back to
//! plain publishing on its own. `--no-jetstream` publishes plainly, at
//! most once: a record is marked delivered *before* it is sent.
//!
//! The client is async-nats on a current-thread tokio runtime owned by the
//! delivery thread; the rest of chids stays synchronous.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use async_nats::connection::State;
use async_nats::jetstream;
use async_nats::jetstream::context::PublishErrorKind;

use super::outbox::{OutboxCounters, OutboxReader, Pending};
use super::{AlertSink, SinkStats};
use chids_live::LiveError;

/// Where and how to publish.
#[derive(Clone, Debug)]
pub struct NatsOptions {
    /// `nats://HOST:PORT` (or `HOST:PORT`).
    pub url: String,
    pub subject: String,
    /// Acknowledged JetStream publishes (default); `false`: plain
    /// publishes, at most once.
    pub jetstream: bool,
}

struct Shared {
    wake: tokio::sync::Notify,
    stop: AtomicBool,
    /// After a stop: deliver until then, at the latest.
    deadline: Mutex<Option<Instant>>,
    connected: AtomicBool,
    counters: Arc<OutboxCounters>,
    log: Mutex<Vec<String>>,
}

impl Shared {
    fn log(&self, line: String) {
        let mut l = self.log.lock().unwrap();
        // Bounded: a broker flapping for hours must not grow memory.
        if l.len() < 100 {
            l.push(line);
        }
    }

    fn pending(&self) -> u64 {
        self.counters.pending.load(Ordering::Relaxed)
    }
}

pub struct NatsSink {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl NatsSink {
    /// Starts delivering what `reader`'s outbox holds (the broker may be
    /// down now; alerts wait in the outbox until it is up).
    pub fn start(
        opts: NatsOptions,
        reader: OutboxReader,
        counters: Arc<OutboxCounters>,
    ) -> Result<NatsSink, LiveError> {
        if opts.subject.is_empty() || opts.subject.contains(char::is_whitespace) {
            return Err(LiveError::Other(format!(
                "--subject {:?}: not a NATS subject",
                opts.subject
            )));
        }
        let shared = Arc::new(Shared {
            wake: tokio::sync::Notify::new(),
            stop: AtomicBool::new(false),
            deadline: Mutex::new(None),
            connected: AtomicBool::new(false),
            counters,
            log: Mutex::new(Vec::new()),
        });
        if !opts.jetstream {
            shared.log(format!(
                "nats: --no-jetstream: alerts are published to {} plainly, at most once (one in flight when the broker or the agent fails is lost)",
                opts.subject
            ));
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| LiveError::io("start the NATS runtime", e))?;
        let s = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("chids-nats".into())
            .spawn(move || rt.block_on(deliver(s, reader, opts)))
            .map_err(|e| LiveError::io("start the NATS thread", e))?;
        Ok(NatsSink {
            shared,
            thread: Some(thread),
        })
    }
}

impl AlertSink for NatsSink {
    fn kind(&self) -> &'static str {
        "nats"
    }

    /// The alert is in the outbox already (committed by the agent): this
    /// only wakes the delivery thread.
    fn send(&mut self, _alert: &[u8]) -> Result<(), LiveError> {
        self.shared.wake.notify_one();
        Ok(())
    }

    fn stats(&self) -> SinkStats {
        let c = &self.shared.counters;
        SinkStats {
            delivered: c.delivered.load(Ordering::Relaxed),
            pending: c.pending.load(Ordering::Relaxed),
            pending_bytes: c.pending_bytes.load(Ordering::Relaxed),
            lost: c.lost_total(),
            connected: self.shared.connected.load(Ordering::Relaxed),
        }
    }

    fn close(&mut self, grace: Duration) {
        *self.shared.deadline.lock().unwrap() = Some(Instant::now() + grace);
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.wake.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    fn take_log(&mut self) -> Vec<String> {
        std::mem::take(&mut *self.shared.log.lock().unwrap())
    }
}

impl Drop for NatsSink {
    fn drop(&mut self) {
        self.close(Duration::ZERO);
    }
}

const STEP_TIMEOUT: Duration = Duration::from_secs(3);
/// Records published per round (then acknowledged together).
const BATCH: usize = 64;
/// How often a missing stream is looked for again, and warned about.
const NO_STREAM_RETRY: Duration = Duration::from_secs(2);
const NO_STREAM_WARN_EVERY: Duration = Duration::from_secs(60);

/// What one round of publishing came to.
struct Round {
    delivered: Vec<i64>,
    no_stream: bool,
    failed: Option<String>,
}

async fn deliver(s: Arc<Shared>, mut reader: OutboxReader, opts: NatsOptions) {
    let url = if opts.url.contains("://") {
        opts.url.clone()
    } else {
        format!("nats://{}", opts.url)
    };
    let client = match async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connection_timeout(Duration::from_secs(2))
        .reconnect_delay_callback(|n| Duration::from_millis((100 * n as u64).min(1000)))
        .connect(url.as_str())
        .await
    {
        Ok(c) => c,
        Err(e) => {
            s.log(format!("nats: {url}: {e}; alerts stay in the outbox"));
            return;
        }
    };
    let js = jetstream::new(client.clone());
    let mut was_connected = false;
    let mut no_stream_since: Option<Instant> = None;
    let mut last_warned = Instant::now();
    loop {
        let stopping = s.stop.load(Ordering::SeqCst);
        if stopping {
            let past = s
                .deadline
                .lock()
                .unwrap()
                .is_none_or(|d| Instant::now() >= d);
            if past || s.pending() == 0 {
                break;
            }
        }
        let up = client.connection_state() == State::Connected;
        s.connected.store(up, Ordering::Relaxed);
        if up != was_connected {
            s.log(if up {
                format!("nats: connected to {url}")
            } else {
                format!("nats: {url} unreachable; alerts wait in the outbox")
            });
            was_connected = up;
        }
        if !up {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        let batch = match reader.next_batch(BATCH) {
            Ok(b) => b,
            Err(e) => {
                s.log(format!("nats: {e}"));
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if batch.is_empty() {
            if stopping {
                break;
            }
            let _ = tokio::time::timeout(Duration::from_secs(1), s.wake.notified()).await;
            // Acknowledged records whose mark failed (a full disk) are
            // marked once there is room again.
            let _ = reader.retry_marks();
            let _ = reader.refresh_pending();
            continue;
        }
        let round = if opts.jetstream {
            publish_acked(&js, &opts.subject, &batch).await
        } else {
            publish_plain(&client, &opts.subject, &batch, &mut reader).await
        };
        if !round.delivered.is_empty() && opts.jetstream {
            if let Err(e) = reader.mark_delivered(&round.delivered) {
                s.log(format!("nats: delivered, not yet marked (retried): {e}"));
            }
        }
        if round.no_stream {
            let first = no_stream_since.is_none();
            no_stream_since.get_or_insert_with(Instant::now);
            if first || last_warned.elapsed() >= NO_STREAM_WARN_EVERY {
                last_warned = Instant::now();
                s.log(format!(
                    "nats: warning: no JetStream stream covers {}: {} alert(s) stay pending in the outbox (looked for again every {}s)",
                    opts.subject,
                    s.pending(),
                    NO_STREAM_RETRY.as_secs()
                ));
            }
            tokio::time::sleep(NO_STREAM_RETRY).await;
            continue;
        }
        if let Some(since) = no_stream_since.take() {
            s.log(format!(
                "nats: a JetStream stream covers {} now (after {:.0}s); delivering",
                opts.subject,
                since.elapsed().as_secs_f64()
            ));
        }
        if let Some(e) = round.failed {
            s.log(format!(
                "nats: publish failed (retried with the same ids): {e}"
            ));
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let _ = reader.refresh_pending();
    s.connected.store(false, Ordering::Relaxed);
}

/// Publishes the batch to JetStream and waits for the acknowledgements:
/// only acknowledged records count as delivered.
async fn publish_acked(js: &jetstream::Context, subject: &str, batch: &[Pending]) -> Round {
    let mut round = Round {
        delivered: Vec::new(),
        no_stream: false,
        failed: None,
    };
    let mut acks = Vec::with_capacity(batch.len());
    for p in batch {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", p.alert_id.as_str());
        let sent = tokio::time::timeout(
            STEP_TIMEOUT,
            js.publish_with_headers(subject.to_string(), headers, p.body.clone().into()),
        )
        .await;
        match sent {
            Ok(Ok(ack)) => acks.push((p.seq, ack)),
            Ok(Err(e)) => {
                round.failed = Some(e.to_string());
                break;
            }
            Err(_) => {
                round.failed = Some("publish timed out".into());
                break;
            }
        }
    }
    for (seq, ack) in acks {
        match tokio::time::timeout(STEP_TIMEOUT, ack).await {
            Ok(Ok(_)) => round.delivered.push(seq),
            Ok(Err(e)) if e.kind() == PublishErrorKind::StreamNotFound => round.no_stream = true,
            Ok(Err(e)) => round.failed = Some(e.to_string()),
            Err(_) => round.failed = Some("no acknowledgement in time".into()),
        }
    }
    round
}

/// `--no-jetstream`: each record is marked delivered, then published once.
async fn publish_plain(
    client: &async_nats::Client,
    subject: &str,
    batch: &[Pending],
    reader: &mut OutboxReader,
) -> Round {
    let mut round = Round {
        delivered: Vec::new(),
        no_stream: false,
        failed: None,
    };
    let seqs: Vec<i64> = batch.iter().map(|p| p.seq).collect();
    if let Err(e) = reader.mark_before_send(&seqs) {
        // Not marked, so not sent: at most once.
        round.failed = Some(e.to_string());
        return round;
    }
    for p in batch {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", p.alert_id.as_str());
        let sent = client
            .publish_with_headers(subject.to_string(), headers, p.body.clone().into())
            .await;
        if let Err(e) = sent {
            round.failed = Some(format!("{e} (at most once: not retried)"));
        }
    }
    if let Err(e) = tokio::time::timeout(STEP_TIMEOUT, client.flush()).await {
        round.failed = Some(e.to_string());
    }
    round.delivered = seqs;
    round
}
