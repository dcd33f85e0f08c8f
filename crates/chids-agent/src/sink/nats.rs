//! Alerts to a NATS subject, through an on-disk spool.
//!
//! Every alert is first appended to the [`Spool`] (durable), then a
//! delivery thread publishes the spool in order and confirms each record
//! only once the broker has it: with JetStream (when a stream covers the
//! subject) that is the stream's acknowledgement; without, a flushed
//! publish. While the broker is away the spool grows (bounded, oldest
//! dropped and counted when full) and drains once it is back. Each message
//! carries a `Nats-Msg-Id` derived from its bytes, so JetStream discards
//! the duplicate when a publish is retried after a lost acknowledgement.
//!
//! The client is async-nats on a current-thread tokio runtime owned by the
//! delivery thread; the rest of chids stays synchronous.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use async_nats::connection::State;
use async_nats::jetstream;

use super::spool::Spool;
use super::{AlertSink, SinkStats};
use chids_live::LiveError;

/// Where and how to publish.
#[derive(Clone, Debug)]
pub struct NatsOptions {
    /// `nats://HOST:PORT` (or `HOST:PORT`).
    pub url: String,
    pub subject: String,
    /// The spool folder (created if needed).
    pub spool_dir: PathBuf,
    /// Largest spool size in bytes.
    pub spool_max: u64,
}

struct Shared {
    spool: Mutex<Spool>,
    wake: tokio::sync::Notify,
    stop: AtomicBool,
    /// After a stop: deliver until then, at the latest.
    deadline: Mutex<Option<Instant>>,
    connected: AtomicBool,
    delivered: AtomicU64,
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
}

pub struct NatsSink {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl NatsSink {
    /// Opens the spool and starts delivering (the broker may be down now;
    /// alerts wait in the spool until it is up).
    pub fn start(opts: NatsOptions) -> Result<NatsSink, LiveError> {
        if opts.subject.is_empty() || opts.subject.contains(char::is_whitespace) {
            return Err(LiveError::Other(format!(
                "--subject {:?}: not a NATS subject",
                opts.subject
            )));
        }
        let spool = Spool::open(&opts.spool_dir, opts.spool_max)?;
        let shared = Arc::new(Shared {
            spool: Mutex::new(spool),
            wake: tokio::sync::Notify::new(),
            stop: AtomicBool::new(false),
            deadline: Mutex::new(None),
            connected: AtomicBool::new(false),
            delivered: AtomicU64::new(0),
            log: Mutex::new(Vec::new()),
        });
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| LiveError::io("start the NATS runtime", e))?;
        let s = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("chids-nats".into())
            .spawn(move || rt.block_on(deliver(s, opts.url, opts.subject)))
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

    fn send(&mut self, alert: &[u8]) -> Result<(), LiveError> {
        let dropped = self.shared.spool.lock().unwrap().append(alert)?;
        if dropped > 0 {
            self.shared.log(format!(
                "nats: alert spool full: dropped the {dropped} oldest undelivered alert(s)"
            ));
        }
        self.shared.wake.notify_one();
        Ok(())
    }

    fn stats(&self) -> SinkStats {
        let spool = self.shared.spool.lock().unwrap();
        SinkStats {
            delivered: self.shared.delivered.load(Ordering::Relaxed),
            spooled_bytes: spool.bytes(),
            spooled: spool.len(),
            lost: spool.lost(),
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

/// A stable id for a message: FNV-1a of its bytes (alerts carry their own
/// id and times, so equal bytes mean the same alert).
fn msg_id(record: &[u8]) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for &b in record {
        h = (h ^ b as u64).wrapping_mul(0x100000001b3);
    }
    format!("chids-{h:016x}")
}

/// How a connection publishes, decided once per connection.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Unknown,
    JetStream,
    Plain,
}

const STEP_TIMEOUT: Duration = Duration::from_secs(3);

async fn deliver(s: Arc<Shared>, url: String, subject: String) {
    let url = if url.contains("://") {
        url
    } else {
        format!("nats://{url}")
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
            s.log(format!("nats: {url}: {e}; alerts stay in the spool"));
            return;
        }
    };
    let js = jetstream::new(client.clone());
    let mut mode = Mode::Unknown;
    let mut was_connected = false;
    loop {
        let stopping = s.stop.load(Ordering::SeqCst);
        if stopping {
            let past = s
                .deadline
                .lock()
                .unwrap()
                .is_none_or(|d| Instant::now() >= d);
            if past || s.spool.lock().unwrap().is_empty() {
                break;
            }
        }
        let up = client.connection_state() == State::Connected;
        s.connected.store(up, Ordering::Relaxed);
        if up != was_connected {
            s.log(if up {
                format!("nats: connected to {url}")
            } else {
                format!("nats: {url} unreachable; spooling alerts")
            });
            was_connected = up;
            mode = Mode::Unknown;
        }
        if !up {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        if mode == Mode::Unknown {
            mode = match tokio::time::timeout(STEP_TIMEOUT, js.stream_by_subject(subject.clone()))
                .await
            {
                Ok(Ok(stream)) => {
                    s.log(format!(
                        "nats: publishing to JetStream stream {stream} (acknowledged)"
                    ));
                    Mode::JetStream
                }
                Ok(Err(e))
                    if e.kind() == jetstream::context::GetStreamByNameErrorKind::NotFound =>
                {
                    s.log(format!(
                        "nats: no JetStream stream covers {subject}; plain publish"
                    ));
                    Mode::Plain
                }
                // JetStream disabled on the server: plain publish too.
                Ok(Err(e))
                    if matches!(
                        e.kind(),
                        jetstream::context::GetStreamByNameErrorKind::JetStream(_)
                    ) =>
                {
                    Mode::Plain
                }
                _ => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
        }
        let record = match s.spool.lock().unwrap().peek() {
            Ok(r) => r,
            Err(e) => {
                s.log(format!("nats: reading the spool: {e}"));
                None
            }
        };
        let Some(record) = record else {
            if stopping {
                break;
            }
            let _ = tokio::time::timeout(Duration::from_millis(200), s.wake.notified()).await;
            continue;
        };
        let ok = match mode {
            Mode::JetStream => {
                let mut headers = async_nats::HeaderMap::new();
                headers.insert("Nats-Msg-Id", msg_id(&record).as_str());
                let publish = async {
                    let ack = js
                        .publish_with_headers(subject.clone(), headers, record.into())
                        .await
                        .map_err(|e| e.to_string())?;
                    ack.await.map(|_| ()).map_err(|e| e.to_string())
                };
                matches!(
                    tokio::time::timeout(STEP_TIMEOUT, publish).await,
                    Ok(Ok(()))
                )
            }
            _ => {
                let publish = async {
                    client
                        .publish(subject.clone(), record.into())
                        .await
                        .map_err(|e| e.to_string())?;
                    client.flush().await.map_err(|e| e.to_string())
                };
                matches!(
                    tokio::time::timeout(STEP_TIMEOUT, publish).await,
                    Ok(Ok(()))
                )
            }
        };
        if ok {
            if let Err(e) = s.spool.lock().unwrap().ack() {
                s.log(format!("nats: updating the spool: {e}"));
            }
            s.delivered.fetch_add(1, Ordering::Relaxed);
        } else {
            // Retried (same message id) once the connection is back.
            mode = Mode::Unknown;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    s.connected.store(false, Ordering::Relaxed);
}
