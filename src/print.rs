//! Text output of results, status and events (escaped: a peer's words never
//! reach the terminal as control sequences).

use chrono::{DateTime, Utc};
use std::io::Write;
use waddleperf_engine::model::Measurement;
use waddleperf_engine::runtime::Status;
use waddleperf_engine::store::StoredEvent;

pub(crate) fn print_table(out: &mut dyn Write, results: &[Measurement]) -> std::io::Result<()> {
    if results.is_empty() {
        return writeln!(out, "no results");
    }
    let tw = results
        .iter()
        .map(|r| r.target.chars().count())
        .max()
        .unwrap_or(6)
        .clamp(6, 48);
    writeln!(
        out,
        "{:<20}  {:<5}  {:<tw$}  {:<14}  {:>10}  DETAILS",
        "TIME (UTC)", "TYPE", "TARGET", "RESULT", "LATENCY"
    )?;
    for r in results {
        let status = if r.success {
            "ok".to_owned()
        } else {
            format!("FAIL {}", r.error_kind.map(|k| k.as_str()).unwrap_or("?"))
        };
        let latency = r
            .latency_ms
            .map(|l| format!("{l:.1} ms"))
            .unwrap_or_else(|| "-".into());
        let mut target: String = r.target.chars().take(tw).collect();
        if r.target.chars().count() > tw {
            target.pop();
            target.push('…');
        }
        writeln!(
            out,
            "{:<20}  {:<5}  {:<tw$}  {:<14}  {:>10}  {}",
            r.started_at.format("%Y-%m-%d %H:%M:%S"),
            r.test_type.as_str(),
            target,
            status,
            latency,
            r.summary()
        )?;
    }
    Ok(())
}

pub(crate) fn print_test(out: &mut dyn Write, m: &Measurement) -> std::io::Result<()> {
    let verdict = if m.success { "ok" } else { "FAILED" };
    writeln!(out, "{} {}: {verdict}", m.test_type, m.target)?;
    let metrics = serde_json::to_value(&m.metrics).unwrap_or_default();
    let obj = metrics.as_object();
    // One column for every name: the longest (bandwidth's are long).
    let w = obj
        .map(|o| o.keys().map(String::len).max().unwrap_or(0))
        .unwrap_or(0)
        .max(12);
    let line = |out: &mut dyn Write, k: &str, v: &str| writeln!(out, "  {k:<w$} {v}");
    if let (Some(k), Some(e)) = (m.error_kind, &m.error) {
        line(out, "error", &format!("{k}: {e}"))?;
    }
    if let Some(ip) = &m.resolved_ip {
        line(out, "address", ip)?;
    }
    if let Some(obj) = obj {
        for (k, v) in obj {
            if k == "hops" || k == "ports" {
                continue;
            }
            let shown = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(n) if k.ends_with("_ms") => {
                    format!("{:.3} ms", n.as_f64().unwrap_or_default())
                }
                other => other.to_string(),
            };
            line(out, k, &shown)?;
        }
    }
    if let Some(l) = m.latency_ms {
        line(out, "latency_ms", &format!("{l:.3} ms"))?;
    }
    line(out, "duration_ms", &format!("{:.3} ms", m.duration_ms))?;
    if let Some(ports) = &m.metrics.ports {
        writeln!(out, "  {:>5}  {:<8}  {:>10}", "PORT", "STATE", "CONNECT")?;
        for p in ports {
            let took = p
                .connect_ms
                .map_or("*".to_owned(), |v| format!("{v:.3} ms"));
            writeln!(
                out,
                "  {:>5}  {:<8}  {:>10}",
                p.port,
                p.state.as_str(),
                took
            )?;
        }
    }
    if let Some(hops) = &m.metrics.hops {
        writeln!(
            out,
            "  {:>3}  {:<40}  {:>5}  {:>6}  {:>9}  {:>9}  {:>9}",
            "TTL", "ADDRESS", "SENT", "LOSS", "MIN", "MEAN", "MAX"
        )?;
        let f = |v: Option<f64>| v.map_or("*".to_owned(), |v| format!("{v:.3}"));
        for h in hops {
            let who = match (&h.ip, &h.name) {
                (Some(ip), Some(n)) => format!("{n} ({ip})"),
                (Some(ip), None) => ip.clone(),
                _ => "*".into(),
            };
            writeln!(
                out,
                "  {:>3}  {:<40}  {:>5}  {:>5.1}%  {:>9}  {:>9}  {:>9}",
                h.ttl,
                who,
                h.sent,
                h.loss_pct,
                f(h.min_ms),
                f(h.mean_ms),
                f(h.max_ms)
            )?;
        }
    }
    Ok(())
}

