//! The console's JSON and its guard against a real nats-server (no root,
//! no browser): started before the stream exists, it waits for it, then
//! holds every alert the stream gets, skips what is not an alert, filters,
//! ranks; bound off loopback it wants the token on every request. With an
//! accept capability, POST /api/alerts/N/accept wants the token, a
//! confirmation, a name and an anomaly alert the console holds.
//!
//! Needs nats-server (scripts/install-test-deps.sh); run with
//! `--include-ignored`, when its absence fails the test.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const TOKEN: &str = "0123456789abcdef-test-token";

struct NatsServer(Child);

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn nats_server(dir: &std::path::Path, port: u16) -> NatsServer {
    let child = Command::new("nats-server")
        .args(["-js", "-sd"])
        .arg(dir)
        .args(["-a", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("nats-server not runnable ({e}): scripts/install-test-deps.sh"));
    let s = NatsServer(child);
    wait_for("nats-server", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    });
    s
}

/// Creates the stream over `subject` and publishes `messages` to it.
fn publish(url: &str, subject: &str, messages: &[Vec<u8>]) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let js = async_nats::jetstream::new(async_nats::connect(url).await.unwrap());
        js.get_or_create_stream(async_nats::jetstream::stream::Config {
            name: "CHIDS_ALERTS".into(),
            subjects: vec![subject.to_string()],
            ..Default::default()
        })
        .await
        .unwrap();
        for m in messages {
            js.publish(subject.to_string(), m.clone().into())
                .await
                .unwrap()
                .await
                .unwrap();
        }
    });
}

/// One HTTP/1.1 exchange: status code, lower-cased head, body.
fn http(addr: SocketAddr, req: &str) -> (u16, String, String) {
    let mut c = std::net::TcpStream::connect(("127.0.0.1", addr.port())).unwrap();
    c.write_all(req.as_bytes()).unwrap();
    let mut s = String::new();
    c.read_to_string(&mut s).unwrap();
    let (head, body) = s.split_once("\r\n\r\n").unwrap_or((&s, ""));
    let code = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (code, head.to_ascii_lowercase(), body.to_string())
}

fn get(addr: SocketAddr, path: &str, auth: &str) -> (u16, String, String) {
    http(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: console.example\r\n{auth}Connection: close\r\n\r\n"),
    )
}

fn api(addr: SocketAddr, path: &str) -> Value {
    let (code, head, body) = get(addr, path, &format!("Authorization: Bearer {TOKEN}\r\n"));
    assert_eq!(code, 200, "{path}: {head}{body}");
    assert!(head.contains("content-type: application/json"), "{head}");
    serde_json::from_str(&body).unwrap()
}

fn start_console(
    url: String,
    accept: Option<std::sync::Arc<dyn chids_console::AcceptHook>>,
) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    let opts = chids_console::Options {
        nats_url: url,
        stream: "CHIDS_ALERTS".into(),
        listen: "0.0.0.0:0".parse().unwrap(),
        token: Some(TOKEN.into()),
        state_dirs: vec![],
        models_bucket: None,
        max_alerts: 100,
        max_bytes: 1 << 20,
        accept,
    };
    // Serves until the test process ends.
    std::thread::spawn(move || chids_console::run(opts, |a| tx.send(a).unwrap()));
    rx.recv_timeout(Duration::from_secs(10))
        .expect("console listening")
}

fn alert(name: &str, node: &str, arg: &str) -> Vec<u8> {
    json!({"alert_id": format!("{node}-{name}"), "node": node, "container_name": name,
           "container_id": name, "workload": "w", "time_ns": 1_000_000_000u64, "error": 2.0, "threshold": 1.0,
           "unseen_syscalls": [], "rising": [{"what": "read", "count": 9, "training_max": 3}],
           "unseen_args": [{"arg": arg, "syscall": "openat", "process": "cat"}]})
    .to_string()
    .into_bytes()
}

#[test]
#[ignore = "needs nats-server"]
fn console_reads_the_stream_filters_and_wants_its_token() {
    refuses_an_open_address_without_a_token();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _nats = nats_server(dir.path(), port);
    let url = format!("nats://127.0.0.1:{port}");
    // The console first, the stream later: it waits and says so.
    let addr = start_console(url.clone(), None);
    wait_for("the missing stream reported", || {
        let v = api(addr, "/api/alerts");
        (v["source"]["connected"] == false
            && v["source"]["note"].as_str()?.contains("CHIDS_ALERTS"))
        .then_some(())
    });
    let seq = reads_live_alerts_and_filters(addr, &url);
    an_alerts_page_ranks_its_reasons(addr, seq);
    the_guard_wants_the_token(addr);
    // No accept route without an accept capability.
    let (code, _, _) = http(addr, &format!("POST /api/alerts/{seq}/accept HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"));
    assert!(code == 404 || code == 405, "{code}");
}

