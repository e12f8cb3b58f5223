//! The desktop for real, under Xvfb and a private D-Bus session bus: the
//! agent (`waddleperf-tray`, which owns the runtime and the tray icon) and
//! the window (`waddleperf-desktop`, a client of the agent's control
//! socket). Through WebDriver in the window's WebKit webview: Run now →
//! live progress → the rows and a drawn chart in History; a setting changed,
//! kept across a new window; the speed test; the agent killed and the
//! window showing it, then recovering with a new agent. Through the tray
//! icon in an XEmbed tray (trayer) clicked with xdotool (Run tests now,
//! Quit), and as a StatusNotifierItem read and clicked over D-Bus (menu
//! labels, status line, icon state, the CLI's pause, Open and the window
//! ended after it is closed); the window started with no agent running,
//! and the agent taking its place. Targets are local peers: nginx over HTTPS
//! with a test CA, plain HTTP, and a TCP port. Screenshots go to
//! `<target>/e2e/` as CI artifacts.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(target_os = "linux")]

use waddleperf_testkit as support;

mod common;
mod launch;
mod package;
mod tray;

use common::*;
use std::time::Duration;
use support::desktop::{artifacts_dir, desktop_bin, Display, Driver, Session};
use waddleperf_engine::store::Store;

#[test]
fn run_now_history_chart_and_settings_in_the_webview() {
    scenario(
        "the desktop end-to-end test (nginx on loopback)",
        webview_scenario(),
    );
}

