//! A contract double of the WaddlePerf unified API
//! (`shared/reference/unified-api.md`), on loopback, quirks included: HS256
//! JWTs with expiry (24 h access, 30 d refresh, not rotated), the MFA round,
//! enrollment secrets per organization (no de-duplication of devices),
//! `POST /api/v1/tests/` with required fields, integer ids and a duplicate
//! `test_id` refused with the same generic 400 as any database refusal,
//! read-back newest first with RFC 1123 dates. Faults can be injected: down,
//! status codes, 429 with Retry-After, slow answers, the connection dropped
//! after the result was stored, refresh refused.

use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use serde_json::{json, Value};
use sha2::Sha256;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const KEY: &[u8] = b"contract-double-signing-key";

#[derive(Debug, Clone)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub email: String,
    pub password: String,
    /// The TOTP code the double accepts, when the account has MFA.
    pub mfa_code: Option<String>,
    pub active: bool,
}

/// A fault for the next request whose path starts with a prefix.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    Status(u16),
    TooMany {
        retry_after_s: Option<u64>,
    },
    Slow(Duration),
    /// Store the result (uploads) or do the work, then drop the connection.
    DropAfterWork,
    RefreshRefused,
    /// An answer of this status with a body of `bytes` bytes.
    Huge {
        status: u16,
        bytes: usize,
    },
    /// A redirect (301, 302, 307, 308) to `location`.
    Redirect {
        status: u16,
        location: String,
    },
    /// 429 with this `Retry-After` value, as given.
    RetryAfter(String),
}

#[derive(Default)]
pub struct State {
    pub users: Vec<User>,
    /// (organization id, secret token)
    pub secrets: Vec<(i64, String)>,
    /// (id, 32-hex device_id, organization id, body)
    pub devices: Vec<(i64, String, i64, Value)>,
    /// Stored test rows, oldest first.
    pub tests: Vec<Value>,
    /// Heartbeats: (device id, body).
    pub heartbeats: Vec<(i64, Value)>,
    /// Device ids handed out so far (ids are never reused).
    device_seq: i64,
    /// Refresh tokens issued before this time are revoked, per user.
    revoked_before: HashMap<i64, i64>,
    pub access_ttl_s: i64,
    faults: VecDeque<(String, Fault)>,
    /// Every request: method and path.
    pub log: Vec<(String, String)>,
    jti: u64,
    down: bool,
    /// Uploads whose `name` contains one of these are refused like a
    /// database refusal (e.g. a column too narrow for the value).
    pub refuse_names: Vec<String>,
    /// Every upload is stored, then answered this much later (a window in
    /// which a killed client leaves a stored but unacknowledged result).
    pub answer_delay: Option<Duration>,
}

