//! The history on first use by many processes at once, and damaged: a new
//! database opened by 20 processes in the same instant stores every result;
//! a file with a damaged data page is refused by every command and left
//! untouched, `db check` names the damage, and `db recover` copies the rest
//! with each result's upload state.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(target_os = "linux")]

use waddleperf_testkit as support;

use std::process::Output;
use support::cli_home::{results, text, Home};
use waddleperf_engine::store::{Store, SCHEMA_VERSION};

#[test]
fn threads_opening_a_new_database_at_once_migrate_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.db");
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(16));
    let handles: Vec<_> = (0..16)
        .map(|_| {
            let (path, barrier) = (path.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let mut s = Store::open(&path)?;
                s.insert(&results(1))
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap().unwrap(), 1);
    }
    let s = Store::open(&path).unwrap();
    assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
    assert_eq!(s.stats().unwrap().results, 16);
    assert!(s.check().unwrap().is_empty());
}

#[test]
fn twenty_processes_on_a_new_database_store_every_result() {
    let h = Home::new("");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let target = listener.local_addr().unwrap().to_string();
    let children: Vec<_> = (0..20)
        .map(|_| {
            h.cmd(&["test", "tcp", &target, "--json"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", text(&o));
    }
    let s = Store::open(&h.db()).unwrap();
    assert_eq!(s.stats().unwrap().results, 20);
    assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
}

#[test]
fn the_database_and_its_folders_are_the_users_alone() {
    use std::os::unix::fs::PermissionsExt;
    let h = Home::new("");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let target = listener.local_addr().unwrap().to_string();
    h.ok(&["test", "tcp", &target]);
    h.ok(&["config", "init", "--force"]);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&h.db()), 0o600, "database");
    assert_eq!(mode(h.db().parent().unwrap()), 0o700, "data folder");
    assert_eq!(mode(&h.root.join("config.toml")), 0o600, "config");
    for side in ["-wal", "-shm"] {
        let p = std::path::PathBuf::from(format!("{}{side}", h.db().display()));
        if p.exists() {
            assert_eq!(mode(&p), 0o600, "{side}");
        }
    }
}

/// A database of `n` results: the first `delivered` uploaded, the next
/// `dead` refused by the server, the rest waiting.
fn history(h: &Home, n: usize, delivered: usize, dead: usize) -> Vec<uuid::Uuid> {
    let mut s = Store::open(&h.db()).unwrap();
    let rs = results(n);
    s.insert(&rs).unwrap();
    for m in &rs[..delivered] {
        s.outbox_delivered(&m.id).unwrap();
    }
    for m in &rs[delivered..delivered + dead] {
        s.outbox_dead(&m.id, "400: refused").unwrap();
    }
    rs.iter().map(|m| m.id).collect()
}

/// Overwrites a leaf page of `results` in the middle of the file with
/// random bytes; returns how many rows that page held.
fn damage_a_results_page(db: &std::path::Path) -> u64 {
    let (page, cells, size) = {
        let c = rusqlite::Connection::open(db).unwrap();
        let size: u64 = c.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap();
        let leaves: Vec<(u64, u64)> = c
            .prepare(
                "SELECT pageno, ncell FROM dbstat WHERE name = 'results' AND pagetype = 'leaf' \
                 ORDER BY pageno",
            )
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(leaves.len() > 4, "{} leaves", leaves.len());
        let (p, n) = leaves[leaves.len() / 2];
        (p, n, size)
    };
    use std::io::{Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new().write(true).open(db).unwrap();
    f.seek(SeekFrom::Start((page - 1) * size)).unwrap();
    let noise: Vec<u8> = (0..size).map(|_| fastrand::u8(..)).collect();
    f.write_all(&noise).unwrap();
    cells
}

fn digest(p: &std::path::Path) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(std::fs::read(p).unwrap()).to_vec()
}

fn fails_on_damage(o: &Output, what: &str) {
    assert_eq!(o.status.code(), Some(1), "{what}: {}", text(o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("corrupt"), "{what}: {err}");
    assert!(err.contains("waddleperf db recover"), "{what}: {err}");
}

#[test]
fn a_damaged_page_is_refused_everywhere_and_recovered_with_upload_states() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let target = listener.local_addr().unwrap().to_string();
    let h = Home::new(&format!(
        "[schedule]\nrun_on_start = false\n\n[[suite.tcp]]\ntarget = \"{target}\"\n"
    ));
    let n = 3000;
    let ids = history(&h, n, 1000, 10);
    let lost = damage_a_results_page(&h.db());
    let before = digest(&h.db());

    for args in [
        vec!["history"],
        vec!["status"],
        vec!["run"],
        vec!["test", "tcp", target.as_str()],
        vec!["export", "--format", "json"],
    ] {
        fails_on_damage(&h.wp(&args), &args.join(" "));
    }
    assert_eq!(digest(&h.db()), before, "the damaged file was written to");

    let o = h.wp(&["db", "check"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("DAMAGED"));
    let o = h.wp(&["db", "check", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["ok"], false);
    assert!(!report["problems"].as_array().unwrap().is_empty());

    let out = h.ok(&["db", "recover", "--replace", "--json"]);
    let rec: serde_json::Value = serde_json::from_str(&out).unwrap();
    println!("lost page held {lost} rows; recovery: {rec}");
    let copied = rec["results"].as_u64().unwrap();
    assert_eq!(
        copied,
        n as u64 - lost,
        "only the damaged page's rows are lost"
    );
    assert!(rec["damaged_ranges"].as_u64().unwrap() >= 1);
    // Upload states: delivered stay delivered (never sent twice), dead stay
    // dead, waiting stay waiting.
    let (delivered, dead, pending) = (
        rec["delivered"].as_u64().unwrap(),
        rec["dead"].as_u64().unwrap(),
        rec["pending"].as_u64().unwrap(),
    );
    assert_eq!(
        delivered + dead + pending + rec["outcome_unknown"].as_u64().unwrap(),
        copied
    );
    assert!(delivered <= 1000 && delivered + lost >= 1000, "{delivered}");
    assert!(dead <= 10 && dead + lost >= 10, "{dead}");
    let kept = rec["damaged_kept_at"].as_str().unwrap();
    assert_eq!(
        digest(std::path::Path::new(kept)),
        before,
        "the damaged file is kept as it was"
    );

    // The recovered history is whole and in use.
    assert!(h.ok(&["db", "check"]).contains(": ok"));
    let s = Store::open(&h.db()).unwrap();
    assert_eq!(s.stats().unwrap().results, copied);
    for id in &ids[..1000] {
        if let Some(m) = s.get(id).unwrap() {
            assert!(
                s.outbox_due(chrono::Utc::now(), 5000)
                    .unwrap()
                    .iter()
                    .all(|o| o.result.id != m.id),
                "a delivered result is queued again"
            );
            break;
        }
    }
    assert_eq!(s.dead_letters().unwrap().len() as u64, dead);
    drop(s);
    h.ok(&["test", "tcp", target.as_str()]);
    let rows = h.ok(&["history", "--json"]).lines().count() as u64;
    assert_eq!(rows, copied + 1);
}
