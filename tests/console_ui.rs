//! `chids ui` in a real browser, against a real agent, nats-server and
//! podman containers: an attack's alert appears on the live timeline
//! without a reload, with its container and the path it read; a path that
//! carries `<script>` and an `<img onerror>` shows as text and runs
//! nothing; the filters narrow the timeline; the workloads view shows the
//! learnt images detecting; accepting from an alert's page (confirmation,
//! name) publishes the fleet's next version of the workload's model with
//! the alert in its audit list, a console without --allow-accept has no
//! button, and `--models DIR` accepts into the agent's folder. Debian's chromium is driven headless through
//! chromedriver (WebDriver, the `fantoccini` crate).
//!
//! With CHIDS_CONSOLE_SCREENSHOTS=DIR the pages are saved there as PNG
//! (that is how docs/console/*.png are made).
//!
//! Needs root, kernel BTF, podman + runc, nats-server, busybox-static,
//! chromium and chromium-driver (scripts/install-test-deps.sh); run with
//! `--include-ignored`, when a missing one fails the test, naming it.
#![cfg(all(feature = "live", feature = "console"))]

mod agent_support;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use agent_support::*;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

const LOOP_A: &str =
    "while true; do cat /etc/passwd > /dev/null; ls /bin > /dev/null; sleep 0.2; done";
const LOOP_B: &str = "while true; do echo tick > /tmp/t; cat /tmp/t > /dev/null; sleep 0.3; done";
/// Markup in a file name: if the page ever parsed alert text as HTML,
/// one of these would set `window.pwned`.
const XSS_DIR: &str = "/tmp/<script>window.pwned=true;<";
const XSS_PATH: &str = "/tmp/<script>window.pwned=true;</script>";
/// The agent escapes whitespace in names (`\x20`), so the image tag's
/// attributes are separated by `/` (as HTML allows); at the root, so that
/// the path keeps all its parts (paths of more than 3 slashes are cut).
const XSS_IMG_DIR: &str = "/<img/src=x";
const XSS_IMG: &str = "/<img/src=x/onerror=window.pwned=true>";

/// Every prerequisite, or a failure naming the first one missing.
fn require() {
    if let Some(why) = skip_reason() {
        panic!("cannot run the console test: {why}");
    }
    for tool in ["chromium", "chromedriver"] {
        let found = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .chain([PathBuf::from("/usr/bin")])
            .any(|d| d.join(tool).exists());
        assert!(
            found,
            "cannot run the console test: {tool} not installed (scripts/install-test-deps.sh: chromium chromium-driver)"
        );
    }
}

/// A child process killed on drop (the console, chromedriver).
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_listening(cmd: &mut Command, port: u16, what: &str) -> Proc {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {what}: {e}"));
    let p = Proc(child);
    wait_for(what, Duration::from_secs(30), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    });
    p
}

/// A plain HTTP/1.1 GET: the status line and headers, lower-cased, and the body.
fn http_get(port: u16, path: &str, host: &str) -> (String, String) {
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        c,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut s = String::new();
    c.read_to_string(&mut s).unwrap();
    let (head, body) = s.split_once("\r\n\r\n").unwrap_or((&s, ""));
    (head.to_ascii_lowercase(), body.to_string())
}

/// The console's answers carry the strict policy and the right types, and
/// a page elsewhere cannot reach it under another host name.
fn check_headers(port: u16) {
    let (head, _) = http_get(port, "/", "127.0.0.1");
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(
        head.contains("content-security-policy: default-src 'none'; script-src 'self'"),
        "{head}"
    );
    assert!(head.contains("x-content-type-options: nosniff"), "{head}");
    let (head, body) = http_get(port, "/api/alerts", "localhost");
    assert!(head.contains("content-type: application/json"), "{head}");
    assert!(serde_json::from_str::<Value>(&body).is_ok(), "{body}");
    let (head, _) = http_get(port, "/api/alerts", "attacker.example");
    assert!(head.starts_with("http/1.1 403"), "{head}");
}

async fn browser(driver_port: u16, profile: &Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                     "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync",
                     "--window-size=1400,1000",
                     format!("--user-data-dir={}", profile.display())],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{driver_port}"))
        .await
        .expect("a chromium session through chromedriver")
}