async fn webview_scenario() {
    let app = desktop_bin();
    let peers = peers();
    let files = Files::new(&peers.config);
    let display = Display::start(false);
    let mut agent = files.start_agent(&display);
    let driver = Driver::start(&display);
    let shots = artifacts_dir();

    // 1. Overview: Run now, live progress, every target's result.
    let s = Session::start(&driver, &app, &files.args(Some("overview"))).await;
    s.wait_for(
        "the Overview page",
        "return document.querySelector('#run-now') !== null",
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(files.stored(), 0, "run_on_start is off: nothing yet");
    s.click("#run-now").await;
    let done = s
        .wait_for(
            "the run's progress to finish",
            "const t = document.querySelector('#progress-text'); \
             return t && t.textContent.startsWith('Done') ? t.textContent : null",
            Duration::from_secs(60),
        )
        .await;
    println!("progress: {done}");
    assert_eq!(done, format!("Done: {} tests, 0 failed", peers.targets));
    let progress = s
        .exec(
            "const p = document.querySelector('#progress'); const b = document.querySelector('#progress-bar'); \
             return {hidden: p.hidden, value: b.value, max: b.max, \
                     live: [...document.querySelectorAll('#live-results li')].map(li => li.textContent)}",
        )
        .await;
    println!("progress section: {progress}");
    assert_eq!(progress["hidden"], false);
    assert_eq!(progress["value"].as_f64(), Some(peers.targets as f64));
    assert_eq!(progress["max"].as_f64(), Some(peers.targets as f64));
    let live = progress["live"].as_array().unwrap();
    assert_eq!(live.len(), peers.targets, "{live:?}");
    assert!(
        live.iter()
            .any(|l| l.as_str().unwrap().starts_with("HTTP https://127.0.0.1:")),
        "{live:?}"
    );
    assert_eq!(
        files.stored(),
        peers.targets,
        "the run's rows are in the database"
    );
    s.wait_for(
        "health per target",
        "return document.querySelectorAll('#health-grid .target.health-ok').length === 3",
        Duration::from_secs(20),
    )
    .await;

    // A second run, so the history has more than one result per target.
    s.click("#run-now").await;
    s.wait_for(
        "the second run",
        "const t = document.querySelector('#progress-text'); return t && t.textContent.startsWith('Done') \
         && document.querySelectorAll('#live-results li').length === 3 && !document.querySelector('#run-now').disabled",
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(files.stored(), 2 * peers.targets);

    // 2. History: the new rows in the table, and charts drawn from them.
    s.click("#nav-history").await;
    let rows = s
        .wait_for(
            "the History table",
            "const r = document.querySelectorAll('#history-table tbody tr'); return r.length >= 6 ? r.length : null",
            Duration::from_secs(30),
        )
        .await;
    assert_eq!(rows.as_u64(), Some(2 * peers.targets as u64));
    let chart = s
        .wait_for(
            "the latency chart",
            "const c = document.querySelector('#chart-latency canvas'); if (!c) return null; \
             const ctx = c.getContext('2d'); const d = ctx.getImageData(0, 0, c.width, c.height).data; \
             let coloured = 0; for (let i = 0; i < d.length; i += 4) { \
               const [r, g, b, a] = [d[i], d[i+1], d[i+2], d[i+3]]; \
               if (a > 0 && (Math.max(r, g, b) - Math.min(r, g, b)) > 60) coloured++; } \
             return coloured > 0 ? {coloured, width: c.width, height: c.height, \
               firstChartMs: Number(document.querySelector('#main').dataset.firstChartMs)} : null",
            Duration::from_secs(30),
        )
        .await;
    println!("latency chart: {chart}");
    assert!(chart["coloured"].as_u64().unwrap() > 0);
    let legend = s
        .exec("return [...document.querySelectorAll('#chart-latency .legend li')].map(l => l.textContent)")
        .await;
    assert_eq!(
        legend.as_array().map(Vec::len),
        Some(peers.targets),
        "{legend}"
    );
    let phases = s
        .exec("return document.querySelector('#chart-phases canvas') !== null")
        .await;
    assert_eq!(phases, true, "the HTTP phase chart is drawn");
    s.screenshot(&shots.join("history.png")).await;

    // Export CSV: a file in Downloads with every result of the range.
    s.click("#export-csv").await;
    let saved = s
        .wait_for(
            "the export",
            "const t = document.querySelector('#history-status').textContent; return t.startsWith('Saved') ? t : null",
            Duration::from_secs(20),
        )
        .await;
    let saved = saved.as_str().unwrap();
    let path = saved.split(" to ").nth(1).unwrap();
    assert!(path.starts_with(display.home.path().join("Downloads").to_str().unwrap()));
    // Parsed, it is the stored results: every id, target, outcome and latency.
    let stored = waddleperf_engine::store::Store::open(&files.db())
        .unwrap()
        .history(&Default::default())
        .unwrap();
    assert_eq!(stored.len(), 2 * peers.targets);
    let (header, rows) = support::parse_csv(&std::fs::read_to_string(path).unwrap());
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let mut by_id: std::collections::HashMap<&str, &Vec<String>> =
        rows.iter().map(|r| (r[col("id")].as_str(), r)).collect();
    assert_eq!(rows.len(), stored.len(), "{rows:?}");
    for m in &stored {
        let row = by_id
            .remove(m.id.to_string().as_str())
            .expect("every stored result exported");
        assert_eq!(row[col("target")], m.target);
        assert_eq!(row[col("success")], m.success.to_string());
        if let Some(l) = m.latency_ms {
            let exported: f64 = row[col("latency_ms")].parse().unwrap();
            assert!((exported - l).abs() < 1e-3, "{exported} vs {l}");
        }
    }
    // And as JSON lines, the same results.
    s.click("#export-json").await;
    let saved = s
        .wait_for(
            "the JSON export",
            "const t = document.querySelector('#history-status').textContent; return t.startsWith('Saved') && t.includes('.json') ? t : null",
            Duration::from_secs(20),
        )
        .await;
    let path = saved
        .as_str()
        .unwrap()
        .split(" to ")
        .nth(1)
        .unwrap()
        .to_owned();
    let exported: Vec<waddleperf_engine::Measurement> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut ids: Vec<_> = exported.iter().map(|m| (m.id, m.target.clone())).collect();
    let mut want: Vec<_> = stored.iter().map(|m| (m.id, m.target.clone())).collect();
    ids.sort();
    want.sort();
    assert_eq!(ids, want);

    // 3. Settings: a bad URL is refused on its field; a new interval is kept.
    s.click("#nav-settings").await;
    s.wait_for(
        "the Settings page",
        "return document.querySelector('#interval') !== null",
        Duration::from_secs(20),
    )
    .await;
    s.fill("#http-1-url", "ftp://127.0.0.1/").await;
    s.click("#save-settings").await;
    let refused = s
        .wait_for(
            "the validation message",
            "const e = document.querySelector('#settings-error'); return e && !e.hidden ? \
             {summary: e.textContent, invalid: document.querySelector('#http-1-url').getAttribute('aria-invalid'), \
              field: document.querySelector('#http-1-error').textContent} : null",
            Duration::from_secs(20),
        )
        .await;
    println!("refused: {refused}");
    assert_eq!(refused["invalid"], "true");
    assert!(refused["summary"]
        .as_str()
        .unwrap()
        .starts_with("Not saved: HTTP target 2, URL:"));
    assert!(!std::fs::read_to_string(files.config())
        .unwrap()
        .contains("ftp://"));
    s.fill(
        "#http-1-url",
        &format!("http://127.0.0.1:{}/", peers._nginx.http.port()),
    )
    .await;
    s.fill("#interval", "15").await;
    s.click("#save-settings").await;
    s.wait_for(
        "the save",
        "return document.querySelector('#settings-saved').textContent.startsWith('Saved')",
        Duration::from_secs(20),
    )
    .await;
    let text = std::fs::read_to_string(files.config()).unwrap();
    assert!(text.contains("interval_minutes = 15"), "{text}");
    s.end().await;

    // 4. A new window: the agent has kept it.
    let s = Session::start(&driver, &app, &files.args(Some("settings"))).await;
    let interval = s
        .wait_for(
            "the Settings page in a new window",
            "const i = document.querySelector('#interval'); return i ? i.value : null",
            Duration::from_secs(60),
        )
        .await;
    assert_eq!(interval, "15");
    let header = s
        .wait_for(
            "the header status",
            "return document.querySelector('#top-status').textContent",
            Duration::from_secs(20),
        )
        .await;
    println!("header after restart: {header}");
    assert!(header.as_str().unwrap().starts_with("Last run"));

    // 5. The speed test from the Overview: live figures while it runs, then
    // the rates and the grade in words; its two results stored.
    s.click("#nav-overview").await;
    s.wait_for(
        "the Overview page",
        "return document.querySelector('#speed-test') !== null",
        Duration::from_secs(20),
    )
    .await;
    s.click("#speed-test").await;
    let live = s
        .wait_for(
            "the speed test's live figures",
            "const t = document.querySelector('#speed-now').textContent; \
             const m = document.querySelector('#overview-message').textContent; \
             return t.includes(' s)') || m ? {live: t, message: m} : null",
            Duration::from_secs(30),
        )
        .await;
    println!("speed test, live: {live}");
    assert!(live["live"].as_str().unwrap().contains("bit/s"), "{live}");
    let done = s
        .wait_for(
            "the speed test's result",
            "const t = document.querySelector('#speed-now').textContent; \
             return t.startsWith('Download') && !document.querySelector('#speed-test').disabled ? \
             {text: t, rows: document.querySelectorAll('#speed-results li.ok').length} : null",
            Duration::from_secs(60),
        )
        .await;
    println!("speed test: {done}");
    assert_eq!(done["rows"].as_u64(), Some(SPEED_RESULTS as u64));
    assert!(done["text"].as_str().unwrap().contains("upload"), "{done}");
    assert_eq!(files.stored(), 2 * peers.targets + SPEED_RESULTS);
    s.screenshot(&shots.join("speed-test.png")).await;

    // 6. The agent killed while the window is open: the window says so,
    // and comes back by itself when a new agent starts.
    agent.kill().unwrap();
    agent.wait().unwrap();
    let said = s
        .wait_for(
            "the disconnected state",
            "const b = document.querySelector('#agent-banner'); \
             return document.body.dataset.agent === 'disconnected' && !b.hidden ? b.textContent : null",
            Duration::from_secs(20),
        )
        .await;
    println!("agent killed: {said}");
    assert!(said
        .as_str()
        .unwrap()
        .starts_with("The WaddlePerf agent is not running"));
    s.screenshot(&shots.join("agent-gone.png")).await;
    let mut agent = files.start_agent(&display);
    s.wait_for(
        "the window reconnected",
        "return document.body.dataset.agent === 'connected' && document.querySelector('#agent-banner').hidden \
         && document.querySelector('#top-status').textContent.startsWith('Last run')",
        Duration::from_secs(20),
    )
    .await;
    // And it works through the new agent.
    s.click("#nav-history").await;
    s.wait_for(
        "the History table from the new agent",
        &format!(
            "return document.querySelectorAll('#history-table tbody tr').length === {}",
            2 * peers.targets + SPEED_RESULTS
        ),
        Duration::from_secs(30),
    )
    .await;
    s.end().await;
    drop(driver);
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(agent.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    assert!(agent.wait().unwrap().success());
    assert_eq!(
        Store::open(&files.db()).unwrap().check().unwrap(),
        Vec::<String>::new()
    );
}
