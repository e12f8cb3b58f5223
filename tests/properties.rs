//! Property tests of everything that parses what a user or a file gives:
//! targets, URLs, host names, DNS servers and record types, whole
//! configuration files. On any input: no panic, and an error that names the
//! input it refuses (cut to a readable length). 512 cases each in CI.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use waddleperf_engine::config::Config;
use waddleperf_engine::spec::{
    parse_host, parse_http_url, parse_record_type, query_name, DnsServer, HostPort,
};

/// `host:port` as a pair, as the parser returns it.
fn split_host_port(s: &str) -> Result<(String, u16), String> {
    HostPort::parse(s).map(|hp| (hp.host, hp.port))
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Text that looks like what people type: host-ish characters, digits,
/// brackets, colons, signs, whitespace, and now and then anything at all.
fn typed() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9.:\\[\\]+\\- _/%@]{0,40}",
        "[0-9]{1,25}[a-z]{0,4}",
        ".{0,60}",
    ]
}

/// Whether an error names the input: the input itself, or (when long or
/// odd) its first characters.
fn names(err: &str, input: &str) -> bool {
    let head: String = input.trim().chars().take(20).collect();
    err.contains(&head) || err.contains(input)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn targets_parse_or_name_the_input(s in typed()) {
        match split_host_port(&s) {
            Ok((host, port)) => {
                prop_assert!(port > 0);
                prop_assert!(!host.is_empty());
                prop_assert!(s.contains(&port.to_string()));
            }
            Err(e) => prop_assert!(names(&e, &s), "{e:?} for {s:?}"),
        }
    }

    #[test]
    fn ports_are_digits_only(host in "[a-z]{1,10}", sign in "[+\\- ]", port in 1u16..) {
        let s = format!("{host}:{sign}{port}");
        prop_assert!(split_host_port(&s).is_err(), "{s} accepted");
        prop_assert_eq!(split_host_port(&format!("{host}:{port}")).unwrap(), (host, port));
    }

    #[test]
    fn urls_hosts_and_dns_servers_never_panic(s in typed()) {
        if let Err(e) = parse_http_url(&s) {
            prop_assert!(names(&e, &s), "{e:?} for {s:?}");
        }
        let _ = parse_host(&s);
        let _ = DnsServer::parse(&s);
        if let Err(e) = parse_record_type(&s) {
            prop_assert!(!e.is_empty());
        }
        if let Ok(t) = parse_record_type("A") {
            let _ = query_name(&s, t);
        }
    }

    #[test]
    fn configuration_text_never_panics(
        key in "[a-z_.]{1,30}",
        value in prop_oneof![
            "-?[0-9]{1,30}(\\.[0-9]{1,5})?",
            "\"[^\"\\\\]{0,40}\"",
            "(true|false)",
            "\\[[0-9, \"a-z]{0,30}\\]",
        ],
        table in prop_oneof![
            Just(""), Just("[schedule]\n"), Just("[probe]\n"), Just("[sync]\n"),
            Just("[autoperf.thresholds]\n"), Just("[[suite.http]]\n"), Just("[[suite.tcp]]\n"),
            Just("[[suite.dns]]\n"), Just("[[tier2.icmp]]\n"), Just("[notifications]\n"),
        ],
    ) {
        let text = format!("{table}{key} = {value}\n");
        if let Err(e) = Config::parse(&text, "cfg.toml") {
            let shown = e.to_string();
            prop_assert!(shown.starts_with("cfg.toml"), "{shown}");
            prop_assert!(shown.len() < 2000, "{} bytes", shown.len());
        }
    }

    #[test]
    fn any_text_as_a_configuration_never_panics(text in ".{0,300}") {
        let _ = Config::parse(&text, "cfg.toml");
    }
}