fn refuses_an_open_address_without_a_token() {
    let open = chids_console::Options {
        nats_url: String::new(),
        stream: String::new(),
        listen: "0.0.0.0:0".parse().unwrap(),
        token: None,
        state_dirs: vec![],
        models_bucket: None,
        max_alerts: 1,
        max_bytes: 1,
        accept: None,
    };
    let refused = chids_console::run(open, |_| panic!("must not listen")).unwrap_err();
    assert!(refused.contains("--ui-token-file"), "{refused}");
}

/// Alerts published before and while the console runs are held (a line
/// that is not JSON refused), newest first, and filtered; the sequence
/// number of web-1's alert.
fn reads_live_alerts_and_filters(addr: SocketAddr, url: &str) -> u64 {
    let subject = "chids.alerts";
    publish(
        url,
        subject,
        &[
            alert("web-1", "n1", "/etc/shadow"),
            b"not json".to_vec(),
            alert("db-1", "n2", "/tmp/<script>x</script>"),
        ],
    );
    let v = wait_for("both alerts held", || {
        let v = api(addr, "/api/alerts");
        (v["alerts"].as_array()?.len() == 2).then_some(v)
    });
    assert_eq!(v["refused"], 1, "{v}");
    assert_eq!(v["source"]["connected"], true, "{v}");
    // Newest first; the new one arrives while the console runs.
    assert_eq!(v["alerts"][0]["container"], "db-1");
    publish(url, subject, &[alert("web-2", "n1", "/root/.ssh/id_rsa")]);
    let v = wait_for("a live alert", || {
        let v = api(addr, "/api/alerts?node=n1");
        (v["alerts"].as_array()?.len() == 2).then_some(v)
    });
    let names: Vec<&str> = v["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["container"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web-2", "web-1"]);
    let count = |query: &str| api(addr, query)["alerts"].as_array().unwrap().len();
    assert_eq!(count("/api/alerts?container=db-1"), 1);
    assert_eq!(count("/api/alerts?kind=exec"), 0);
    v["alerts"][1]["seq"].as_u64().unwrap()
}

