//! Text from the network or a file, made safe for a terminal (part of the
//! CLI binary). A server's banner, error message or header can hold control
//! characters; printed raw, they could clear the screen, move the cursor,
//! rewrite earlier lines or retitle the window. Text output shows them as
//! escapes instead; JSON and CSV output keep the data as it came.

use std::borrow::Cow;
use std::io::Write;

/// Whether `c` must not reach a terminal as it is: C0 controls other than
/// newline and tab, DEL, and the C1 controls (U+0080 to U+009F; U+009B
/// starts an escape sequence on some terminals).
fn is_unsafe(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t') || ('\u{80}'..='\u{9f}').contains(&c)
}

/// `s` with every unsafe character shown as an escape (`\e`, `\r`, `\x07`,
/// `\u{9b}`).
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\u{1b}' => out.push_str("\\e"),
            '\r' => out.push_str("\\r"),
            c if is_unsafe(c) && (c as u32) < 0x80 => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if is_unsafe(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// A writer that escapes everything written through it (tables, `status`,
/// `sync`: every text output that can carry a peer's words).
pub struct Escaping<W: Write>(pub W);

impl<W: Write> Write for Escaping<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // `write!` hands over whole `str` pieces, so each call is whole UTF-8.
        let s = String::from_utf8_lossy(buf);
        self.0.write_all(escape(&s).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// An error and its causes on one line, each cause said once: many of the
/// engine's errors already quote their cause, which a plain `{:#}` would then
/// repeat ("Is a directory (os error 21): Is a directory (os error 21)").
pub fn error_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.contains(text.as_str()) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    escape(&line).into_owned()
}

/// Whether an error is a closed output pipe (`waddleperf history | head`):
/// the reader has what it wanted, so the program ends quietly.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || c.downcast_ref::<serde_json::Error>()
                .and_then(serde_json::Error::io_error_kind)
                == Some(std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_shown_not_obeyed() {
        assert_eq!(escape("SSH-2.0-OpenSSH_9.2"), "SSH-2.0-OpenSSH_9.2");
        assert_eq!(
            escape("SSH-2.0-x\u{1b}[2J\u{1b}]0;pwned\u{7}"),
            "SSH-2.0-x\\e[2J\\e]0;pwned\\x07"
        );
        assert_eq!(escape("a\rb\u{9b}31m\u{7f}"), "a\\rb\\u{9b}31m\\x7f");
        assert_eq!(escape("line\n\tnext é ✓"), "line\n\tnext é ✓");
        let mut w = Escaping(Vec::new());
        let peer = "\u{1b}[31mred";
        write!(w, "ok {peer}").unwrap_or_default();
        assert_eq!(String::from_utf8_lossy(&w.0), "ok \\e[31mred");
    }

    #[test]
    fn causes_are_said_once() {
        let io = std::io::Error::from_raw_os_error(21);
        let shown = io.to_string();
        #[derive(Debug, thiserror::Error)]
        #[error("cannot open the database /x: {0}")]
        struct Open(#[source] std::io::Error);
        let e = anyhow::Error::from(Open(io)).context("database /x");
        let line = error_line(&e);
        assert_eq!(line.matches(shown.as_str()).count(), 1, "{line}");
        assert!(
            line.starts_with("database /x: cannot open the database /x: "),
            "{line}"
        );
    }

    #[test]
    fn broken_pipes_are_recognised_through_wrapping() {
        let io = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        let e = anyhow::Error::from(io).context("writing results");
        assert!(is_broken_pipe(&e));
        let json = serde_json::Error::io(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        assert!(is_broken_pipe(&anyhow::Error::from(json)));
        assert!(!is_broken_pipe(&anyhow::anyhow!("other")));
    }
}
