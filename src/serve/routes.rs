//! What the HTTP peer answers, by method and path: a pure function of the
//! request line, so every path and every bad parameter is tested without a
//! socket.
//!
//! | path | answer |
//! |---|---|
//! | `GET /health` | `{"status":"healthy","version":…}` |
//! | `GET /speedtest/ping` | `{"pong":true,"timestamp":<unix ms>}` |
//! | `GET /speedtest/download?size=N` | N MiB (1–100, default 10) of random bytes |
//! | `POST /speedtest/upload` | the body counted: `{"success","bytes_received","duration_ms","throughput_mbps"}` |
//! | `GET /speedtest/info` | the server's limits |
//! | `POST /speedtest/result` | a client's result, logged: `{"success":true}` |
//! | `GET /garbage[.php]?ckSize=N` | LibreSpeed: N MiB (1–1024, default 100) |
//! | `GET\|POST /empty[.php]` | LibreSpeed: an empty answer, the body drained |
//! | `GET /getIP[.php]` | LibreSpeed: `{"processedString":<client address>,"rawIspInfo":""}` |
//! | `GET /.well-known/nq` | responsiveness: the three URLs below |
//! | `GET /rpm/small` | 1 byte |
//! | `GET /rpm/large` | bytes until the client stops (or `--max-seconds`) |
//! | `POST /rpm/upload` | a sink: the body counted and dropped |
//!
//! LibreSpeed's paths are also served under `/backend/`, where its own
//! server keeps them.

const MIB: u64 = 1 << 20;

/// One request's answer, before any byte of it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Health,
    Ping,
    Info,
    /// A body of this many bytes, or until the client stops (`None`).
    Download(Option<u64>),
    /// Count the body; answer in WaddlePerf's (`true`) or LibreSpeed's way.
    Upload {
        report: bool,
    },
    Result,
    Empty,
    ClientIp,
    NqConfig,
    Small,
    Preflight,
    /// An answer naming what is wrong.
    Error(u16, String),
}

pub fn route(method: &str, target: &str) -> Route {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let librespeed = path.strip_prefix("/backend").unwrap_or(path);
    let librespeed = librespeed.strip_suffix(".php").unwrap_or(librespeed);
    let get = matches!(method, "GET" | "HEAD");
    if method == "OPTIONS" {
        return Route::Preflight;
    }
    let r = match (path, librespeed) {
        ("/health", _) => get.then_some(Route::Health),
        ("/speedtest/ping", _) => get.then_some(Route::Ping),
        ("/speedtest/info", _) => get.then_some(Route::Info),
        ("/speedtest/download", _) => {
            return if get {
                size_param(query, "size", 10, 100)
                    .map(|n| Route::Download(Some(n * MIB)))
                    .unwrap_or_else(|e| Route::Error(400, e))
            } else {
                not_allowed(method, path)
            };
        }
        ("/speedtest/upload", _) => (method == "POST").then_some(Route::Upload { report: true }),
        ("/speedtest/result", _) => (method == "POST").then_some(Route::Result),
        ("/.well-known/nq", _) => get.then_some(Route::NqConfig),
        ("/rpm/small", _) => get.then_some(Route::Small),
        ("/rpm/large", _) => get.then_some(Route::Download(None)),
        ("/rpm/upload", _) => {
            matches!(method, "POST" | "PUT").then_some(Route::Upload { report: false })
        }
        (_, "/garbage") => {
            return if get {
                size_param(query, "ckSize", 100, 1024)
                    .map(|n| Route::Download(Some(n * MIB)))
                    .unwrap_or_else(|e| Route::Error(400, e))
            } else {
                not_allowed(method, path)
            };
        }
        (_, "/empty") => match method {
            "GET" | "HEAD" => Some(Route::Empty),
            "POST" | "PUT" => Some(Route::Upload { report: false }),
            _ => None,
        },
        (_, "/getIP") => get.then_some(Route::ClientIp),
        _ => return Route::Error(404, format!("no such path: {}", printable(path))),
    };
    r.unwrap_or_else(|| not_allowed(method, path))
}

