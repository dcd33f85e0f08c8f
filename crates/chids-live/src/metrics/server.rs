//! The HTTP server of `--metrics` (`monitor` and the agent): hyper's
//! HTTP/1 server on a current-thread tokio runtime of its own thread.
//!
//! Each connection is its own task, so a slow client never holds up
//! another one's scrape; a client gets [`HEADER_TIMEOUT`] to send its
//! request head and [`CONNECTION_TIMEOUT`] in all, and at most
//! [`MAX_CLIENTS`] connections are served at once (the rest wait in the
//! listen backlog). Every path answers with the metrics.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{header, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, Semaphore};

use super::Exposition;
use crate::LiveError;

/// Time a client has to send its request head.
pub(crate) const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Time a connection may last in all (a client that reads slowly too).
pub(crate) const CONNECTION_TIMEOUT: Duration = Duration::from_secs(15);
/// Connections served at once.
pub(crate) const MAX_CLIENTS: usize = 32;

/// The running metrics server; stops (and joins its thread) on drop.
pub struct Server {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Serves `metrics` on `addr`.
pub fn serve<M: Exposition>(addr: SocketAddr, metrics: Arc<Mutex<M>>) -> Result<Server, LiveError> {
    let std_listener = std::net::TcpListener::bind(addr)
        .map_err(|e| LiveError::io(format!("--metrics {addr}"), e))?;
    let addr = std_listener
        .local_addr()
        .map_err(|e| LiveError::io("metrics address", e))?;
    std_listener
        .set_nonblocking(true)
        .map_err(|e| LiveError::io("metrics listener", e))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| LiveError::io("start the metrics runtime", e))?;
    let (stop_tx, stop_rx) = oneshot::channel();
    let thread = std::thread::Builder::new()
        .name("chids-metrics".into())
        .spawn(move || {
            rt.block_on(async move {
                match TcpListener::from_std(std_listener) {
                    Ok(listener) => {
                        tokio::select! {
                            _ = accept_loop(listener, metrics) => {}
                            _ = stop_rx => {}
                        }
                    }
                    Err(_) => drop(stop_rx),
                }
            })
        })
        .map_err(|e| LiveError::io("start metrics thread", e))?;
    Ok(Server {
        addr,
        stop: Some(stop_tx),
        thread: Some(thread),
    })
}

async fn accept_loop<M: Exposition>(listener: TcpListener, metrics: Arc<Mutex<M>>) {
    let permits = Arc::new(Semaphore::new(MAX_CLIENTS));
    loop {
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(_) => {
                // Out of descriptors and the like: pause, keep serving.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let metrics = Arc::clone(&metrics);
        tokio::spawn(async move {
            let service = service_fn(move |_req| {
                let body = metrics.lock().unwrap().render();
                async move {
                    Ok::<_, Infallible>(
                        Response::builder()
                            .header(header::CONTENT_TYPE, "text/plain; version=0.0.4")
                            .body(Full::new(Bytes::from(body)))
                            .expect("static response parts"),
                    )
                }
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(CONNECTION_TIMEOUT, conn).await;
            drop(permit);
        });
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use super::*;
    use crate::metrics::Metrics;

    fn scrape(addr: SocketAddr) -> String {
        let mut c = TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        c.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut s = String::new();
        c.read_to_string(&mut s).unwrap();
        s
    }

    #[test]
    fn a_slow_client_does_not_hold_up_another_scrape_and_is_cut_off() {
        let server = serve(
            "127.0.0.1:0".parse().unwrap(),
            Arc::new(Mutex::new(Metrics::new(0.5))),
        )
        .unwrap();
        let addr = server.addr;
        // One byte of its request every 1.5 s.
        let slow = std::thread::spawn(move || {
            let mut c = TcpStream::connect(addr).unwrap();
            c.set_read_timeout(Some(Duration::from_millis(1500)))
                .unwrap();
            let started = Instant::now();
            for b in b"GET /metrics HTTP/1.1\r\nHost: slow\r\n\r\n" {
                if c.write_all(&[*b]).is_err() {
                    break;
                }
                let mut buf = [0u8; 256];
                match c.read(&mut buf) {
                    // Closed by the server (or an error answer): cut off.
                    Ok(_) => return Some(started.elapsed()),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => return Some(started.elapsed()),
                }
            }
            None
        });
        std::thread::sleep(Duration::from_millis(500));
        for _ in 0..3 {
            let answer = scrape(addr);
            assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
            assert!(answer.contains("chids_threshold 0.5\n"), "{answer}");
        }
        assert!(
            !slow.is_finished(),
            "the slow client was answered or cut off too early"
        );
        let cut = slow
            .join()
            .unwrap()
            .expect("the slow client was never cut off");
        assert!(cut < HEADER_TIMEOUT * 3, "cut off after {cut:?}");
    }
}
