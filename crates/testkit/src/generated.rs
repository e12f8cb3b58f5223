//! Generated files kept in the repository (the UI's TypeScript types): one
//! shape for them, and one check that they are what their generator gives.

use std::path::Path;

/// A TypeScript module of `declarations` (each ts-rs's `decl()` of a type),
/// exported, under a header saying how to regenerate it. 64-bit integers
/// arrive as JSON numbers (serde_json writes them so), and every count and
/// id the UI gets stays far below 2^53: they are `number`, not `bigint`.
pub fn typescript_module(header: &str, declarations: &[String]) -> String {
    let mut out = String::from(header);
    for d in declarations {
        out.push_str("export ");
        out.push_str(&d.replace("bigint", "number"));
        out.push_str("\n\n");
    }
    out.trim_end().to_owned() + "\n"
}

/// Fails when `path` is not `want`, saying to run `regenerate`; with
/// `WADDLEPERF_WRITE_TS` set, writes `want` there instead.
pub fn check_or_write(path: &Path, want: &str, regenerate: &str) {
    if std::env::var_os("WADDLEPERF_WRITE_TS").is_some() {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("the generated files' folder");
        }
        std::fs::write(path, want).expect("write the generated file");
        return;
    }
    let have = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        have == want,
        "{} is stale: the Rust types changed. Run `{regenerate}` and commit the file",
        path.display()
    );
}
