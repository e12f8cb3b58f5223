//! A client of the unified API contract: health, login with the MFA round,
//! refresh, logout, enrollment, result upload, read-back and heartbeat. Every
//! failure is typed so the sync worker can tell "retry later" from "refused"
//! from "may have been received" — the last matters because the server
//! answers a duplicate `test_id` with the same generic 400 as any refusal.

use crate::model::excerpt;
use chrono::{DateTime, Utc};
use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;

/// The longest a call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// The most of an answer that is read: a read-back page of 100 results is a
/// few hundred kilobytes; anything larger is refused unread.
pub const MAX_REPLY_BYTES: usize = 4 << 20;
/// The most of the server's own words that an error quotes.
const MAX_MESSAGE_CHARS: usize = 200;
/// The longest `Retry-After` honoured; the worker caps it further by its
/// backoff limit (`[sync] backoff_max_minutes`).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    #[error("invalid server URL `{url}`: {message}")]
    BadUrl { url: String, message: String },
    /// The request did not leave (connection refused, DNS, TLS set-up).
    #[error("cannot reach the server at {url}: {message}")]
    Unreachable { url: String, message: String },
    /// The request went out but no answer came: the server may have acted on it.
    #[error("no answer from {url}: {message} (the server may have received the request)")]
    NoAnswer { url: String, message: String },
    #[error("the server failed ({status}) at {url}: {message}")]
    Server {
        url: String,
        status: u16,
        message: String,
    },
    #[error("the server asks to slow down (429){}", retry_note(.retry_after))]
    RateLimited { retry_after: Option<Duration> },
    #[error("not signed in, or the session has ended: {message}")]
    Unauthorized { message: String },
    #[error("this account needs a code from its authenticator app (MFA)")]
    MfaRequired,
    #[error("the server refused the request ({status}): {message}")]
    Refused { status: u16, message: String },
    #[error("unexpected answer from {url}: {message}")]
    Protocol { url: String, message: String },
    /// A 3xx: never followed, so no password, secret or token goes to
    /// another address.
    #[error("the server at {url} redirects ({status}) to {location}; redirects are not followed so that no password, secret or result is sent elsewhere: if that is the right address, use it as the server URL")]
    Redirected {
        url: String,
        status: u16,
        location: String,
    },
    /// The device this client enrolled is gone from the server.
    #[error("this device (id {id}) no longer exists on the server: {message}")]
    DeviceGone { id: i64, message: String },
}

fn retry_note(d: &Option<Duration>) -> String {
    d.map(|d| format!("; retry after {} s", d.as_secs()))
        .unwrap_or_default()
}

impl ApiError {
    /// Worth trying again later (network, 5xx, 429).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ApiError::Unreachable { .. }
                | ApiError::NoAnswer { .. }
                | ApiError::Server { .. }
                | ApiError::RateLimited { .. }
                | ApiError::Protocol { .. }
                | ApiError::Redirected { .. }
        )
    }

    /// The server may have acted on the request although no answer came.
    pub fn maybe_received(&self) -> bool {
        matches!(self, ApiError::NoAnswer { .. } | ApiError::Protocol { .. })
    }
}

/// `GET /health`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct HealthInfo {
    pub status: String,
    #[serde(default)]
    pub database: Option<String>,
}

/// A signed-in session's tokens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: String,
    pub user_id: i64,
}

/// What enrollment returns: `id` is what uploads need as `device_id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Enrollment {
    pub id: i64,
    pub device_id: String,
    pub organization_id: i64,
}

/// `POST /api/v1/devices/enroll`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EnrollRequest {
    pub enrollment_secret: String,
    pub org_id: i64,
    pub device_name: String,
    pub device_type: String,
    pub os_type: String,
    pub os_version: String,
    pub hardware_id: String,
    pub device_metadata: Value,
}

/// The expiry (`exp`) of a JWT, read from its payload without verifying it.
pub fn jwt_expiry(token: &str) -> Option<DateTime<Utc>> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    DateTime::from_timestamp(v.get("exp")?.as_i64()?, 0)
}

/// A `Retry-After` value: seconds, or an HTTP date; at most
/// [`MAX_RETRY_AFTER`] whatever the server asks (a number too large for any
/// clock, or a date in year 9999, included).
fn retry_after(v: &str, now: DateTime<Utc>) -> Option<Duration> {
    let v = v.trim();
    let d = if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        // All digits: a count of seconds, however long.
        Duration::from_secs(v.parse::<u64>().unwrap_or(u64::MAX))
    } else {
        let t = DateTime::parse_from_rfc2822(v).ok()?;
        (t.with_timezone(&Utc) - now)
            .to_std()
            .unwrap_or(Duration::ZERO)
    };
    Some(d.min(MAX_RETRY_AFTER))
}