fn not_allowed(method: &str, path: &str) -> Route {
    Route::Error(
        405,
        format!(
            "{} is not allowed on {}",
            printable(method),
            printable(path)
        ),
    )
}

/// `name=N` from the query: whole MiB in `1..=max`, `default` when absent.
fn size_param(query: &str, name: &str, default: u64, max: u64) -> Result<u64, String> {
    let Some(v) = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
    else {
        return Ok(default);
    };
    match v.parse::<u64>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "{name} must be a whole number of MiB from 1 to {max}, not {:?}",
            printable(v)
        )),
    }
}

/// At most 100 characters of what a client sent, control characters
/// escaped, for an error answer or a log line.
pub fn printable(s: &str) -> String {
    s.chars().take(100).flat_map(char::escape_default).collect()
}

/// The host the client asked for, when it is a plain `host[:port]` fit to
/// put back into a URL; else `None`.
pub fn plain_host(h: &str) -> Option<&str> {
    let ok = !h.is_empty()
        && h.len() <= 255
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]_".contains(&b));
    ok.then_some(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_of_the_three_server_kinds() {
        assert_eq!(route("GET", "/health"), Route::Health);
        assert_eq!(route("GET", "/speedtest/ping?t=1"), Route::Ping);
        assert_eq!(route("GET", "/speedtest/info"), Route::Info);
        assert_eq!(
            route("GET", "/speedtest/download"),
            Route::Download(Some(10 * MIB))
        );
        assert_eq!(
            route("GET", "/speedtest/download?size=100"),
            Route::Download(Some(100 * MIB))
        );
        assert_eq!(
            route("POST", "/speedtest/upload"),
            Route::Upload { report: true }
        );
        assert_eq!(route("POST", "/speedtest/result"), Route::Result);
        for prefix in ["", "/backend"] {
            for ext in ["", ".php"] {
                assert_eq!(
                    route("GET", &format!("{prefix}/garbage{ext}?r=0.5&ckSize=20")),
                    Route::Download(Some(20 * MIB))
                );
                assert_eq!(
                    route("GET", &format!("{prefix}/empty{ext}?r=1")),
                    Route::Empty
                );
                assert_eq!(
                    route("POST", &format!("{prefix}/empty{ext}?r=1")),
                    Route::Upload { report: false }
                );
                assert_eq!(
                    route("GET", &format!("{prefix}/getIP{ext}?isp=true")),
                    Route::ClientIp
                );
            }
        }
        assert_eq!(route("GET", "/garbage"), Route::Download(Some(100 * MIB)));
        assert_eq!(route("GET", "/.well-known/nq"), Route::NqConfig);
        assert_eq!(route("GET", "/rpm/small"), Route::Small);
        assert_eq!(route("GET", "/rpm/large"), Route::Download(None));
        assert_eq!(route("PUT", "/rpm/upload"), Route::Upload { report: false });
        assert_eq!(route("OPTIONS", "/empty.php"), Route::Preflight);
    }

    #[test]
    fn bad_requests_say_what_is_wrong() {
        let Route::Error(400, e) = route("GET", "/speedtest/download?size=0") else {
            panic!("size 0 accepted")
        };
        assert!(e.contains("size") && e.contains("1 to 100"), "{e}");
        assert!(matches!(
            route("GET", "/garbage.php?ckSize=5000"),
            Route::Error(400, _)
        ));
        assert!(matches!(
            route("GET", "/speedtest/download?size=-3"),
            Route::Error(400, _)
        ));
        let Route::Error(405, e) = route("DELETE", "/speedtest/upload") else {
            panic!("DELETE accepted")
        };
        assert!(e.contains("DELETE"), "{e}");
        let Route::Error(404, e) = route("GET", "/etc/\x1b[2Jpasswd") else {
            panic!("unknown path served")
        };
        assert!(!e.contains('\x1b'), "{e}");
    }

    #[test]
    fn only_plain_hosts_go_back_into_urls() {
        assert_eq!(plain_host("peer.lan:8080"), Some("peer.lan:8080"));
        assert_eq!(plain_host("[::1]:8080"), Some("[::1]:8080"));
        assert_eq!(plain_host("evil\"}/x"), None);
        assert_eq!(plain_host(""), None);
    }
}