pub struct ApiDouble {
    pub addr: SocketAddr,
    pub url: String,
    pub state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ApiDouble {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn now_s() -> i64 {
    chrono::Utc::now().timestamp()
}

fn sign(payload: &Value) -> String {
    let head = b64(br#"{"alg":"HS256","typ":"JWT"}"#);
    let body = b64(payload.to_string().as_bytes());
    let mut mac = Hmac::<Sha256>::new_from_slice(KEY).unwrap();
    mac.update(format!("{head}.{body}").as_bytes());
    format!("{head}.{body}.{}", b64(&mac.finalize().into_bytes()))
}

/// The payload of a token this double signed and that has not expired.
fn verify(token: &str, kind: &str) -> Option<Value> {
    use base64::Engine;
    let mut parts = token.split('.');
    let (h, b, s) = (parts.next()?, parts.next()?, parts.next()?);
    let mut mac = Hmac::<Sha256>::new_from_slice(KEY).ok()?;
    mac.update(format!("{h}.{b}").as_bytes());
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .ok()?;
    mac.verify_slice(&sig).ok()?;
    let p: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(b)
            .ok()?,
    )
    .ok()?;
    (p["type"] == kind && p["exp"].as_i64()? > now_s()).then_some(p)
}

fn rfc1123(iso: &str) -> Value {
    chrono::DateTime::parse_from_rfc3339(iso)
        .map(|t| {
            Value::from(
                t.with_timezone(&chrono::Utc)
                    .format("%a, %d %b %Y %H:%M:%S GMT")
                    .to_string(),
            )
        })
        .unwrap_or(Value::Null)
}

type Answer = (StatusCode, Value, Vec<(&'static str, String)>);

fn answer(code: u16, v: Value) -> Answer {
    (StatusCode::from_u16(code).unwrap(), v, Vec::new())
}

impl State {
    fn issue(&mut self, user: i64, kind: &str, ttl: i64) -> String {
        self.jti += 1;
        let now = now_s();
        sign(&json!({"sub": user, "type": kind, "iat": now, "exp": now + ttl, "jti": self.jti}))
    }

    fn bearer_user(&self, req_auth: Option<&str>) -> Option<i64> {
        let t = req_auth?.strip_prefix("Bearer ")?;
        verify(t, "access")?["sub"].as_i64()
    }

    fn handle(
        &mut self,
        method: &str,
        path: &str,
        query: &str,
        auth: Option<&str>,
        body: &[u8],
    ) -> Answer {
        let json_body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        match (method, path) {
            ("GET", "/health") => answer(
                200,
                json!({"status": "healthy", "service": "unified-api", "database": "healthy",
                       "timestamp": chrono::Utc::now().to_rfc3339()}),
            ),
            ("POST", "/api/v1/auth/login") => self.login(&json_body),
            ("POST", "/api/v1/auth/refresh") => {
                let t = json_body["refresh_token"].as_str().unwrap_or("");
                let ok = verify(t, "refresh").and_then(|p| {
                    let user = p["sub"].as_i64()?;
                    let iat = p["iat"].as_i64()?;
                    let revoked = self.revoked_before.get(&user).is_some_and(|r| iat <= *r);
                    (!revoked).then_some(user)
                });
                match ok {
                    Some(user) => {
                        let access = self.issue(user, "access", self.access_ttl_s);
                        answer(
                            200,
                            json!({"success": true, "access_token": access, "user_id": user}),
                        )
                    }
                    None => answer(401, json!({"error": "Invalid or expired refresh token"})),
                }
            }
            ("POST", "/api/v1/auth/logout") => match self.bearer_user(auth) {
                Some(user) => {
                    self.revoked_before.insert(user, now_s());
                    answer(200, json!({"success": true}))
                }
                None => answer(401, json!({"error": "Authentication required"})),
            },
            ("GET", "/api/v1/auth/status") => {
                let user = self.bearer_user(auth);
                answer(
                    200,
                    json!({"authenticated": user.is_some(), "auth_enabled": true}),
                )
            }
            ("POST", "/api/v1/devices/enroll") => self.enroll(&json_body),
            ("POST", "/api/v1/tests/") => {
                if self.bearer_user(auth).is_none() {
                    return answer(401, json!({"error": "Authentication required"}));
                }
                self.create_test(json_body)
            }
            ("GET", "/api/v1/tests/") => {
                if self.bearer_user(auth).is_none() {
                    return answer(401, json!({"error": "Authentication required"}));
                }
                let q: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
                    .into_owned()
                    .collect();
                let num = |k: &str| q.get(k).and_then(|v| v.parse::<i64>().ok());
                let (limit, offset) = (num("limit").unwrap_or(100), num("offset").unwrap_or(0));
                let rows: Vec<Value> = self
                    .tests
                    .iter()
                    .rev()
                    .filter(|r| num("org_id").is_none_or(|o| r["organization_id"] == o))
                    .filter(|r| num("device_id").is_none_or(|d| r["device_id"] == d))
                    .skip(offset.max(0) as usize)
                    .take(limit.max(0) as usize)
                    .map(|r| {
                        let mut r = r.clone();
                        for k in ["started_at", "completed_at", "created_at"] {
                            if let Some(s) = r[k].as_str().map(str::to_owned) {
                                r[k] = rfc1123(&s);
                            }
                        }
                        r
                    })
                    .collect();
                answer(200, json!({"status": "success", "data": rows}))
            }
            ("PUT", p) if p.starts_with("/api/v1/devices/") => {
                if self.bearer_user(auth).is_none() {
                    return answer(401, json!({"error": "Authentication required"}));
                }
                let id: Option<i64> = p.trim_start_matches("/api/v1/devices/").parse().ok();
                match id.filter(|id| self.devices.iter().any(|d| d.0 == *id)) {
                    Some(id) => {
                        self.heartbeats.push((id, json_body));
                        answer(200, json!({"status": "success"}))
                    }
                    None => answer(
                        404,
                        json!({"status": "error", "message": "Device not found"}),
                    ),
                }
            }
            _ => answer(404, json!({"error": "Not found"})),
        }
    }

    fn login(&mut self, b: &Value) -> Answer {
        let given = |k: &str| b[k].as_str().filter(|v| !v.is_empty());
        let (Some(name), Some(pass)) = (given("username"), given("password")) else {
            return answer(400, json!({"error": "Email and password required"}));
        };
        let Some(u) = self
            .users
            .iter()
            .find(|u| (u.username == name || u.email == name) && u.password == pass)
            .cloned()
        else {
            return answer(
                401,
                json!({"error": "Invalid email or password", "mfa_required": false}),
            );
        };
        if !u.active {
            return answer(
                401,
                json!({"error": "User account is inactive", "mfa_required": false}),
            );
        }
        if let Some(code) = &u.mfa_code {
            match b["mfa_token"].as_str() {
                None => {
                    return answer(
                        403,
                        json!({"error": "MFA token required", "mfa_required": true}),
                    )
                }
                Some(c) if c != code => {
                    return answer(
                        401,
                        json!({"error": "Invalid MFA token", "mfa_required": false}),
                    )
                }
                Some(_) => {}
            }
        }
        let access = self.issue(u.id, "access", self.access_ttl_s);
        let refresh = self.issue(u.id, "refresh", 30 * 86_400);
        answer(
            200,
            json!({"success": true, "access_token": access, "refresh_token": refresh, "user_id": u.id}),
        )
    }

    fn enroll(&mut self, b: &Value) -> Answer {
        let bad = || {
            answer(
                400,
                json!({"status": "error", "message": "Invalid or expired enrollment secret"}),
            )
        };
        let (Some(secret), Some(org)) = (b["enrollment_secret"].as_str(), b["org_id"].as_i64())
        else {
            return bad();
        };
        if !self.secrets.iter().any(|(o, s)| *o == org && s == secret) {
            return bad();
        }
        self.device_seq += 1;
        let id = self.device_seq;
        let serial = format!("{:032x}", 0xd0_u128 << 64 | id as u128);
        self.devices.push((id, serial.clone(), org, b.clone()));
        answer(
            201,
            json!({"status": "success", "data": {"id": id, "device_id": serial, "organization_id": org,
                   "device_name": b["device_name"]}}),
        )
    }

    fn create_test(&mut self, b: Value) -> Answer {
        for k in ["test_id", "name", "organization_id"] {
            if b.get(k).is_none_or(Value::is_null) {
                return answer(
                    400,
                    json!({"status": "error", "message": format!("Missing required field: {k}")}),
                );
            }
        }
        let refuse = || {
            answer(
                400,
                json!({"status": "error", "message": "Failed to create test result"}),
            )
        };
        let test_id = b["test_id"].as_str().unwrap_or("");
        let ints_ok = b["organization_id"].is_i64()
            && (b.get("device_id").is_none_or(|d| d.is_null() || d.is_i64()));
        // A device id must name a device (a foreign key on the server).
        let device_ok = b["device_id"]
            .as_i64()
            .is_none_or(|id| self.devices.iter().any(|d| d.0 == id));
        let status_ok = b.get("status").is_none_or(|s| {
            ["pending", "running", "completed", "failed", "skipped"]
                .iter()
                .any(|k| s == k)
        });
        if test_id.is_empty()
            || test_id.len() > 128
            || !ints_ok
            || !device_ok
            || !status_ok
            || self.tests.iter().any(|r| r["test_id"] == test_id)
            || self.refuse_names.iter().any(|n| {
                b["name"]
                    .as_str()
                    .is_some_and(|name| name.contains(n.as_str()))
            })
        {
            return refuse();
        }
        // Known columns only; sub-seconds dropped from dates.
        let mut row =
            json!({"id": self.tests.len() + 1, "created_at": chrono::Utc::now().to_rfc3339()});
        for k in [
            "test_id",
            "name",
            "organization_id",
            "device_id",
            "status",
            "duration_ms",
            "success",
            "error_message",
            "metrics",
            "metadata",
            "test_output",
            "started_at",
            "completed_at",
        ] {
            if let Some(v) = b.get(k) {
                row[k] = v.clone();
            }
        }
        self.tests.push(row.clone());
        answer(201, json!({"status": "success", "data": row}))
    }
}

impl ApiDouble {
    pub async fn start() -> ApiDouble {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State {
            access_ttl_s: 86_400,
            ..State::default()
        }));
        let task = tokio::spawn(serve(listener, Arc::clone(&state)));
        ApiDouble {
            addr,
            url: format!("http://{addr}"),
            state,
            task,
        }
    }

    pub fn add_user(&self, u: User) {
        self.state.lock().unwrap().users.push(u);
    }

    pub fn add_secret(&self, org: i64, secret: &str) {
        self.state
            .lock()
            .unwrap()
            .secrets
            .push((org, secret.into()));
    }

    /// The next request whose path starts with `prefix` meets `fault`.
    pub fn fault(&self, prefix: &str, fault: Fault) {
        self.state
            .lock()
            .unwrap()
            .faults
            .push_back((prefix.into(), fault));
    }

    /// While down, connections are closed as soon as they are accepted, and
    /// requests on kept-alive connections get the connection closed.
    pub fn set_down(&self, down: bool) {
        self.state.lock().unwrap().down = down;
    }

    /// Refuses uploads whose name contains `needle` until `accept_all`.
    pub fn refuse_name(&self, needle: &str) {
        self.state.lock().unwrap().refuse_names.push(needle.into());
    }

    pub fn set_answer_delay(&self, d: Option<Duration>) {
        self.state.lock().unwrap().answer_delay = d;
    }

    /// How many requests of `method` to paths starting with `prefix` came.
    pub fn count(&self, method: &str, prefix: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .log
            .iter()
            .filter(|(m, p)| m == method && p.starts_with(prefix))
            .count()
    }

    /// An administrator deletes a device.
    pub fn remove_device(&self, id: i64) {
        self.state.lock().unwrap().devices.retain(|d| d.0 != id);
    }

    /// Every request's method and path so far.
    pub fn requests(&self) -> Vec<(String, String)> {
        self.state.lock().unwrap().log.clone()
    }

    pub fn accept_all(&self) {
        self.state.lock().unwrap().refuse_names.clear();
    }

    pub fn test_ids(&self) -> Vec<String> {
        self.state
            .lock()
            .unwrap()
            .tests
            .iter()
            .filter_map(|r| r["test_id"].as_str().map(str::to_owned))
            .collect()
    }
}

async fn serve(listener: tokio::net::TcpListener, state: Arc<Mutex<State>>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        if state.lock().unwrap().down {
            drop(stream);
            continue;
        }
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let state = Arc::clone(&state);
                async move { route(req, state).await }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                .await;
        });
    }
}