/// The server's own words from an error body (`error` or `message`), else a
/// short excerpt of whatever it sent; never longer than
/// [`MAX_MESSAGE_CHARS`].
fn message_of(body: &str) -> String {
    if let Ok(v) = serde_json::from_str::<Value>(body) {
        for k in ["error", "message"] {
            if let Some(m) = v.get(k).and_then(Value::as_str) {
                return excerpt(m, MAX_MESSAGE_CHARS);
            }
        }
    }
    let t = excerpt(body.trim(), MAX_MESSAGE_CHARS);
    if t.is_empty() {
        "(empty answer)".into()
    } else {
        t
    }
}

/// Reads an answer's body, refusing one over `limit` bytes without reading
/// the rest (a declared length over the limit is refused before any byte).
async fn read_bounded(
    mut resp: reqwest::Response,
    limit: usize,
    url: &str,
) -> Result<String, ApiError> {
    let too_big = || ApiError::Protocol {
        url: url.to_owned(),
        message: format!(
            "the answer is larger than {} KiB; it was not read",
            limit / 1024
        ),
    };
    if resp
        .content_length()
        .is_some_and(|n| n > u64::try_from(limit).unwrap_or(u64::MAX))
    {
        return Err(too_big());
    }
    let mut body = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > limit {
                    return Err(too_big());
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => {
                return Err(ApiError::NoAnswer {
                    url: url.to_owned(),
                    message: format!("the answer was cut off: {e}"),
                })
            }
        }
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// The client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Api {
    http: reqwest::Client,
    base: url::Url,
}