/// Polls the page until `f` gives a value (generous deadline), or fails
/// naming `what` with the page's text.
async fn until<T, F, Fut>(c: &Client, what: &str, deadline: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let end = Instant::now() + deadline;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if Instant::now() > end {
            let text = body_text(c).await;
            panic!("timed out after {deadline:?} waiting for {what}; the page says:\n{text}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn body_text(c: &Client) -> String {
    match c.find(Locator::Css("body")).await {
        Ok(b) => b.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// The timeline's rows: (stream sequence, container, whole row text).
async fn rows(c: &Client) -> Vec<(u64, String, String)> {
    let mut out = Vec::new();
    for r in c
        .find_all(Locator::Css("tr.alert-row"))
        .await
        .unwrap_or_default()
    {
        let seq = r
            .attr("data-seq")
            .await
            .ok()
            .flatten()
            .and_then(|s| s.parse().ok());
        let container = match r.find(Locator::Css("td.container")).await {
            Ok(td) => td.text().await.unwrap_or_default(),
            Err(_) => continue,
        };
        if let Some(seq) = seq {
            out.push((seq, container, r.text().await.unwrap_or_default()));
        }
    }
    out
}

async fn screenshot(c: &Client, name: &str) {
    if let Some(dir) = std::env::var_os("CHIDS_CONSOLE_SCREENSHOTS") {
        let png = c.screenshot().await.expect("screenshot");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(Path::new(&dir).join(name), png).unwrap();
    }
}

/// The timeline's anomaly rows (not exec-session or suppressed records).
async fn anomaly_rows(c: &Client) -> Vec<(u64, String, String)> {
    let mut out = Vec::new();
    for r in c
        .find_all(Locator::Css("tr.alert-row.kind-anomaly"))
        .await
        .unwrap_or_default()
    {
        let seq = r.attr("data-seq").await.ok().flatten();
        let container = match r.find(Locator::Css("td.container")).await {
            Ok(td) => td.text().await.unwrap_or_default(),
            Err(_) => continue,
        };
        if let Some(seq) = seq.and_then(|s| s.parse().ok()) {
            out.push((seq, container, r.text().await.unwrap_or_default()));
        }
    }
    out
}

/// Opens the alert pages of `container`'s rows until one lists `path`
/// among its reasons; gives that alert's sequence number.
async fn alert_naming(c: &Client, base: &str, container: &str, path: &str) -> Option<u64> {
    c.goto(&format!("{base}/#/?container={container}&kind=anomaly"))
        .await
        .ok()?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let seqs: Vec<u64> = rows(c).await.into_iter().map(|r| r.0).collect();
    for seq in seqs {
        c.goto(&format!("{base}/#/alert/{seq}")).await.ok()?;
        let reasons = until(c, "the alert page", Duration::from_secs(10), || async {
            c.find(Locator::Css("#reasons"))
                .await
                .ok()?
                .text()
                .await
                .ok()
        })
        .await;
        if reasons.contains(path) {
            return Some(seq);
        }
    }
    None
}

fn pwned(v: Value) -> bool {
    v != json!("undefined")
}

/// Learnt images and the console: what the browser part needs.
struct Scene {
    /// The second console, started without --allow-accept.
    base_no_accept: String,
    a1: Container,
    b1: Container,
    img_a: String,
    img_b: String,
    base: String,
    state: PathBuf,
}

/// The timeline updates by itself: the attack's alert appears, with the
/// container's name, within 5 s of the attack, and its page names the path.
async fn live_alert(c: &Client, s: &Scene) -> u64 {
    c.goto(&format!("{}/#/", s.base)).await.unwrap();
    until(c, "the timeline", Duration::from_secs(20), || async {
        c.find(Locator::Css("#alerts")).await.ok()
    })
    .await;
    let before = rows(c).await.iter().map(|r| r.0).max().unwrap_or(0);
    let out = s.a1.exec("cat /etc/shadow > /dev/null");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let attacked = Instant::now();
    until(
        c,
        "the attack's alert on the timeline",
        Duration::from_secs(60),
        || async {
            // The exec session's own record comes first; the attack's alert
            // is the anomaly the window with the `cat` raises.
            let r = anomaly_rows(c).await;
            r.iter()
                .any(|(seq, name, _)| *seq > before && name == &s.a1.name)
                .then_some(())
        },
    )
    .await;
    let shown = attacked.elapsed();
    eprintln!("console: the alert was on the page {shown:?} after the attack");
    assert!(
        shown <= Duration::from_secs(5),
        "alert shown only after {shown:?}"
    );
    // Its page names the path (a later window of the session may alarm
    // too: look until one does).
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seq = None;
    while seq.is_none() && Instant::now() < deadline {
        seq = alert_naming(c, &s.base, &s.a1.name, "/etc/shadow").await;
    }
    assert!(
        seq.is_some(),
        "no alert page of {} names /etc/shadow",
        s.a1.name
    );
    screenshot(c, "alert.png").await;
    assert!(
        body_text(c).await.contains(&s.img_a),
        "the alert names its image"
    );
    seq.unwrap()
}

/// Markup in a path is shown as text and runs nothing.
async fn markup_is_text(c: &Client, s: &Scene) {
    let script = format!(
        "mkdir -p '{XSS_DIR}' '{XSS_IMG_DIR}'; echo x > '{XSS_PATH}'; echo x > '{XSS_IMG}'; cat '{XSS_PATH}' '{XSS_IMG}' > /dev/null"
    );
    let out = s.a1.exec(&script);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seq = until(
        c,
        "an alert naming the <script> path",
        Duration::from_secs(60),
        || alert_naming(c, &s.base, &s.a1.name, XSS_PATH),
    )
    .await;
    c.goto(&format!("{}/#/alert/{seq}", s.base)).await.unwrap();
    let reasons = until(
        c,
        "the alert's reasons",
        Duration::from_secs(10),
        || async {
            c.find(Locator::Css("#reasons"))
                .await
                .ok()?
                .text()
                .await
                .ok()
        },
    )
    .await;
    assert!(reasons.contains(XSS_PATH), "{reasons}");
    assert!(reasons.contains(XSS_IMG), "{reasons}");
    // The picture for the docs shows the markup rows, not the top.
    c.execute(
        "const td = [...document.querySelectorAll('td.what')].find((t) => t.textContent.includes('<script>')); \
         if (td) td.scrollIntoView({block: 'center'}); return !!td",
        vec![],
    )
    .await
    .unwrap();
    screenshot(c, "alert-markup.png").await;
    // Neither the alert page nor the timeline (which shows the same text)
    // created an element from it or ran it.
    for page in [
        format!("{}/#/alert/{seq}", s.base),
        format!("{}/#/", s.base),
    ] {
        c.goto(&page).await.unwrap();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let ran = c
            .execute("return typeof window.pwned", vec![])
            .await
            .unwrap();
        assert!(!pwned(ran), "alert text ran as script on {page}");
        let planted = c
            .execute(
                "return document.querySelectorAll('main script, main img').length",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(planted, json!(0), "alert text became elements on {page}");
    }
}

/// Chooses `value` in the filter menu `menu`. The timeline redraws its
/// filter bar when new alerts arrive, so a menu found a moment ago may be
/// gone: found again until the choice is made.
async fn choose(c: &Client, menu: &str, value: &str) {
    until(
        c,
        &format!("{menu} set to {value:?}"),
        Duration::from_secs(20),
        || async {
            let select = c.find(Locator::Css(menu)).await.ok()?;
            select.select_by_value(value).await.ok()
        },
    )
    .await;
}

/// The filters narrow the timeline, by container, by workload and by kind.
async fn filters(c: &Client, s: &Scene) {
    let out = s.b1.exec("cat /etc/shadow > /dev/null");
    assert!(out.status.success());
    c.goto(&format!("{}/#/", s.base)).await.unwrap();
    until(
        c,
        "alerts of both containers",
        Duration::from_secs(60),
        || async {
            let r = rows(c).await;
            let has = |n: &str| r.iter().any(|(_, name, _)| name == n);
            (has(&s.a1.name) && has(&s.b1.name)).then_some(())
        },
    )
    .await;
    screenshot(c, "timeline.png").await;
    for (menu, value, want) in [
        ("#f-container", s.b1.name.as_str(), s.b1.name.as_str()),
        ("#f-container", "", ""),
        ("#f-workload", s.img_a.as_str(), s.a1.name.as_str()),
    ] {
        choose(c, menu, value).await;
        if want.is_empty() {
            continue;
        }
        until(
            c,
            &format!("{menu} = {value}"),
            Duration::from_secs(20),
            || async {
                let r = rows(c).await;
                (!r.is_empty() && r.iter().all(|(_, name, _)| name == want)).then_some(())
            },
        )
        .await;
    }
    // The workload filter also lands in the address, so a view can be shared.
    let url = c.current_url().await.unwrap();
    assert!(url.fragment().unwrap_or("").contains("workload="), "{url}");
    choose(c, "#f-kind", "anomaly").await;
    until(c, "kind = anomaly", Duration::from_secs(20), || async {
        let r = rows(c).await;
        (!r.is_empty() && r.iter().all(|(_, _, text)| text.contains("anomaly"))).then_some(())
    })
    .await;
    // A kind no alert has: nothing shown.
    c.goto(&format!("{}/#/?kind=suppressed", s.base))
        .await
        .unwrap();
    until(
        c,
        "no suppressed alerts",
        Duration::from_secs(20),
        || async {
            (c.find(Locator::Css("#counts"))
                .await
                .ok()?
                .text()
                .await
                .ok()?
                .starts_with("0 alert"))
            .then_some(())
        },
    )
    .await;
}

async fn text_of(c: &Client, css: &str) -> Option<String> {
    c.find(Locator::Css(css)).await.ok()?.text().await.ok()
}

/// Accepting from the alert page: the button opens a confirmation naming
/// the workload, the reasons and where they go, wanting a name; confirmed,
/// the page shows the new version and the model's audit entry. Gives the
/// alert's id. The console without --allow-accept shows no button.
async fn accept_in_page(c: &Client, s: &Scene, seq: u64) -> String {
    c.goto(&format!("{}/#/alert/{seq}", s.base_no_accept))
        .await
        .unwrap();
    until(c, "the alert page", Duration::from_secs(20), || {
        text_of(c, "#reasons")
    })
    .await;
    assert!(
        c.find(Locator::Css("#accept")).await.is_err(),
        "an accept button where accepting is not enabled"
    );

    c.goto(&format!("{}/#/alert/{seq}", s.base)).await.unwrap();
    let button = until(c, "the accept button", Duration::from_secs(20), || async {
        c.find(Locator::Css("#accept")).await.ok()
    })
    .await;
    let alert_id = text_of(c, "dd.fact-id").await.unwrap();
    let rising = c
        .find_all(Locator::Css("#reasons tr.reason-rising"))
        .await
        .unwrap()
        .len();
    button.click().await.unwrap();
    let dialog = until(c, "the confirmation", Duration::from_secs(10), || {
        text_of(c, "#accept-dialog[open]")
    })
    .await;
    for want in [s.img_a.as_str(), "/etc/shadow", alert_id.as_str(), "fleet"] {
        assert!(dialog.contains(want), "the dialog names {want}: {dialog}");
    }
    // A frequency-driven alert says what accepting it allows.
    assert_eq!(
        c.find(Locator::Css("#accept-rising")).await.is_ok(),
        rising > 0,
        "the frequency note is shown exactly when the alert has rising reasons ({rising}): {dialog}"
    );
    // No name, no accept: the dialog stays and nothing is posted (a
    // negative: given half a second to go wrong).
    c.find(Locator::Css("#accept-confirm"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        c.find(Locator::Css("#accept-dialog[open]")).await.is_ok()
            && c.find(Locator::Css("#accept-result")).await.is_err(),
        "accepted without a name"
    );
    // Cancel closes it; the button opens it again.
    c.find(Locator::Css("#accept-cancel"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(c, "the dialog closed", Duration::from_secs(10), || async {
        c.find(Locator::Css("#accept-dialog"))
            .await
            .is_err()
            .then_some(())
    })
    .await;
    c.find(Locator::Css("#accept"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(c, "the confirmation again", Duration::from_secs(10), || {
        text_of(c, "#accept-dialog[open]")
    })
    .await;
    c.find(Locator::Css("#accept-who"))
        .await
        .unwrap()
        .send_keys("alice-e2e")
        .await
        .unwrap();
    screenshot(c, "accept.png").await;
    c.find(Locator::Css("#accept-confirm"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let result = until(c, "the accept's result", Duration::from_secs(60), || {
        text_of(c, "#accept-result")
    })
    .await;
    assert!(result.starts_with("Accepted"), "{result}");
    assert!(result.contains("published as version"), "{result}");
    let audit = text_of(c, "#accept-audit").await.unwrap_or_default();
    assert!(
        audit.contains(&alert_id) && audit.contains("alice-e2e"),
        "{audit}"
    );
    screenshot(c, "accept-result.png").await;
    alert_id
}

/// The fleet's model of `workload`: its version and bundle.
fn fleet_model(url: &str, workload: &str) -> Option<(u64, chids_detect::model::Bundle)> {
    use chids_agent::fleet::{FleetOptions, FleetStore};
    let store = FleetStore::connect(&FleetOptions {
        url: url.to_string(),
        models_bucket: "chids-models".into(),
        bundles_bucket: "chids-bundles".into(),
        learning_bucket: None,
        node: "console-test".into(),
    })
    .unwrap();
    store.fetch(workload).unwrap().map(|(v, b)| (v.version, b))
}

/// The broker holds a model of `workload` (the agent's own, published
/// here unless an agent did): its version before any accept.
fn fleet_has_model(url: &str, workload: &str, models: &Path) -> u64 {
    if let Some((v, _)) = fleet_model(url, workload) {
        return v;
    }
    let store = chids_agent::workloads::ModelStore::open(models).unwrap();
    let (bundle, _) = store
        .load(workload)
        .unwrap()
        .unwrap_or_else(|| panic!("the agent saved no model of {workload}"));
    chids_agent::fleet::FleetStore::connect(&chids_agent::fleet::FleetOptions {
        url: url.to_string(),
        models_bucket: "chids-models".into(),
        bundles_bucket: "chids-bundles".into(),
        learning_bucket: None,
        node: "console-test".into(),
    })
    .unwrap()
    .publish(workload, &bundle, "trained")
    .unwrap()
    .version
}

/// The accepted alert's audit entry, by whom.
fn audit_names(bundle: &chids_detect::model::Bundle, alert_id: &str) -> Option<String> {
    bundle
        .accepted
        .iter()
        .find(|a| a.alert_id == alert_id)
        .map(|a| a.accepted_by.clone())
}

/// `chids ui --allow-accept --models DIR` accepts into the agent's folder.
fn accept_into_folder(url: &str, models: &Path, workload: &str, seq: u64, alert_id: &str) {
    let port = free_port();
    let _console = spawn_listening(
        Command::new(env!("CARGO_BIN_EXE_chids"))
            .args(["ui", "--nats", url, "--allow-accept", "--models"])
            .arg(models)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}")),
        port,
        "chids ui --models",
    );
    wait_for("the alert held", Duration::from_secs(30), || {
        let (head, _) = http_get(port, &format!("/api/alerts/{seq}"), "127.0.0.1");
        head.starts_with("http/1.1 200").then_some(())
    });
    let body = r#"{"who": "bob-e2e", "confirmed": true}"#;
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        c,
        "POST /api/alerts/{seq}/accept HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    c.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let store = chids_agent::workloads::ModelStore::open(models).unwrap();
    let (bundle, folder) = store.load(workload).unwrap().unwrap();
    assert!(answer.contains(&folder.display().to_string()), "{answer}");
    assert_eq!(
        audit_names(&bundle, alert_id).as_deref(),
        Some("bob-e2e"),
        "the local bundle's audit list"
    );
}

/// The workloads view shows both learnt images detecting.
async fn workloads(c: &Client, s: &Scene) {
    c.goto(&format!("{}/#/workloads", s.base)).await.unwrap();
    let state = s.state.display().to_string();
    until(
        c,
        "both images detecting",
        Duration::from_secs(20),
        || async {
            let mut found = 0;
            for r in c.find_all(Locator::Css("tr.workload-row")).await.ok()? {
                let t = r.text().await.ok()?;
                if (t.contains(&s.img_a) || t.contains(&s.img_b))
                    && t.contains("detecting")
                    && t.contains(&state)
                {
                    found += 1;
                }
            }
            (found == 2).then_some(())
        },
    )
    .await;
    screenshot(c, "workloads.png").await;
}

#[test]
#[ignore = "needs root, podman, nats-server, chromium, chromedriver"]
fn console_shows_attacks_live_as_text_and_filters() {
    require();
    let p = prefix();
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let img_a = Image::busybox(&format!("localhost/{p}-ui-a:1"), &[]);
    let img_b = Image::busybox(&format!("localhost/{p}-ui-b:1"), &[]);
    let nats = Nats::start(&tmp.path().join("nats"), free_port());
    let subject = format!("{p}.alerts");
    nats.create_stream("CHIDS_ALERTS", &subject);
    let url = nats.url();
    let agent_args = [
        "--learn-for",
        "20s",
        "--theta",
        "1.5",
        "--nats",
        &url,
        "--subject",
        &subject,
        "--epochs",
        "40",
    ];
    let agent = Agent::start(&state, &agent_args);
    wait_for("agent status", Duration::from_secs(30), || agent.status());
    let a1 = Container::run(&format!("{p}-ui-a1"), &img_a.name, LOOP_A);
    let b1 = Container::run(&format!("{p}-ui-b1"), &img_b.name, LOOP_B);
    wait_for("both images detecting", Duration::from_secs(240), || {
        let st = agent.status()?;
        (workload_state(&st, &img_a.name)? == "detecting"
            && workload_state(&st, &img_b.name)? == "detecting")
            .then_some(())
    });

    let models = state.join("models");
    let version_before = fleet_has_model(&url, &img_a.name, &models);
    // The agent's models folder as it is before any accept: accepting into
    // a folder is checked on this copy, because the agent's own folder
    // gets the fleet's accepted version (it follows the broker).
    let folder_copy = tmp.path().join("models-before-accept");
    copy_folder(&models, &folder_copy);
    let ui_port = free_port();
    let _console = spawn_listening(
        Command::new(env!("CARGO_BIN_EXE_chids"))
            .args(["ui", "--nats", &url, "--stream", "CHIDS_ALERTS", "--listen"])
            .arg(format!("127.0.0.1:{ui_port}"))
            .arg("--state-dir")
            .arg(&state)
            .arg("--allow-accept"),
        ui_port,
        "chids ui",
    );
    let plain_port = free_port();
    let _plain_console = spawn_listening(
        Command::new(env!("CARGO_BIN_EXE_chids"))
            .args(["ui", "--nats", &url, "--listen"])
            .arg(format!("127.0.0.1:{plain_port}")),
        plain_port,
        "chids ui without --allow-accept",
    );
    check_headers(ui_port);
    let driver_port = free_port();
    let _driver = spawn_listening(
        Command::new("chromedriver").arg(format!("--port={driver_port}")),
        driver_port,
        "chromedriver",
    );
    let scene = Scene {
        base_no_accept: format!("http://127.0.0.1:{plain_port}"),
        a1,
        b1,
        img_a: img_a.name.clone(),
        img_b: img_b.name.clone(),
        base: format!("http://127.0.0.1:{ui_port}"),
        state,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (seq, alert_id) = rt.block_on(async {
        let c = browser(driver_port, &tmp.path().join("chromium")).await;
        workloads(&c, &scene).await;
        let seq = live_alert(&c, &scene).await;
        let alert_id = accept_in_page(&c, &scene, seq).await;
        markup_is_text(&c, &scene).await;
        filters(&c, &scene).await;
        c.close().await.unwrap();
        (seq, alert_id)
    });
    // The broker's model has a new version whose audit list names the
    // alert and who accepted it.
    let (version, bundle) = fleet_model(&url, &img_a.name).expect("the fleet's model");
    assert!(
        version > version_before,
        "version {version} after {version_before}"
    );
    assert_eq!(
        audit_names(&bundle, &alert_id).as_deref(),
        Some("alice-e2e"),
        "the fleet bundle's audit list"
    );
    // The agent follows the broker: the accepted version reaches its folder.
    wait_for(
        "the agent's folder holding the accepted version",
        Duration::from_secs(30),
        || {
            let store = chids_agent::workloads::ModelStore::open(&models).ok()?;
            let (bundle, _) = store.load(&img_a.name).ok()??;
            (audit_names(&bundle, &alert_id).as_deref() == Some("alice-e2e")).then_some(())
        },
    );
    accept_into_folder(&url, &folder_copy, &img_a.name, seq, &alert_id);
    drop(agent);
}

/// Copies a models folder (folders 0700, files with their modes).
fn copy_folder(from: &Path, to: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(to).unwrap();
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o700)).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_folder(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
        }
    }
}
