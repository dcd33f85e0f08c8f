//! Who may talk to the console, and the headers every answer carries.
//!
//! Bound to loopback without a token, only requests naming a loopback host
//! are served (a web page elsewhere cannot reach the console by pointing
//! its own DNS name at 127.0.0.1). With a token, every request carries it,
//! as a `Bearer` header or the cookie the login form sets, compared in
//! constant time.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use subtle::ConstantTimeEq;

use crate::state::Shared;

/// No inline script or style, nothing from elsewhere: data shown by the
/// page can never run as code even if it reached markup.
pub(crate) const CSP: &str =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

pub(crate) const COOKIE: &str = "chids_ui_token";

/// Shortest token accepted.
pub(crate) const MIN_TOKEN: usize = 16;

/// Refuses a listen address other than loopback without a token.
pub fn check_listen(addr: SocketAddr, has_token: bool) -> Result<(), String> {
    if addr.ip().is_loopback() || has_token {
        Ok(())
    } else {
        Err(format!(
            "--listen {addr}: not a loopback address; anyone who can reach it would read \
             every alert: give --ui-token-file FILE (a secret of at least {MIN_TOKEN} characters)"
        ))
    }
}

/// Reads the token: the file's first line, at least [`MIN_TOKEN`] long.
pub fn read_token_file(path: &std::path::Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let token = text.lines().next().unwrap_or("").trim().to_string();
    if token
        .bytes()
        .any(|b| !b.is_ascii_graphic() || b"\";,\\".contains(&b))
    {
        return Err(format!(
            "{}: the token must be printable ASCII without spaces, quotes, `;`, `,` or `\\` (it goes into a cookie)",
            path.display()
        ));
    }
    if token.len() < MIN_TOKEN {
        return Err(format!(
            "{}: the token must be at least {MIN_TOKEN} characters (e.g. `head -c 24 /dev/urandom | base64`)",
            path.display()
        ));
    }
    Ok(token)
}

pub(crate) fn same_token(given: &str, token: &str) -> bool {
    given.as_bytes().ct_eq(token.as_bytes()).into()
}

fn presented(headers: &HeaderMap) -> Option<&str> {
    if let Some(bearer) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        return Some(bearer.trim());
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| kv.trim().strip_prefix(COOKIE)?.strip_prefix('='))
}

/// A loopback name for the Host header (with or without a port).
pub(crate) fn loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    name == "localhost"
        || name.ends_with(".localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A request that changes something (a POST) sent by a page of another
/// origin: its `Origin` names another host than the request's `Host`. A
/// browser always sends `Origin` with a POST; a script without one (curl)
/// is not a browser that another site could drive.
pub(crate) fn cross_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return false;
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin_host = origin.to_str().ok().and_then(|o| {
        o.strip_prefix("http://")
            .or_else(|| o.strip_prefix("https://"))
    });
    origin_host.is_none() || origin_host != host
}

/// Lets a request through or answers it (login, refusal).
pub async fn check(State(access): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    // Cross-site request forgery: a page elsewhere posting to the console
    // through the browser of someone who may use it.
    let forged = req.method() != axum::http::Method::GET
        && req.method() != axum::http::Method::HEAD
        && cross_origin(req.headers());
    let allowed = match &access.token {
        None => req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .is_some_and(loopback_host),
        Some(t) => {
            req.uri().path() == "/login"
                || req.uri().path() == "/style.css"
                || presented(req.headers()).is_some_and(|p| same_token(p, t))
        }
    };
    let mut resp = if forged {
        (StatusCode::FORBIDDEN, "cross-origin request refused\n").into_response()
    } else if allowed {
        next.run(req).await
    } else if access.token.is_none() {
        (
            StatusCode::FORBIDDEN,
            "this console answers to localhost only\n",
        )
            .into_response()
    } else if req.uri().path().starts_with("/api/") {
        (StatusCode::UNAUTHORIZED, "token required\n").into_response()
    } else {
        Redirect::to("/login").into_response()
    };
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_needs_a_token_off_loopback() {
        assert!(check_listen("127.0.0.1:8080".parse().unwrap(), false).is_ok());
        assert!(check_listen("[::1]:8080".parse().unwrap(), false).is_ok());
        let e = check_listen("0.0.0.0:8080".parse().unwrap(), false).unwrap_err();
        assert!(e.contains("--ui-token-file"), "{e}");
        assert!(check_listen("0.0.0.0:8080".parse().unwrap(), true).is_ok());
    }

    #[test]
    fn hosts() {
        for h in [
            "localhost",
            "localhost:8080",
            "127.0.0.1:1",
            "[::1]:80",
            "a.localhost",
        ] {
            assert!(loopback_host(h), "{h}");
        }
        for h in [
            "evil.example",
            "evil.example:8080",
            "10.0.0.1",
            "localhost.evil.example",
            "",
        ] {
            assert!(!loopback_host(h), "{h}");
        }
    }

    #[test]
    fn token_from_header_or_cookie() {
        let mut h = HeaderMap::new();
        assert_eq!(presented(&h), None);
        h.insert(
            header::COOKIE,
            "a=b; chids_ui_token=secret; c=d".parse().unwrap(),
        );
        assert_eq!(presented(&h), Some("secret"));
        h.insert(header::AUTHORIZATION, "Bearer other".parse().unwrap());
        assert_eq!(presented(&h), Some("other"));
        assert!(same_token("abc", "abc") && !same_token("abd", "abc") && !same_token("ab", "abc"));
    }

    #[test]
    fn cross_origin_posts() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, "127.0.0.1:8080".parse().unwrap());
        assert!(
            !cross_origin(&h),
            "no Origin: not a browser's cross-site post"
        );
        h.insert(header::ORIGIN, "http://127.0.0.1:8080".parse().unwrap());
        assert!(!cross_origin(&h));
        for o in [
            "http://evil.example",
            "http://127.0.0.1:9999",
            "null",
            "file://",
        ] {
            h.insert(header::ORIGIN, o.parse().unwrap());
            assert!(cross_origin(&h), "{o}");
        }
    }

    #[test]
    fn token_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("t");
        std::fs::write(&p, "short\n").unwrap();
        assert!(read_token_file(&p).unwrap_err().contains("at least"));
        std::fs::write(&p, "0123456789abcdef0123\nignored").unwrap();
        assert_eq!(read_token_file(&p).unwrap(), "0123456789abcdef0123");
    }
}