pub(crate) fn when(t: &DateTime<Utc>) -> String {
    t.with_timezone(&chrono::Local)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

pub(crate) fn ago(t: &DateTime<Utc>, now: DateTime<Utc>) -> String {
    let d = now - *t;
    let (n, unit, dir) = if d.num_seconds() >= 0 {
        (d.num_seconds(), "ago", true)
    } else {
        (-d.num_seconds(), "from now", false)
    };
    let span = match n {
        0..=89 => format!("{n} s"),
        90..=5399 => format!("{} min", (n + 30) / 60),
        5400..=129_599 => format!("{:.1} h", n as f64 / 3600.0),
        _ => format!("{:.1} d", n as f64 / 86_400.0),
    };
    if dir {
        format!("{span} {unit}")
    } else {
        format!("in {span}")
    }
}

pub(crate) fn print_status(
    out: &mut dyn Write,
    s: &Status,
    agent: Option<Option<u32>>,
    now: DateTime<Utc>,
) -> std::io::Result<()> {
    match (agent, &s.agent) {
        (Some(pid), a) => {
            let pid = pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
            let next = match a.as_ref().and_then(|a| a.next_run) {
                Some(t) => format!(", next run {} ({})", when(&t), ago(&t, now)),
                None => String::new(),
            };
            writeln!(out, "agent         running{pid}{next}")?;
        }
        (None, _) => writeln!(
            out,
            "agent         not running (start `waddleperf daemon` or the desktop app)"
        )?,
    }
    writeln!(
        out,
        "monitoring    {}",
        if s.paused {
            "paused (`waddleperf resume` to resume)"
        } else {
            "active"
        }
    )?;
    match &s.network {
        Some(n) => writeln!(out, "network       {} ({})", n.name(), n.id)?,
        None => writeln!(out, "network       none (no default route) or not readable")?,
    }
    match &s.last_run {
        Some(l) => {
            let tiers: Vec<String> = l.tiers.iter().map(u8::to_string).collect();
            writeln!(
                out,
                "last run      {} ({}), {:?}, tier {}, {} tests, {} failed",
                when(&l.finished_at),
                ago(&l.finished_at, now),
                l.reason,
                tiers.join("+"),
                l.total,
                l.failed
            )?
        }
        None => writeln!(out, "last run      never")?,
    }
    match s.health {
        Some(h) => writeln!(out, "health        {h}")?,
        None => writeln!(out, "health        unknown (no run yet)")?,
    }
    for t in &s.targets_health {
        let reason = t
            .reason
            .as_deref()
            .map(|r| format!("  ({r})"))
            .unwrap_or_default();
        writeln!(
            out,
            "  {:<9} {:<5} {}{reason}",
            t.health.as_str(),
            t.test_type.as_str(),
            t.target
        )?;
    }
    let mut tier = format!("tier {}", s.autoperf.level);
    if s.autoperf.level > 1 {
        tier.push_str(" (escalated)");
    }
    if let Some(t3) = &s.autoperf.tier3_last_run {
        tier.push_str(&format!(", tier 3 last ran {}", when(t3)));
    }
    writeln!(out, "autoperf      {tier}")?;
    if s.connectivity.lost {
        let since = s
            .connectivity
            .since
            .map(|t| format!(" since {}", when(&t)))
            .unwrap_or_default();
        writeln!(out, "connectivity  lost{since}")?;
    } else {
        writeln!(out, "connectivity  ok")?;
    }
    for (name, f) in &s.task_failures {
        writeln!(
            out,
            "task          {name} FAILED {} time(s), restarted; last {}: {}",
            f.failures,
            when(&f.last_failed_at),
            f.last_error
        )?;
    }
    writeln!(
        out,
        "results       {} stored; {} waiting to sync, {} refused (dead letters)",
        s.store.results, s.store.outbox_pending, s.store.outbox_dead
    )
}

pub(crate) fn print_events(out: &mut dyn Write, events: &[StoredEvent]) -> std::io::Result<()> {
    if events.is_empty() {
        return writeln!(out, "no events");
    }
    for e in events {
        writeln!(out, "{}  {:<21} {}", when(&e.at), e.kind, e.message)?;
    }
    Ok(())
}