#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}

impl std::error::Error for Dropped {}

async fn route(
    req: Request<Incoming>,
    state: Arc<Mutex<State>>,
) -> Result<Response<Full<Bytes>>, Dropped> {
    let method = req.method().to_string();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = req
        .into_body()
        .collect()
        .await
        .map_err(|_| Dropped)?
        .to_bytes();
    let fault = {
        let mut s = state.lock().unwrap();
        if s.down {
            // Kept-alive connections die with the server too.
            return Err(Dropped);
        }
        s.log.push((method.clone(), path.clone()));
        let i = s
            .faults
            .iter()
            .position(|(p, _)| path.starts_with(p.as_str()));
        i.and_then(|i| s.faults.remove(i)).map(|(_, f)| f)
    };
    let mut drop_after = false;
    match fault {
        Some(Fault::Status(code)) => {
            return Ok(respond(answer(code, json!({"error": "injected failure"}))))
        }
        Some(Fault::TooMany { retry_after_s }) => {
            let mut a = answer(429, json!({"error": "Too many requests"}));
            if let Some(s) = retry_after_s {
                a.2.push(("retry-after", s.to_string()));
            }
            return Ok(respond(a));
        }
        Some(Fault::Slow(d)) => tokio::time::sleep(d).await,
        Some(Fault::DropAfterWork) => drop_after = true,
        Some(Fault::RefreshRefused) => {
            return Ok(respond(answer(
                401,
                json!({"error": "Refresh token revoked"}),
            )))
        }
        Some(Fault::Huge { status, bytes }) => {
            return Ok(Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(vec![b'x'; bytes])))
                .unwrap())
        }
        Some(Fault::Redirect { status, location }) => {
            let code = StatusCode::from_u16(status).unwrap();
            return Ok(respond((code, json!({}), vec![("location", location)])));
        }
        Some(Fault::RetryAfter(v)) => {
            return Ok(respond((
                StatusCode::TOO_MANY_REQUESTS,
                json!({"error": "Too many requests"}),
                vec![("retry-after", v)],
            )));
        }
        None => {}
    }
    let (a, delay) = {
        let mut s = state.lock().unwrap();
        let a = s.handle(&method, &path, &query, auth.as_deref(), &body);
        (a, s.answer_delay.filter(|_| path == "/api/v1/tests/"))
    };
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    if drop_after {
        return Err(Dropped);
    }
    Ok(respond(a))
}

fn respond((status, body, headers): Answer) -> Response<Full<Bytes>> {
    let mut r = Response::builder()
        .status(status)
        .header("content-type", "application/json");
    for (k, v) in headers {
        r = r.header(k, v);
    }
    r.body(Full::new(Bytes::from(body.to_string()))).unwrap()
}
