//! The unified API client against the contract double: sign-in with the MFA
//! round, refresh and logout, enrollment, uploads with the server's quirks
//! (generic 400 for a duplicate, required fields, integer ids), read-back,
//! heartbeat, and each injected fault typed the way the sync worker needs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use waddleperf_testkit as support;

use serde_json::json;
use std::time::Duration;
use support::unified_api::{ApiDouble, Fault, User};
use waddleperf_engine::model::{Measurement, TestType};
use waddleperf_engine::sync::api::{jwt_expiry, Api, ApiError, EnrollRequest};
use waddleperf_engine::sync::payload::{upload_body, Destination, NetworkShare};

fn alice(mfa: Option<&str>) -> User {
    User {
        id: 1,
        username: "alice".into(),
        email: "alice@example.com".into(),
        password: "correct horse".into(),
        mfa_code: mfa.map(str::to_owned),
        active: true,
    }
}

fn enroll_request(secret: &str, org: i64) -> EnrollRequest {
    EnrollRequest {
        enrollment_secret: secret.into(),
        org_id: org,
        device_name: "alice-laptop".into(),
        device_type: "desktop".into(),
        os_type: "linux".into(),
        os_version: "Debian 12".into(),
        hardware_id: "ab".repeat(32),
        device_metadata: json!({"client": "waddleperf-desktop"}),
    }
}

fn result(target: &str) -> Measurement {
    let mut m = Measurement::begin(TestType::Tcp, target);
    m.success = true;
    m.duration_ms = 12.5;
    m.latency_ms = Some(12.0);
    m.metrics.connect_ms = Some(12.0);
    m
}