impl Api {
    /// A client for the server at `base` (e.g. `https://perf.example.com`);
    /// `ca_file` adds trusted roots (a private server).
    pub fn new(base: &str, ca_file: Option<&std::path::Path>) -> Result<Api, ApiError> {
        let bad = |message: String| ApiError::BadUrl {
            url: base.to_owned(),
            message,
        };
        let mut url = url::Url::parse(base.trim()).map_err(|e| bad(e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(bad("expected an http:// or https:// URL with a host".into()));
        }
        if !url.path().ends_with('/') {
            let p = format!("{}/", url.path());
            url.set_path(&p);
        }
        let tls = crate::probe::tls::client_config(false, ca_file, &[b"h2", b"http/1.1"])
            .map_err(|e| bad(e.message))?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured((*tls).clone())
            .timeout(CALL_TIMEOUT)
            .connect_timeout(Duration::from_secs(10))
            // Credentials never follow a redirect: a 3xx is an error that
            // names where the server points.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(format!(
                "{}/{}",
                crate::version::client(),
                crate::version::VERSION
            ))
            .build()
            .map_err(|e| bad(e.to_string()))?;
        Ok(Api { http, base: url })
    }

    pub fn base(&self) -> &url::Url {
        &self.base
    }

    fn url(&self, path: &str) -> Result<url::Url, ApiError> {
        self.base
            .join(path.trim_start_matches('/'))
            .map_err(|e| ApiError::BadUrl {
                url: path.to_owned(),
                message: e.to_string(),
            })
    }

    /// One call: the status and the body text, or a typed failure for
    /// everything that is not a 2xx or a 4xx the caller reads itself.
    async fn call(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<&Value>,
    ) -> Result<(StatusCode, String), ApiError> {
        let url = self.url(path)?;
        let mut req = self.http.request(method, url.clone());
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let shown = url.to_string();
        let resp = req.send().await.map_err(|e| {
            if e.is_connect() || e.is_builder() {
                ApiError::Unreachable {
                    url: shown.clone(),
                    message: e.to_string(),
                }
            } else {
                ApiError::NoAnswer {
                    url: shown.clone(),
                    message: e.to_string(),
                }
            }
        })?;
        let status = resp.status();
        let retry = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| retry_after(v, Utc::now()));
        if status.is_redirection() {
            let location = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .map(|v| excerpt(&String::from_utf8_lossy(v.as_bytes()), MAX_MESSAGE_CHARS))
                .unwrap_or_else(|| "(no Location given)".into());
            return Err(ApiError::Redirected {
                url: shown,
                status: status.as_u16(),
                location,
            });
        }
        let text = read_bounded(resp, MAX_REPLY_BYTES, &shown).await?;
        if status == StatusCode::TOO_MANY_REQUESTS {
            return Err(ApiError::RateLimited { retry_after: retry });
        }
        if status.is_server_error() {
            return Err(ApiError::Server {
                url: shown,
                status: status.as_u16(),
                message: message_of(&text),
            });
        }
        if status == StatusCode::UNAUTHORIZED {
            return Err(ApiError::Unauthorized {
                message: message_of(&text),
            });
        }
        Ok((status, text))
    }

    fn json(url: &str, text: &str) -> Result<Value, ApiError> {
        serde_json::from_str(text).map_err(|e| ApiError::Protocol {
            url: url.to_owned(),
            message: format!("not JSON ({e}): {}", message_of(text)),
        })
    }

    fn refused(status: StatusCode, text: &str) -> ApiError {
        ApiError::Refused {
            status: status.as_u16(),
            message: message_of(text),
        }
    }

    fn field<T: serde::de::DeserializeOwned>(path: &str, v: &Value) -> Result<T, ApiError> {
        serde_json::from_value(v.clone()).map_err(|e| ApiError::Protocol {
            url: path.to_owned(),
            message: format!("{e} in {}", excerpt(&v.to_string(), MAX_MESSAGE_CHARS)),
        })
    }

    /// `GET /health`: is the server there and its database up.
    pub async fn health(&self) -> Result<HealthInfo, ApiError> {
        let (status, text) = self.call(Method::GET, "health", None, None).await?;
        if !status.is_success() {
            return Err(Self::refused(status, &text));
        }
        Self::field("health", &Self::json("health", &text)?)
    }

    /// Logs in. `Err(MfaRequired)` asks for a TOTP code: call again with it.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        mfa_token: Option<&str>,
    ) -> Result<Tokens, ApiError> {
        let mut body = serde_json::json!({"username": username, "password": password});
        if let Some(code) = mfa_token {
            body["mfa_token"] = Value::from(code);
        }
        let path = "api/v1/auth/login";
        let (status, text) = self.call(Method::POST, path, None, Some(&body)).await?;
        if status == StatusCode::FORBIDDEN {
            let v = Self::json(path, &text)?;
            if v.get("mfa_required").and_then(Value::as_bool) == Some(true) {
                return Err(ApiError::MfaRequired);
            }
        }
        if !status.is_success() {
            return Err(Self::refused(status, &text));
        }
        Self::field(path, &Self::json(path, &text)?)
    }

    /// A new access token from the refresh token (which is not rotated).
    pub async fn refresh(&self, refresh_token: &str) -> Result<String, ApiError> {
        let path = "api/v1/auth/refresh";
        let body = serde_json::json!({"refresh_token": refresh_token});
        let (status, text) = self.call(Method::POST, path, None, Some(&body)).await?;
        if !status.is_success() {
            return Err(Self::refused(status, &text));
        }
        let v = Self::json(path, &text)?;
        v.get("access_token")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| ApiError::Protocol {
                url: path.into(),
                message: format!(
                    "no access_token in {}",
                    excerpt(&v.to_string(), MAX_MESSAGE_CHARS)
                ),
            })
    }

    /// Revokes the session's refresh tokens.
    pub async fn logout(&self, access: &str) -> Result<(), ApiError> {
        let (status, text) = self
            .call(Method::POST, "api/v1/auth/logout", Some(access), None)
            .await?;
        if !status.is_success() {
            return Err(Self::refused(status, &text));
        }
        Ok(())
    }

    /// Enrolls this device once (the server does not deduplicate).
    pub async fn enroll(
        &self,
        access: Option<&str>,
        req: &EnrollRequest,
    ) -> Result<Enrollment, ApiError> {
        let path = "api/v1/devices/enroll";
        let body = serde_json::to_value(req).map_err(|e| ApiError::Protocol {
            url: path.into(),
            message: e.to_string(),
        })?;
        let (status, text) = self.call(Method::POST, path, access, Some(&body)).await?;
        if !status.is_success() {
            return Err(Self::refused(status, &text));
        }
        let v = Self::json(path, &text)?;
        Self::field(path, v.get("data").unwrap_or(&Value::Null))
    }

    /// Uploads one result body (see [`super::payload::upload_body`]).
    pub async fn upload(&self, access: Option<&str>, body: &Value) -> Result<(), ApiError> {
        let (status, text) = self
            .call(Method::POST, "api/v1/tests/", access, Some(body))
            .await?;
        if status.is_success() {
            return Ok(());
        }
        Err(Self::refused(status, &text))
    }

    /// The `test_id`s of a device's stored results, newest first.
    pub async fn list_test_ids(
        &self,
        access: Option<&str>,
        org_id: i64,
        device_id: i64,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<String>, ApiError> {
        let path = format!(
            "api/v1/tests/?org_id={org_id}&device_id={device_id}&limit={limit}&offset={offset}"
        );
        let (status, text) = self.call(Method::GET, &path, access, None).await?;
        if !status.is_success() {
            return Err(Self::refused(status, &text));
        }
        let v = Self::json(&path, &text)?;
        let rows = v
            .get("data")
            .and_then(Value::as_array)
            .ok_or_else(|| ApiError::Protocol {
                url: path.clone(),
                message: "no data list".into(),
            })?;
        Ok(rows
            .iter()
            .filter_map(|r| r.get("test_id").and_then(Value::as_str).map(str::to_owned))
            .collect())
    }

    /// The heartbeat: when this device last checked in and, after a pass,
    /// last synced. It never sends `status`: whether a device is active is the
    /// administrators' to say, not the client's. A 404 means the device is
    /// gone from the server ([`ApiError::DeviceGone`]).
    pub async fn heartbeat(
        &self,
        access: Option<&str>,
        id: i64,
        last_sync: Option<DateTime<Utc>>,
    ) -> Result<(), ApiError> {
        let mut body = serde_json::json!({
            "last_checkin": crate::model::rfc3339_utc::format(&Utc::now()),
        });
        if let Some(t) = last_sync {
            body["last_sync"] = Value::from(crate::model::rfc3339_utc::format(&t));
        }
        let (status, text) = self
            .call(
                Method::PUT,
                &format!("api/v1/devices/{id}"),
                access,
                Some(&body),
            )
            .await?;
        if status == StatusCode::NOT_FOUND {
            return Err(ApiError::DeviceGone {
                id,
                message: message_of(&text),
            });
        }
        if !status.is_success() {
            return Err(Self::refused(status, &text));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_jwt_expiry_and_retry_after() {
        // {"alg":"HS256"} . {"sub":"1","exp":1795000000} . signature
        let t = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIiwiZXhwIjoxNzk1MDAwMDAwfQ.c2ln";
        assert_eq!(jwt_expiry(t).map(|d| d.timestamp()), Some(1_795_000_000));
        assert_eq!(jwt_expiry("not a jwt"), None);
        let now: DateTime<Utc> = "2026-11-22T01:41:00Z".parse().unwrap();
        assert_eq!(retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(
            retry_after("Sun, 22 Nov 2026 01:41:56 GMT", now),
            Some(Duration::from_secs(56))
        );
        assert_eq!(retry_after("soon", now), None);
        // Whatever the server asks, the wait is bounded and nothing overflows.
        for huge in [
            "10000000000000",
            "18446744073709551615",
            "99999999999999999999999999",
            "Fri, 31 Dec 9999 23:59:59 GMT",
        ] {
            assert_eq!(retry_after(huge, now), Some(MAX_RETRY_AFTER), "{huge}");
        }
        assert_eq!(
            retry_after("Sun, 01 Nov 2026 00:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("-5", now), None);
        assert_eq!(retry_after("+5", now), None);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 512,
            failure_persistence: None,
            ..Default::default()
        })]

        /// Whatever a server sends as Retry-After, a token or an error body:
        /// bounded results, no panic.
        #[test]
        fn server_text_never_panics(v in ".{0,80}|[0-9]{1,40}") {
            let now = Utc::now();
            if let Some(d) = retry_after(&v, now) {
                proptest::prop_assert!(d <= MAX_RETRY_AFTER);
            }
            let _ = jwt_expiry(&v);
            proptest::prop_assert!(message_of(&v).chars().count() <= MAX_MESSAGE_CHARS + 10);
        }
    }

    #[test]
    fn quoted_server_words_are_bounded() {
        let long = "x".repeat(10_000);
        let m = message_of(&format!(r#"{{"error":"{long}"}}"#));
        assert!(m.chars().count() < MAX_MESSAGE_CHARS + 10, "{}", m.len());
        assert!(m.ends_with("(cut)"));
        assert!(message_of(&long).chars().count() < MAX_MESSAGE_CHARS + 10);
    }

    #[test]
    fn server_messages_are_read_from_any_body() {
        assert_eq!(
            message_of(r#"{"error":"Invalid email or password"}"#),
            "Invalid email or password"
        );
        assert_eq!(
            message_of(r#"{"status":"error","message":"Missing required field: test_id"}"#),
            "Missing required field: test_id"
        );
        assert_eq!(
            message_of("<html>bad gateway</html>"),
            "<html>bad gateway</html>"
        );
        assert_eq!(message_of(""), "(empty answer)");
    }

    #[test]
    fn base_urls_are_checked() {
        assert!(matches!(
            Api::new("ftp://x", None),
            Err(ApiError::BadUrl { .. })
        ));
        assert!(matches!(
            Api::new("not a url", None),
            Err(ApiError::BadUrl { .. })
        ));
        let a = Api::new("https://perf.example.com/wp", None).unwrap();
        assert_eq!(
            a.url("api/v1/tests/").unwrap().as_str(),
            "https://perf.example.com/wp/api/v1/tests/"
        );
    }
}
