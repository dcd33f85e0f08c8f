//! The console's HTTP routes: the page and its assets (embedded in the
//! binary), the JSON the page reads, and the login form when a token is
//! required.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::filter::Filter;
use crate::guard;
use crate::state::Shared;
use crate::workloads;

const INDEX: &str = include_str!("../assets/index.html");
const LOGIN: &str = include_str!("../assets/login.html");
const APP_JS: &str = include_str!("../assets/app.js");
const STYLE: &str = include_str!("../assets/style.css");

/// The alert page charts the container's alerts this close in time.
const AROUND_NS: u64 = 10 * 60 * 1_000_000_000;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let mut r = Router::new()
        .route("/", get(|| asset("text/html; charset=utf-8", INDEX)))
        .route(
            "/app.js",
            get(|| asset("text/javascript; charset=utf-8", APP_JS)),
        )
        .route(
            "/style.css",
            get(|| asset("text/css; charset=utf-8", STYLE)),
        )
        .route("/login", get(login_page).post(login))
        .route("/api/meta", get(meta))
        .route("/api/alerts", get(alerts))
        .route("/api/alerts/{seq}", get(alert))
        .route("/api/workloads", get(workload_rows));
    // Triage only where an accept capability exists: no route, no button.
    if shared.accept.is_some() {
        r = r.route("/api/alerts/{seq}/accept", post(accept));
    }
    r.layer(axum::middleware::from_fn_with_state(
        Arc::clone(&shared),
        guard::check,
    ))
    .with_state(shared)
}

async fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

async fn login_page() -> Response {
    asset("text/html; charset=utf-8", LOGIN).await
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
}

async fn login(State(s): State<Arc<Shared>>, Form(f): Form<LoginForm>) -> Response {
    match &s.token {
        Some(t) if guard::same_token(&f.token, t) => {
            let cookie = format!("{}={t}; HttpOnly; SameSite=Strict; Path=/", guard::COOKIE);
            let mut resp = Redirect::to("/").into_response();
            if let Ok(v) = cookie.parse() {
                resp.headers_mut().insert(header::SET_COOKIE, v);
            }
            resp
        }
        _ => (StatusCode::UNAUTHORIZED, "wrong token\n").into_response(),
    }
}

async fn meta(State(s): State<Arc<Shared>>) -> Json<Value> {
    Json(json!({
        "stream": s.stream,
        "can_accept": s.accept.is_some(),
        "accept_target": s.accept.as_ref().map(|h| h.target()),
        "state_dirs": s.state_dirs.len(),
        "models_bucket": s.models_bucket,
        "version": env!("CARGO_PKG_VERSION"),
    }))
}

async fn alerts(State(s): State<Arc<Shared>>, Query(f): Query<Filter>) -> Json<Value> {
    let source = s.source.lock().unwrap().clone();
    let store = s.store.read().unwrap();
    Json(json!({
        "alerts": store.query(&f),
        "last_seq": store.last_seq(),
        "held": store.len(),
        "evicted": store.evicted,
        "refused": store.refused,
        "facets": store.facets(),
        "source": source,
    }))
}

/// The chart's points: the windows around the alert when it carries their
/// scores (`windows: [{start_ns, score | error}]`), else the container's
/// alerts around it, saying so.
fn chart(raw: &Value, a: &crate::alert::Alert, around: &[crate::alert::Alert]) -> Value {
    let threshold = a.threshold.filter(|t| *t > 0.0);
    let windows: Vec<Value> = raw["windows"]
        .as_array()
        .into_iter()
        .flatten()
        .take(1000)
        .filter_map(|w| {
            let t = w["start_ns"].as_u64().or(w["time_ns"].as_u64())?;
            let score = w["score"]
                .as_f64()
                .or_else(|| Some(w["error"].as_f64()? / threshold?))?;
            Some(json!({"t": t, "score": score, "current": t == raw["window_start_ns"].as_u64().unwrap_or(0)}))
        })
        .collect();
    if !windows.is_empty() {
        return json!({"points": windows, "note": "scores of the windows around this alert"});
    }
    let points: Vec<Value> = around
        .iter()
        .filter_map(|o| {
            Some(
                json!({"t": o.time_ns, "score": o.score?, "seq": o.seq, "current": o.seq == a.seq}),
            )
        })
        .collect();
    json!({
        "points": points,
        "note": format!(
            "The alert carries no scores of its neighbouring windows: charted are this \
             container's alerts within 10 minutes of it ({}); quiet windows score below 1 and are not shown.",
            points.len()
        ),
    })
}