fn an_alerts_page_ranks_its_reasons(addr: SocketAddr, seq: u64) {
    let one = api(addr, &format!("/api/alerts/{seq}"));
    let kinds: Vec<&str> = one["alert"]["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["path", "rising"]);
    assert_eq!(one["raw"]["alert_id"], "n1-web-1");
    assert_eq!(one["can_accept"], false);
}

/// The guard: no token, a wrong one, the login form, the cookie.
fn the_guard_wants_the_token(addr: SocketAddr) {
    assert_eq!(get(addr, "/api/alerts", "").0, 401);
    assert_eq!(
        get(
            addr,
            "/api/alerts",
            "Authorization: Bearer wrong-token-0123456\r\n"
        )
        .0,
        401
    );
    let (code, head, _) = get(addr, "/", "");
    assert_eq!(code, 303, "{head}");
    assert!(head.contains("location: /login"), "{head}");
    assert_eq!(get(addr, "/login", "").0, 200);
    let form = |t: &str| {
        let body = format!("token={t}");
        http(addr, &format!("POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()))
    };
    assert_eq!(form("nope").0, 401);
    let (code, head, _) = form(TOKEN);
    assert_eq!(code, 303, "{head}");
    assert!(
        head.contains(&format!(
            "set-cookie: chids_ui_token={TOKEN}; httponly; samesite=strict"
        )),
        "{head}"
    );
    let (code, head, body) = get(
        addr,
        "/app.js",
        &format!("Cookie: chids_ui_token={TOKEN}\r\n"),
    );
    assert_eq!(code, 200);
    assert!(head.contains("content-type: text/javascript"), "{head}");
    assert!(
        !body.contains("innerHTML"),
        "the page script must not parse markup"
    );
}

/// An accept capability that records what it was asked (the real ones,
/// into the fleet or a models folder, are driven by tests/console_ui.rs).
#[derive(Default)]
struct Recorder(std::sync::Mutex<Vec<(Value, String)>>);

impl chids_console::AcceptHook for Recorder {
    fn target(&self) -> String {
        "the recorder".into()
    }
    fn accept(&self, alert: &Value, who: &str) -> Result<chids_console::Accepted, String> {
        self.0
            .lock()
            .unwrap()
            .push((alert.clone(), who.to_string()));
        Ok(chids_console::Accepted {
            summary: "recorded".into(),
            model: "nowhere".into(),
            audit: Some(json!({"alert_id": alert["alert_id"], "accepted_by": who})),
            notes: vec![],
        })
    }
}

/// POSTs `body` to alert `seq`'s accept, with `headers` (each ending in CRLF).
fn post_accept(addr: SocketAddr, seq: u64, body: &str, headers: &str) -> (u16, Value) {
    let (code, head, text) = http(
        addr,
        &format!(
            "POST /api/alerts/{seq}/accept HTTP/1.1\r\nHost: console.example\r\n{headers}\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    let v = serde_json::from_str(&text).unwrap_or_else(|_| json!({"text": text, "head": head}));
    (code, v)
}

#[test]
#[ignore = "needs nats-server"]
fn accept_wants_token_confirmation_name_and_a_held_anomaly() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _nats = nats_server(dir.path(), port);
    let url = format!("nats://127.0.0.1:{port}");
    let exec = json!({"kind": "exec", "alert_id": "n1-exec-1", "workload": "w", "container_name": "web-1"});
    publish(
        &url,
        "chids.alerts",
        &[
            alert("web-1", "n1", "/etc/shadow"),
            exec.to_string().into_bytes(),
        ],
    );
    let hook = std::sync::Arc::new(Recorder::default());
    let addr = start_console(url, Some(hook.clone()));
    let v = wait_for("both alerts held", || {
        let v = api(addr, "/api/alerts");
        (v["alerts"].as_array()?.len() == 2).then_some(v)
    });
    let seq_of = |kind: &str| {
        v["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["kind"] == kind)
            .unwrap()["seq"]
            .as_u64()
            .unwrap()
    };
    let (anomaly, exec_seq) = (seq_of("anomaly"), seq_of("exec"));
    let meta = api(addr, "/api/meta");
    assert_eq!(meta["can_accept"], true, "{meta}");
    assert_eq!(meta["accept_target"], "the recorder", "{meta}");
    assert_eq!(
        api(addr, &format!("/api/alerts/{anomaly}"))["can_accept"],
        true
    );

    let auth = format!("Authorization: Bearer {TOKEN}\r\n");
    let good = r#"{"who": " alice ", "confirmed": true}"#;
    // The token, as on every request.
    assert_eq!(post_accept(addr, anomaly, good, "").0, 401);
    let wrong = "Authorization: Bearer wrong-token-0123456\r\n";
    assert_eq!(post_accept(addr, anomaly, good, wrong).0, 401);
    // A confirmation and a name.
    for body in [
        "{}",
        r#"{"who": "alice"}"#,
        r#"{"who": "alice", "confirmed": false}"#,
        r#"{"confirmed": true}"#,
        r#"{"who": "   ", "confirmed": true}"#,
        r#"{"who": "al\nice", "confirmed": true}"#,
    ] {
        let (code, v) = post_accept(addr, anomaly, body, &auth);
        assert_eq!(code, 400, "{body}: {v}");
        assert!(
            v["error"].as_str().unwrap().starts_with("not accepted"),
            "{v}"
        );
    }
    // An alert the console holds, and an anomaly.
    let (code, v) = post_accept(addr, 999_999, good, &auth);
    assert_eq!(code, 404, "{v}");
    assert!(v["error"].as_str().unwrap().contains("999999"), "{v}");
    let (code, v) = post_accept(addr, exec_seq, good, &auth);
    assert_eq!(code, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("exec"), "{v}");
    // A page of another site posting through someone's browser.
    let forged = format!("{auth}Origin: http://evil.example\r\n");
    assert_eq!(post_accept(addr, anomaly, good, &forged).0, 403);
    assert!(
        hook.0.lock().unwrap().is_empty(),
        "nothing refused reached the hook"
    );

    // Confirmed, named, with the token (the page's way: cookie, same origin).
    let page = format!("Cookie: chids_ui_token={TOKEN}\r\nOrigin: http://console.example\r\n");
    let (code, v) = post_accept(addr, anomaly, good, &page);
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["ok"]["summary"], "recorded", "{v}");
    assert_eq!(v["ok"]["audit"]["accepted_by"], "alice", "{v}");
    let calls = hook.0.lock().unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].0["alert_id"], "n1-web-1", "the alert as sent");
    assert_eq!(calls[0].1, "alice", "the name, trimmed");
}
