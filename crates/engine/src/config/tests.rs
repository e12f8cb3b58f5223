use super::*;

fn invalid(text: &str) -> ConfigError {
    Config::parse(text, "cfg.toml").expect_err("config should be rejected")
}

#[test]
fn every_probe_type_is_a_suite_entry_and_bad_values_name_their_key() {
    let c = Config::parse(
        r#"
[[suite.dns]]
name = "example.com"
type = "mx"
server = "192.0.2.53:5353"
[[suite.udp]]
target = "192.0.2.7:7"
count = 20
[[suite.icmp]]
host = "2001:db8::1"
family = "ipv6"
[[suite.traceroute]]
host = "example.com"
rounds = 10
[[suite.mtu]]
host = "192.0.2.1"
max = 1500
[[suite.http]]
url = "https://example.com/"
mode = "http3"
"#,
        "x",
    )
    .unwrap();
    assert_eq!(c.target_count(), 6);
    let plans = crate::plan::Plans::new(&c);
    let plan = plans.tier(1);
    let types: Vec<_> = plan.iter().map(|p| p.probe.test_type().as_str()).collect();
    assert_eq!(types, ["http", "dns", "udp", "icmp", "traceroute", "mtu"]);
    assert_eq!(plan[1].probe.target(), "example.com MX @192.0.2.53:5353");

    for (text, key) in [
        (
            "[[suite.dns]]\nname = \"x.com\"\ntype = \"AXFR\"\n",
            "suite.dns[0].type",
        ),
        (
            "[[suite.dns]]\nname = \"x.com\"\nserver = \"a b\"\n",
            "suite.dns[0].server",
        ),
        (
            "[[suite.udp]]\ntarget = \"nohost\"\n",
            "suite.udp[0].target",
        ),
        (
            "[[suite.udp]]\ntarget = \"h:7\"\nsize = 4\n",
            "suite.udp[0].size",
        ),
        (
            "[[suite.icmp]]\nhost = \"h\"\ncount = 0\n",
            "suite.icmp[0].count",
        ),
        ("[[suite.icmp]]\nhost = \"h:80\"\n", "suite.icmp[0].host"),
        (
            "[[suite.icmp]]\nhost = \"h\"\n[[suite.icmp]]\nhost = \"h\"\n",
            "suite.icmp[1].host",
        ),
        (
            "[[suite.traceroute]]\nhost = \"h\"\nmax_hops = 0\n",
            "suite.traceroute[0].max_hops",
        ),
        (
            "[[suite.traceroute]]\nhost = \"h\"\nrounds = 0\n",
            "suite.traceroute[0].rounds",
        ),
        (
            "[[suite.mtu]]\nhost = \"h\"\nmax = 100\n",
            "suite.mtu[0].max",
        ),
        (
            "[[suite.http]]\nurl = \"http://h/\"\nmode = \"http3\"\n",
            "suite.http[0].mode",
        ),
    ] {
        let e = invalid(text);
        assert_eq!(e.key(), Some(key), "{text}: {e}");
        assert!(
            e.to_string().starts_with("cfg.toml:"),
            "names the file and line: {e}"
        );
    }
}