async fn alert(State(s): State<Arc<Shared>>, Path(seq): Path<u64>) -> Response {
    let store = s.store.read().unwrap();
    let Some((a, raw)) = store.get(seq) else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": format!("no alert {seq} held")})),
        )
            .into_response();
    };
    let around = store.around(&a, AROUND_NS);
    let chart = chart(&raw, &a, &around);
    Json(json!({
        "alert": a,
        "raw": *raw,
        "chart": chart,
        "can_accept": s.accept.is_some(),
        "accept_target": s.accept.as_ref().map(|h| h.target()),
    }))
    .into_response()
}

async fn workload_rows(State(s): State<Arc<Shared>>) -> Json<Value> {
    let dirs = s.state_dirs.clone();
    let (mut rows, mut errors) = tokio::task::spawn_blocking(move || {
        let (mut rows, mut errors) = (Vec::new(), Vec::new());
        for d in &dirs {
            match workloads::from_state_dir(d) {
                Ok(r) => rows.extend(r),
                Err(e) => errors.push(e),
            }
        }
        (rows, errors)
    })
    .await
    .unwrap_or_default();
    if let (Some(bucket), Some(js)) = (&s.models_bucket, s.jetstream.get()) {
        match workloads::from_models_bucket(js, bucket).await {
            Ok(r) => rows.extend(r),
            Err(e) => errors.push(e),
        }
    }
    Json(json!({"rows": rows, "errors": errors}))
}

#[derive(Deserialize)]
struct AcceptBody {
    /// Who accepts (for the audit entry).
    #[serde(default)]
    who: String,
    /// The page asked for confirmation.
    #[serde(default)]
    confirmed: bool,
}

/// Longest name kept for the audit entry.
const MAX_WHO: usize = 200;

fn refuse(code: StatusCode, why: String) -> Response {
    (code, Json(json!({"error": why}))).into_response()
}

async fn accept(
    State(s): State<Arc<Shared>>,
    Path(seq): Path<u64>,
    Json(body): Json<AcceptBody>,
) -> Response {
    let Some(hook) = s.accept.clone() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let who: String = body.who.trim().chars().take(MAX_WHO).collect();
    if !body.confirmed || who.is_empty() {
        return refuse(
            StatusCode::BAD_REQUEST,
            "not accepted: confirm (\"confirmed\": true), and say who accepts (\"who\")".into(),
        );
    }
    if who.chars().any(char::is_control) {
        return refuse(
            StatusCode::BAD_REQUEST,
            "not accepted: the name holds control characters".into(),
        );
    }
    let Some((a, raw)) = s.store.read().unwrap().get(seq) else {
        return refuse(StatusCode::NOT_FOUND, format!("no alert {seq} held"));
    };
    if a.kind != "anomaly" {
        return refuse(
            StatusCode::BAD_REQUEST,
            format!(
                "not accepted: alert {seq} is of kind {}; only an anomaly alert names what to fold into a model",
                a.kind
            ),
        );
    }
    // One accept at a time: each reads the current model and writes the
    // next, so two at once would lose one of them.
    let _one = s.accepting.lock().await;
    match tokio::task::spawn_blocking(move || hook.accept(&raw, &who)).await {
        Ok(Ok(done)) => Json(json!({"ok": done})).into_response(),
        Ok(Err(e)) => refuse(StatusCode::CONFLICT, e),
        Err(e) => refuse(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
