//! The token (`--token-file`): MONAI Label's auth routes (`/auth/`, `/auth/token`, `/auth/token/valid`), the check
//! every other route makes, and a sign-in page for OHIF, whose pages cannot send a Bearer header: the token typed
//! there is kept in an HttpOnly, SameSite=Strict cookie (its SHA-256, not the token), which the check accepts as it
//! accepts the header. Cross-site requests are refused before this check (see the guard in `routes`), so a page
//! elsewhere cannot ride on the cookie.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use sha2::Digest;

use crate::{ApiError, ApiResult, Shared};

/// The cookie the sign-in page sets.
const COOKIE: &str = "medpick_token";

/// Routes open without the token.
pub fn is_open(path: &str) -> bool {
    matches!(path, "/" | "/auth/" | "/auth/token" | "/auth/login")
}

/// Constant-time comparison (the token's length is not secret).
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The cookie's value for `token`: its SHA-256 in hex (cookie-safe whatever the token's characters).
fn cookie_value(token: &str) -> String {
    sha2::Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether a request carries `token`: `Authorization: Bearer <token>`, or the sign-in page's cookie.
pub fn authorized(headers: &HeaderMap, token: &str) -> bool {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")));
    if bearer.is_some_and(|b| same(b.as_bytes(), token.as_bytes())) {
        return true;
    }
    let want = cookie_value(token);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .any(|(k, v)| k == COOKIE && same(v.as_bytes(), want.as_bytes()))
}

/// A request the check refused: OHIF's pages (a browser's navigation) go to the sign-in page, the rest get 401.
pub fn refused(method: &axum::http::Method, path: &str) -> Response {
    if method == axum::http::Method::GET && (path == "/ohif" || path.starts_with("/ohif/")) {
        return Redirect::to("/auth/login").into_response();
    }
    ApiError::new(StatusCode::UNAUTHORIZED, "a Bearer token is required (Authorization header)").into_response()
}

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/auth/", get(auth))
        .route("/auth/token", axum::routing::post(auth_token))
        .route("/auth/token/valid", get(auth_valid))
        .route("/auth/login", get(login_page).post(login))
}

async fn auth(State(app): State<Shared>) -> ApiResult<Json<Value>> {
    if app.cfg.token.is_none() {
        return Err(ApiError::not_found("Not Found"));
    }
    Ok(Json(json!({"enabled": true, "client_id": "medpick", "realm": ""})))
}

/// `POST /auth/token` (form username, password): the password is the configured token.
async fn auth_token(State(app): State<Shared>, body: Bytes) -> ApiResult<Json<Value>> {
    let Some(token) = &app.cfg.token else { return Err(ApiError::not_found("Not Found")) };
    let form: HashMap<String, String> = url_pairs(&body);
    if !same(form.get("password").map(|s| s.as_bytes()).unwrap_or(b""), token.as_bytes()) {
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "wrong password (it is the server's token)"));
    }
    Ok(Json(json!({"access_token": token, "token_type": "Bearer"})))
}

async fn auth_valid() -> Json<Value> {
    Json(json!({}))
}

fn url_pairs(body: &[u8]) -> HashMap<String, String> {
    let text = String::from_utf8_lossy(body);
    text.split('&').filter_map(|kv| kv.split_once('=')).map(|(k, v)| (unescape(k), unescape(v))).collect()
}

fn unescape(s: &str) -> String {
    let b = s.replace('+', " ").into_bytes();
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The sign-in form: no script, posts to itself.
fn login_html(note: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>medpick: sign in</title></head><body>\
         <h1>medpick serve</h1><p>This server needs its token (the content of its <code>--token-file</code>).</p>\
         <p>{note}</p><form method=\"post\" action=\"/auth/login\"><label>Token \
         <input type=\"password\" name=\"token\" autocomplete=\"current-password\" autofocus></label> \
         <button type=\"submit\">Sign in</button></form></body></html>"
    ))
}

async fn login_page(State(app): State<Shared>) -> ApiResult<Response> {
    if app.cfg.token.is_none() {
        return Ok(Redirect::to("/ohif/").into_response());
    }
    Ok(login_html("").into_response())
}

/// `POST /auth/login` (form `token`): the cookie, then OHIF; a wrong token gets the form again (401).
async fn login(State(app): State<Shared>, body: Bytes) -> ApiResult<Response> {
    let Some(token) = &app.cfg.token else { return Ok(Redirect::to("/ohif/").into_response()) };
    let form = url_pairs(&body);
    if !same(form.get("token").map(|s| s.as_bytes()).unwrap_or(b""), token.as_bytes()) {
        return Ok((StatusCode::UNAUTHORIZED, login_html("That is not this server's token.")).into_response());
    }
    let mut r = Redirect::to("/ohif/").into_response();
    let cookie = format!("{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/", cookie_value(token));
    r.headers_mut()
        .insert(header::SET_COOKIE, HeaderValue::from_str(&cookie).map_err(|e| ApiError::internal(e.to_string()))?);
    Ok(r)
}
