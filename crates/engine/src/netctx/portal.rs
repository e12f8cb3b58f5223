//! Captive portal detection: one plain HTTP request to a URL that answers
//! the same to everyone. A portal (hotel, airport, café Wi-Fi asking to sign
//! in) answers it with a redirect or its own login page instead.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The most of the answer's body that is read.
const MAX_BODY: usize = 4096;
const TIMEOUT: Duration = Duration::from_secs(3);

/// What the check found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Portal {
    /// The expected answer: nothing in the way.
    Clear,
    /// Something else answered: a portal. `location` is where it redirects
    /// (its login page), when it does.
    Detected {
        status: u16,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        location: Option<String>,
    },
    /// No answer at all (offline, the URL blocked): not a portal.
    Unknown { reason: String },
}

/// Checks `url`: `expect` is the first line of the body when nothing is in
/// the way, or empty for an empty `204 No Content`.
pub async fn check(url: &str, expect: &str) -> Portal {
    let unknown = |reason: String| Portal::Unknown { reason };
    // No cookies, no redirects followed, nothing about this machine. (TLS
    // is configured for an https:// URL, though a portal shows on http://.)
    let tls = match crate::probe::tls::client_config(false, None, &[b"http/1.1"]) {
        Ok(t) => t,
        Err(e) => return unknown(e.message),
    };
    let client = match reqwest::Client::builder()
        .tls_backend_preconfigured((*tls).clone())
        .timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("WaddlePerf")
        .build()
    {
        Ok(c) => c,
        Err(e) => return unknown(e.to_string()),
    };
    let mut resp = match client.get(url).send().await {
        Ok(r) => r,
        Err(e) => return unknown(format!("{url}: {e}")),
    };
    let status = resp.status().as_u16();
    let location = resp
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.chars().take(512).collect::<String>());
    let mut body = Vec::new();
    while body.len() < MAX_BODY {
        match tokio::time::timeout(TIMEOUT, resp.chunk()).await {
            Ok(Ok(Some(c))) => body.extend_from_slice(&c[..c.len().min(MAX_BODY - body.len())]),
            Ok(Ok(None)) => break,
            // A body cut short still tells what it began with.
            Ok(Err(_)) | Err(_) => break,
        }
    }
    let expected = if expect.is_empty() {
        status == 204 && body.is_empty()
    } else {
        status == 200
            && String::from_utf8_lossy(&body)
                .lines()
                .next()
                .is_some_and(|l| l.trim() == expect.trim())
    };
    if expected {
        Portal::Clear
    } else {
        Portal::Detected { status, location }
    }
}