#[test]
fn default_file_is_the_default_config() {
    let parsed = Config::parse(DEFAULT_TOML, "default").unwrap();
    let def = Config::default();
    // Spans differ (the parsed file has real ones); compare the values.
    assert_eq!(parsed.schedule, def.schedule);
    assert_eq!(parsed.store, def.store);
    assert_eq!(parsed.probe, def.probe);
    assert_eq!(parsed.autoperf, def.autoperf);
    assert_eq!(parsed.notifications, def.notifications);
    assert_eq!(parsed.log, def.log);
    assert_eq!(
        (parsed.tier2.is_none(), parsed.tier3.is_none()),
        (true, true)
    );
    let urls = |c: &Config| {
        c.suite
            .http
            .iter()
            .map(|t| t.get_ref().clone())
            .collect::<Vec<_>>()
    };
    let tcps = |c: &Config| {
        c.suite
            .tcp
            .iter()
            .map(|t| t.get_ref().clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(urls(&parsed), urls(&def));
    assert_eq!(tcps(&parsed), tcps(&def));
    def.validate("default", None).unwrap();
}

#[test]
fn empty_file_gives_defaults_and_suite_can_be_replaced() {
    let c = Config::parse("", "x").unwrap();
    assert_eq!(c.schedule, Schedule::default());
    assert_eq!(
        c.target_count(),
        6,
        "a file without [suite] keeps the default suite"
    );
    let c = Config::parse("[[suite.tcp]]\ntarget = \"a:1\"\n", "x").unwrap();
    assert_eq!(
        c.target_count(),
        1,
        "a [suite] replaces the default suite whole"
    );
    let c = Config::parse(
        "[[suite.tcp]]\ntarget = \"[::1]:22\"\nmode = \"ssh\"\n",
        "x",
    )
    .unwrap();
    assert_eq!(c.suite.tcp[0].get_ref().mode, TcpMode::Ssh);
}

#[test]
fn unknown_keys_are_reported_with_their_line() {
    let e = invalid("[schedule]\ninterval_minutes = 5\nfrequency = 3\n").to_string();
    assert!(
        e.starts_with("cfg.toml:3: unknown field `frequency`, expected one of"),
        "{e}"
    );
    let e = invalid("[[suite.http]]\nurl = \"https://a/\"\nverify = false\n").to_string();
    assert!(e.contains("verify"), "{e}");
    let e = invalid("[sweet]\n").to_string();
    assert!(e.contains("sweet"), "{e}");
}

#[test]
fn wrong_types_name_the_key() {
    let e = invalid("[schedule]\ninterval_minutes = \"hourly\"\n").to_string();
    assert!(
        e.starts_with("cfg.toml:2: `interval_minutes`: invalid type"),
        "{e}"
    );
    let e = invalid("[[suite.http]]\nurl = \"https://a/\"\nmode = \"http9\"\n").to_string();
    assert!(
        e.contains("http9") && e.starts_with("cfg.toml:3: `mode`"),
        "{e}"
    );
    let e = invalid("[[suite.tcp]]\nmode = \"raw\"\n").to_string();
    assert!(e.contains("target"), "missing required key named: {e}");
}

#[test]
fn bad_values_name_key_and_line() {
    let cases: &[(&str, &str, usize)] = &[
        (
            "[schedule]\ninterval_minutes = 0\n",
            "schedule.interval_minutes",
            2,
        ),
        ("[store]\n\nretention_days = 0\n", "store.retention_days", 3),
        ("[probe]\ntimeout_ms = 5\n", "probe.timeout_ms", 2),
        ("[probe]\nmax_redirects = 99\n", "probe.max_redirects", 2),
        ("[probe]\nmax_body_bytes = 0\n", "probe.max_body_bytes", 2),
        (
            "\n[[suite.http]]\nurl = \"ftp://x/\"\n",
            "suite.http[0].url",
            3,
        ),
        (
            "[[suite.http]]\nurl = \"https://a/\"\n[[suite.http]]\nurl = \"not a url\"\n",
            "suite.http[1].url",
            4,
        ),
        (
            "[[suite.http]]\nurl = \"https://a/\"\ntimeout_ms = 1\n",
            "suite.http[0].timeout_ms",
            3,
        ),
        (
            "[[suite.http]]\nurl = \"https://a/\"\nca_file = \"/nonexistent/ca.pem\"\n",
            "suite.http[0].ca_file",
            3,
        ),
        (
            "[[suite.tcp]]\ntarget = \"example.com\"\n",
            "suite.tcp[0].target",
            2,
        ),
        (
            "[[suite.tcp]]\ntarget = \"example.com:99999\"\n",
            "suite.tcp[0].target",
            2,
        ),
        (
            "[[suite.tcp]]\ntarget = \"::1:22\"\n",
            "suite.tcp[0].target",
            2,
        ),
        (
            "[[suite.tcp]]\ntarget = \"a:1\"\nserver_name = \"b\"\n",
            "suite.tcp[0].mode",
            1,
        ),
        (
            "[[suite.tcp]]\ntarget = \"a:1\"\n[[suite.tcp]]\ntarget = \"a:1\"\n",
            "suite.tcp[1].target",
            4,
        ),
        (
            "[schedule]\ninterval_minutes = 10\noffset_seconds = 600\n",
            "schedule.offset_seconds",
            3,
        ),
        ("[schedule]\nconcurrency = 0\n", "schedule.concurrency", 2),
        (
            "[autoperf]\nescalate_after = 0\n",
            "autoperf.escalate_after",
            2,
        ),
        (
            "[autoperf]\ntier3_cooldown_minutes = 99999\n",
            "autoperf.tier3_cooldown_minutes",
            2,
        ),
        (
            "[autoperf.thresholds]\nloss_pct = 101.0\n",
            "autoperf.thresholds.loss_pct",
            2,
        ),
        (
            "[autoperf.thresholds]\n\nlatency_ms = -1.0\n",
            "autoperf.thresholds.latency_ms",
            3,
        ),
        ("[log]\nlevel = \"loud\"\n", "log.level", 2),
        ("[log]\nretention_days = 0\n", "log.retention_days", 2),
        (
            "[notifications]\nmin_interval_minutes = 20000\n",
            "notifications.min_interval_minutes",
            2,
        ),
        (
            "[[suite.tcp]]\ntarget = \"a:1\"\nthresholds = { latency_ms = -5.0 }\n",
            "suite.tcp[0].thresholds.latency_ms",
            3,
        ),
        (
            "[[tier2.http]]\nurl = \"gopher://x/\"\n",
            "tier2.http[0].url",
            2,
        ),
    ];
    for (text, key, line) in cases {
        let e = invalid(text);
        assert_eq!(e.key(), Some(*key), "for {text:?}: {e}");
        let shown = e.to_string();
        assert!(
            shown.starts_with(&format!("cfg.toml:{line}: `{key}`")),
            "for {text:?}: {shown}"
        );
    }
}

#[test]
fn tier_suites_are_configured_or_derived() {
    use crate::probe::AnyProbe;
    let c = Config::parse(
        "[[suite.http]]\nurl = \"https://a.example/x\"\nthresholds = { http_total_ms = 500.0 }\n\
             [[suite.http]]\nurl = \"http://b.example/\"\n\
             [[suite.tcp]]\ntarget = \"c.example:443\"\nmode = \"tls\"\n\
             [[suite.http]]\nurl = \"https://c.example/\"\n",
        "x",
    )
    .unwrap();
    let plans = crate::plan::Plans::new(&c);
    let t2 = plans.tier(2);
    assert_eq!(t2.len(), 1, "c.example:443 is already checked in tier 1");
    let AnyProbe::Tcp(tls) = &t2[0].probe else {
        panic!("{:?}", t2[0].probe)
    };
    assert_eq!(tls.address.to_string(), "a.example:443");
    assert_eq!(tls.mode, TcpMode::Tls);
    assert_eq!(
        t2[0].thresholds.http_total_ms, 500.0,
        "the target's thresholds follow it"
    );
    let t3 = plans.tier(3);
    let modes: Vec<(String, HttpMode)> = t3
        .iter()
        .filter_map(|p| match &p.probe {
            AnyProbe::Http(h) => Some((h.written.clone(), h.mode)),
            _ => None,
        })
        .collect();
    assert_eq!(
        modes,
        [
            ("https://a.example/x".to_owned(), HttpMode::Http1),
            ("https://a.example/x".to_owned(), HttpMode::Http2),
            ("http://b.example/".to_owned(), HttpMode::Http1),
            ("https://c.example/".to_owned(), HttpMode::Http1),
            ("https://c.example/".to_owned(), HttpMode::Http2),
        ]
    );
    let tcp3 = t3
        .iter()
        .filter(|p| matches!(p.probe, AnyProbe::Tcp(_)))
        .count();
    assert_eq!(tcp3, 1, "tier 3 includes tier 2");
    let c = Config::parse("[[tier2.tcp]]\ntarget = \"z:22\"\nmode = \"ssh\"\n", "x").unwrap();
    let plans = crate::plan::Plans::new(&c);
    assert_eq!(plans.tier(2)[0].probe.target(), "ssh://z:22");
    let tcp1 = plans
        .tier(1)
        .iter()
        .filter(|p| matches!(p.probe, AnyProbe::Tcp(_)))
        .count();
    assert_eq!(tcp1, 2, "tier 1 stays the default suite");
}

#[test]
fn missing_file_means_defaults_unreadable_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let c = Config::load(&dir.path().join("none.toml")).unwrap();
    assert_eq!(c, Config::default());
    let e = Config::load(dir.path()).unwrap_err();
    assert!(matches!(e, ConfigError::Read { .. }), "{e}");
}

#[test]
fn round_trips_through_toml() {
    let c = Config::default();
    let back = Config::parse(&c.to_toml(), "rendered").unwrap();
    assert_eq!(back.schedule, c.schedule);
    assert_eq!(back.suite.http.len(), 2);
}

#[test]
fn one_meaning_per_key_with_the_old_reply_wait_still_read() {
    use crate::plan::Plans;
    use crate::probe::AnyProbe;
    use std::time::Duration;
    let c = Config::parse(
        "[probe]\ntimeout_ms = 4000\n\
         [[suite.icmp]]\nhost = \"192.0.2.1\"\ntimeout_ms = 700\n\
         [[suite.mtu]]\nhost = \"192.0.2.2\"\nreply_wait_ms = 300\n\
         [[suite.dns]]\nname = \"example.com\"\ntimeout_ms = 900\n",
        "x",
    )
    .unwrap();
    let plans = Plans::new(&c);
    for p in plans.tier(1) {
        match &p.probe {
            AnyProbe::Icmp(i) => {
                assert_eq!(i.reply_wait, Duration::from_millis(700), "old name");
                assert_eq!(i.timeout, Duration::from_millis(4000), "[probe] limit");
            }
            AnyProbe::Mtu(m) => {
                assert_eq!(m.reply_wait, Duration::from_millis(300));
                assert_eq!(m.timeout, Duration::from_millis(4000));
            }
            AnyProbe::Dns(d) => assert_eq!(d.timeout, Duration::from_millis(900)),
            other => panic!("{other:?}"),
        }
    }
    let notes = c.deprecations();
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].0, "suite.icmp[0].timeout_ms");
}