#[tokio::test]
async fn sign_in_with_mfa_refresh_and_logout() {
    let srv = ApiDouble::start().await;
    srv.add_user(alice(Some("123456")));
    let api = Api::new(&srv.url, None).unwrap();
    assert_eq!(api.health().await.unwrap().status, "healthy");

    let e = api.login("alice", "wrong", None).await.unwrap_err();
    assert_eq!(
        e,
        ApiError::Unauthorized {
            message: "Invalid email or password".into()
        }
    );
    assert_eq!(
        api.login("alice@example.com", "correct horse", None)
            .await
            .unwrap_err(),
        ApiError::MfaRequired
    );
    let e = api
        .login("alice", "correct horse", Some("000000"))
        .await
        .unwrap_err();
    assert!(matches!(e, ApiError::Unauthorized { ref message } if message == "Invalid MFA token"));
    let t = api
        .login("alice", "correct horse", Some("123456"))
        .await
        .unwrap();
    assert_eq!(t.user_id, 1);
    let exp = jwt_expiry(&t.access_token).unwrap();
    let left = exp - chrono::Utc::now();
    assert!((86_300..=86_400).contains(&left.num_seconds()), "{left}");
    let e = api.login("", "", None).await.unwrap_err();
    assert!(matches!(e, ApiError::Refused { status: 400, .. }), "{e}");

    let access = api.refresh(&t.refresh_token).await.unwrap();
    assert!(jwt_expiry(&access).is_some());
    // Refresh tokens issued in the same second as the logout are revoked too.
    api.logout(&access).await.unwrap();
    let e = api.refresh(&t.refresh_token).await.unwrap_err();
    assert!(matches!(e, ApiError::Unauthorized { .. }), "{e}");
    srv.fault("/api/v1/auth/refresh", Fault::RefreshRefused);
    let t = api
        .login("alice", "correct horse", Some("123456"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(matches!(
        api.refresh(&t.refresh_token).await,
        Err(ApiError::Unauthorized { .. })
    ));
}

#[tokio::test]
async fn enrollment_uploads_and_the_servers_quirks() {
    let srv = ApiDouble::start().await;
    srv.add_user(alice(None));
    srv.add_secret(1, "s3cret");
    let api = Api::new(&srv.url, None).unwrap();
    let t = api.login("alice", "correct horse", None).await.unwrap();
    let tok = Some(t.access_token.as_str());

    let e = api
        .enroll(tok, &enroll_request("nope", 1))
        .await
        .unwrap_err();
    assert_eq!(
        e,
        ApiError::Refused {
            status: 400,
            message: "Invalid or expired enrollment secret".into()
        }
    );
    let en = api.enroll(tok, &enroll_request("s3cret", 1)).await.unwrap();
    assert_eq!((en.id, en.organization_id), (1, 1));
    assert_eq!(en.device_id.len(), 32);
    let to = Destination {
        organization_id: en.organization_id,
        device_id: en.id,
    };

    let m = result("10.0.0.1:443");
    let body = upload_body(&m, to, NetworkShare::NONE);
    assert!(matches!(
        api.upload(None, &body).await,
        Err(ApiError::Unauthorized { .. })
    ));
    api.upload(tok, &body).await.unwrap();
    // A duplicate is the same generic 400 as any refusal.
    let dup = api.upload(tok, &body).await.unwrap_err();
    assert_eq!(
        dup,
        ApiError::Refused {
            status: 400,
            message: "Failed to create test result".into()
        }
    );
    let mut missing = upload_body(&result("x:1"), to, NetworkShare::NONE);
    missing.as_object_mut().unwrap().remove("name");
    assert_eq!(
        api.upload(tok, &missing).await.unwrap_err(),
        ApiError::Refused {
            status: 400,
            message: "Missing required field: name".into()
        }
    );
    let mut stringly = upload_body(&result("x:2"), to, NetworkShare::NONE);
    stringly["organization_id"] = json!("1");
    assert!(matches!(
        api.upload(tok, &stringly).await,
        Err(ApiError::Refused { status: 400, .. })
    ));

    let ids = api.list_test_ids(tok, 1, en.id, 100, 0).await.unwrap();
    assert_eq!(ids, [m.id.to_string()]);
    let stored = srv.state.lock().unwrap().tests[0].clone();
    assert_eq!(stored["metrics"]["latency_ms"], 12.0);
    assert_eq!(stored["metadata"]["test_type"], "tcp");
    api.heartbeat(tok, en.id, Some(chrono::Utc::now()))
        .await
        .unwrap();
    assert_eq!(srv.state.lock().unwrap().heartbeats.len(), 1);
}

#[tokio::test]
async fn faults_are_typed_for_the_worker() {
    let srv = ApiDouble::start().await;
    srv.add_user(alice(None));
    let api = Api::new(&srv.url, None).unwrap();
    let t = api.login("alice", "correct horse", None).await.unwrap();
    let tok = Some(t.access_token.as_str());
    srv.add_secret(1, "s");
    let en = api.enroll(tok, &enroll_request("s", 1)).await.unwrap();
    let to = Destination {
        organization_id: 1,
        device_id: en.id,
    };

    srv.fault("/api/v1/tests/", Fault::Status(500));
    let e = api
        .upload(tok, &upload_body(&result("a:1"), to, NetworkShare::NONE))
        .await
        .unwrap_err();
    assert!(
        matches!(e, ApiError::Server { status: 500, .. }) && e.is_transient(),
        "{e}"
    );
    assert!(!e.maybe_received());

    srv.fault(
        "/api/v1/tests/",
        Fault::TooMany {
            retry_after_s: Some(7),
        },
    );
    let e = api
        .upload(tok, &upload_body(&result("a:2"), to, NetworkShare::NONE))
        .await
        .unwrap_err();
    assert_eq!(
        e,
        ApiError::RateLimited {
            retry_after: Some(Duration::from_secs(7))
        }
    );

    // The server stores the result, then the connection drops: no answer,
    // the result may have been received — and it was.
    let m = result("a:3");
    srv.fault("/api/v1/tests/", Fault::DropAfterWork);
    let e = api
        .upload(tok, &upload_body(&m, to, NetworkShare::NONE))
        .await
        .unwrap_err();
    assert!(e.maybe_received() && e.is_transient(), "{e}");
    assert_eq!(srv.test_ids(), [m.id.to_string()]);

    srv.fault("/health", Fault::Slow(Duration::from_millis(300)));
    let t0 = std::time::Instant::now();
    api.health().await.unwrap();
    assert!(t0.elapsed() >= Duration::from_millis(300));

    srv.set_down(true);
    let e = api.health().await.unwrap_err();
    assert!(e.is_transient(), "{e}");
    srv.set_down(false);
    api.health().await.unwrap();

    // Redirects are not followed: typed, transient, naming the target.
    srv.fault(
        "/api/v1/tests/",
        Fault::Redirect {
            status: 308,
            location: "https://elsewhere.example/api/v1/tests/".into(),
        },
    );
    let e = api
        .upload(tok, &upload_body(&result("a:4"), to, NetworkShare::NONE))
        .await
        .unwrap_err();
    assert!(
        matches!(e, ApiError::Redirected { status: 308, ref location, .. } if location == "https://elsewhere.example/api/v1/tests/")
            && e.is_transient()
            && !e.maybe_received(),
        "{e}"
    );
    // A device an administrator deleted: the heartbeat says so.
    srv.remove_device(en.id);
    let e = api.heartbeat(tok, en.id, None).await.unwrap_err();
    assert!(matches!(e, ApiError::DeviceGone { .. }), "{e}");

    // Nothing listening: the request never left.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let e = Api::new(&url, None).unwrap().health().await.unwrap_err();
    assert!(
        matches!(e, ApiError::Unreachable { .. }) && !e.maybe_received(),
        "{e}"
    );
}
