//! The console's JSON and its guard against a real nats-server (no root,
//! no browser): started before the stream exists, it waits for it, then
//! holds every alert the stream gets, skips what is not an alert, filters,
//! ranks; bound off loopback it wants the token on every request.
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

fn start_console(url: String) -> SocketAddr {
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
        accept: None,
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

    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _nats = nats_server(dir.path(), port);
    let url = format!("nats://127.0.0.1:{port}");
    // The console first, the stream later: it waits and says so.
    let addr = start_console(url.clone());
    wait_for("the missing stream reported", || {
        let v = api(addr, "/api/alerts");
        (v["source"]["connected"] == false
            && v["source"]["note"].as_str()?.contains("CHIDS_ALERTS"))
        .then_some(())
    });
    let subject = "chids.alerts";
    publish(
        &url,
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
    publish(&url, subject, &[alert("web-2", "n1", "/root/.ssh/id_rsa")]);
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
    assert_eq!(
        api(addr, "/api/alerts?container=db-1")["alerts"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        api(addr, "/api/alerts?kind=exec")["alerts"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let seq = v["alerts"][1]["seq"].as_u64().unwrap();
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

    // The guard: no token, a wrong one, the login form, the cookie.
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
    // No accept route without an accept capability.
    let (code, _, _) = http(addr, &format!("POST /api/alerts/{seq}/accept HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"));
    assert!(code == 404 || code == 405, "{code}");
}
