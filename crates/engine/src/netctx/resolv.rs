//! DNS servers from `resolv.conf` (Linux, and macOS where it mirrors the
//! system configuration).

use std::io::Read;
use std::path::Path;

/// At most this much of a resolv.conf is read.
const MAX_BYTES: u64 = 64 * 1024;

/// The `nameserver` addresses of a resolv.conf text, in order, without
/// duplicates (scope ids kept: `fe80::1%eth0`).
pub fn parse(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        let line = line.split(['#', ';']).next().unwrap_or("");
        let mut words = line.split_whitespace();
        if words.next() != Some("nameserver") {
            continue;
        }
        let Some(addr) = words.next() else { continue };
        let bare = addr.split('%').next().unwrap_or(addr);
        if bare.parse::<std::net::IpAddr>().is_ok() && !out.iter().any(|a| a == addr) {
            out.push(addr.to_owned());
        }
    }
    out
}

fn read_bounded(path: &Path) -> Option<String> {
    let f = std::fs::File::open(path).ok()?;
    let mut s = String::new();
    f.take(MAX_BYTES).read_to_string(&mut s).ok()?;
    Some(s)
}

/// The DNS servers this machine's resolver uses: `/etc/resolv.conf`, and
/// when that names only the local systemd-resolved stub (127.0.0.53), the
/// upstream servers it forwards to.
pub fn nameservers() -> Vec<String> {
    let etc = read_bounded(Path::new("/etc/resolv.conf"))
        .map(|t| parse(&t))
        .unwrap_or_default();
    if !etc.is_empty() && etc.iter().all(|a| a == "127.0.0.53" || a == "127.0.0.54") {
        let upstream = read_bounded(Path::new("/run/systemd/resolve/resolv.conf"))
            .map(|t| parse(&t))
            .unwrap_or_default();
        if !upstream.is_empty() {
            return upstream;
        }
    }
    etc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nameservers_in_order_without_comments_or_junk() {
        let text = "# generated\nsearch example.com\nnameserver 10.0.0.53\n\
                    nameserver   2001:db8::53 # v6\n;nameserver 9.9.9.9\n\
                    nameserver not-an-address\nnameserver 10.0.0.53\n\
                    nameserver fe80::1%eth0\noptions edns0\nnameserver\n";
        assert_eq!(parse(text), ["10.0.0.53", "2001:db8::53", "fe80::1%eth0"]);
        assert!(parse("").is_empty());
        assert!(parse("\u{0}\u{ff}garbage").is_empty());
    }
}
