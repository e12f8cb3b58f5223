//! `waddleperf login`, `logout`, `enroll`, `sync`, and the sync part of
//! `status` (part of the CLI binary).

use anyhow::{bail, Context, Result};
use chrono::Utc;
use clap::Args;
use std::io::{BufRead, IsTerminal, Write};
use waddleperf_engine::config::Paths;
use waddleperf_engine::sync::api::ApiError;
use waddleperf_engine::sync::secrets::SecretStoreKind;
use waddleperf_engine::sync::{SyncError, SyncStatus, Syncer};

#[derive(Args)]
pub struct LoginArgs {
    /// The WaddlePerf server [default: `[sync] server`, else the one this
    /// device is enrolled with]
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// User name or e-mail [default: asked]
    #[arg(long, env = "WADDLEPERF_USERNAME", value_name = "NAME")]
    username: Option<String>,
    /// Read the password from the first line of stdin (for scripts)
    #[arg(long)]
    password_stdin: bool,
    /// The code from the authenticator app, when the account has MFA
    /// [default: asked when the server wants one]
    #[arg(long, value_name = "CODE")]
    mfa_code: Option<String>,
}

#[derive(Args)]
pub struct EnrollArgs {
    /// The organization's id
    #[arg(long, value_name = "ID")]
    org: i64,
    /// The organization's enrollment secret (from its administrator)
    #[arg(
        long,
        env = "WADDLEPERF_ENROLL_SECRET",
        value_name = "SECRET",
        hide_env_values = true
    )]
    secret: String,
    /// This device's name on the server [default: the host name]
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// The server [default: the one signed in to]
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// Enroll again although this device is enrolled (creates a second
    /// device on the server)
    #[arg(long)]
    force: bool,
}

#[derive(Args)]
pub struct SyncArgs {
    /// List the dead letters (results the server refused) and stop
    #[arg(long, conflicts_with_all = ["retry_dead", "retry"])]
    dead_letters: bool,
    /// Put every dead letter back in the queue, then sync
    #[arg(long)]
    retry_dead: bool,
    /// Put these dead letters (result ids) back in the queue, then sync
    #[arg(long, value_name = "RESULT_ID", num_args = 1.., conflicts_with = "retry_dead")]
    retry: Vec<uuid::Uuid>,
    /// Print the summary as JSON
    #[arg(long)]
    json: bool,
}

fn syncer(paths: &Paths) -> Result<Syncer> {
    let cfg = crate::open::load_config(paths)?;
    let rt = crate::open::open_runtime(paths, cfg)?;
    Ok(Syncer::new(rt, &paths.data_dir))
}

fn prompt(question: &str) -> Result<String> {
    let mut err = std::io::stderr().lock();
    write!(err, "{question}")?;
    err.flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim().to_owned())
}

pub fn login(paths: &Paths, a: LoginArgs) -> Result<()> {
    let tty = std::io::stdin().is_terminal();
    let username = match a.username {
        Some(u) => u,
        None if tty => prompt("User name or e-mail: ")?,
        None => bail!("no user name: pass --username NAME (or set WADDLEPERF_USERNAME)"),
    };
    let password = if a.password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from stdin")?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    } else if tty {
        rpassword::prompt_password("Password: ").context("reading the password")?
    } else {
        bail!("stdin is not a terminal: pass the password with --password-stdin");
    };
    let s = syncer(paths)?;
    let rt = crate::open::tokio_rt()?;
    let first = rt.block_on(s.login(
        a.server.as_deref(),
        &username,
        &password,
        a.mfa_code.as_deref(),
    ));
    let account = match first {
        Err(SyncError::Api(ApiError::MfaRequired)) if a.mfa_code.is_none() => {
            if !tty {
                bail!("this account needs a code from its authenticator app: pass --mfa-code CODE");
            }
            let code = prompt("Code from the authenticator app: ")?;
            rt.block_on(s.login(a.server.as_deref(), &username, &password, Some(&code)))?
        }
        other => other?,
    };
    println!("signed in to {} as {}", account.server, account.username);
    match account.secret_store {
        SecretStoreKind::Keychain => println!("session saved in the system keychain"),
        SecretStoreKind::File => println!(
            "session saved in {} (readable by you only){}",
            s.secrets().file_path().display(),
            account
                .secret_note
                .as_deref()
                .map(|n| format!(": no system keychain here ({n})"))
                .unwrap_or_default()
        ),
    }
    let enrolled = rt.block_on(s.enrollment())?;
    if enrolled.is_none() {
        println!("next: enroll this device with `waddleperf enroll --org ID --secret SECRET`");
    }
    Ok(())
}

pub fn logout(paths: &Paths) -> Result<()> {
    let s = syncer(paths)?;
    match crate::open::tokio_rt()?.block_on(s.logout())? {
        Some(a) => println!(
            "signed out of {} ({}); results keep queueing here until you sign in again",
            a.server, a.username
        ),
        None => println!("not signed in"),
    }
    Ok(())
}

pub fn enroll(paths: &Paths, a: EnrollArgs) -> Result<()> {
    let s = syncer(paths)?;
    let e = crate::open::tokio_rt()?.block_on(s.enroll(
        a.server.as_deref(),
        a.org,
        &a.secret,
        a.name.as_deref(),
        a.force,
    ))?;
    println!(
        "enrolled as \"{}\": device {} ({}) of organization {} on {}",
        e.device_name, e.id, e.device_id, e.organization_id, e.server
    );
    Ok(())
}

/// One pass now. Exits non-zero when the server could not be reached or
/// the pass could not start.
pub fn sync(paths: &Paths, a: SyncArgs) -> Result<()> {
    let s = syncer(paths)?;
    let rt = crate::open::tokio_rt()?;
    let mut out = std::io::stdout().lock();
    if a.dead_letters {
        let dead = rt.block_on(s.dead_letters())?;
        if a.json {
            serde_json::to_writer_pretty(&mut out, &dead)?;
            writeln!(out)?;
        } else if dead.is_empty() {
            writeln!(out, "no dead letters")?;
        } else {
            for d in &dead {
                writeln!(
                    out,
                    "{}  {}  {} {}  after {} attempt(s): {}",
                    d.result_id,
                    d.started_at.format("%Y-%m-%d %H:%M:%S"),
                    d.test_type,
                    d.target,
                    d.attempts,
                    d.error
                )?;
            }
            writeln!(
                out,
                "retry with `waddleperf sync --retry-dead` (or --retry RESULT_ID...)"
            )?;
        }
        return Ok(());
    }
    if a.retry_dead || !a.retry.is_empty() {
        let ids = (!a.retry.is_empty()).then(|| a.retry.clone());
        let n = rt.block_on(s.retry_dead(ids))?;
        writeln!(out, "{n} dead letter(s) back in the queue")?;
    }
    let summary = match rt.block_on(s.pass_all(Utc::now())) {
        Ok(summary) => summary,
        Err(e) if a.json => {
            // Scripts read stdout: the reason goes there too, as JSON.
            let v = serde_json::json!({"ok": false, "kind": sync_error_kind(&e), "error": e.to_string()});
            serde_json::to_writer_pretty(&mut out, &v)?;
            writeln!(out)?;
            return Err(e.into());
        }
        Err(e) => return Err(e.into()),
    };
    if a.json {
        serde_json::to_writer_pretty(&mut out, &summary)?;
        writeln!(out)?;
    } else {
        writeln!(
            out,
            "delivered {} result(s){}; {} waiting; {} dead letter(s){}",
            summary.delivered,
            if summary.settled > 0 {
                format!(" ({} found already on the server)", summary.settled)
            } else {
                String::new()
            },
            summary.remaining,
            summary.dead_total,
            if summary.dead_lettered > 0 {
                format!(
                    " ({} new: see `waddleperf sync --dead-letters`)",
                    summary.dead_lettered
                )
            } else {
                String::new()
            }
        )?;
        if let Some(next) = summary.next_attempt_at {
            writeln!(out, "next attempt {}", crate::print::when(&next))?;
        }
    }
    if let Some(e) = summary.error {
        bail!("sync stopped: {e}");
    }
    Ok(())
}

/// A stable name for why a pass could not run, for `sync --json`.
fn sync_error_kind(e: &SyncError) -> &'static str {
    match e {
        SyncError::Disabled => "disabled",
        SyncError::NoServer => "no_server",
        SyncError::NotSignedIn => "not_signed_in",
        SyncError::SignedOut { .. } => "signed_out",
        SyncError::NotEnrolled => "not_enrolled",
        SyncError::EnrollmentLost { .. } => "enrollment_lost",
        SyncError::AlreadyEnrolled { .. } => "already_enrolled",
        SyncError::ServerMismatch { .. } => "server_mismatch",
        SyncError::Api(_) => "server",
        SyncError::Secrets(_) => "secrets",
        SyncError::Runtime(_) => "store",
        SyncError::Lock { .. } => "lock",
    }
}

/// The sync lines of `status`.
pub fn print_status(out: &mut impl Write, s: &SyncStatus) -> std::io::Result<()> {
    if !s.enabled {
        writeln!(out, "sync          off ([sync] enabled = false)")?;
    }
    match &s.account {
        None => writeln!(out, "account       not signed in (`waddleperf login`)")?,
        Some(a) => {
            match &a.signed_out {
                Some(so) => writeln!(
                    out,
                    "account       SIGNED OUT of {} ({}) since {}: {}; results keep queueing, run `waddleperf login`",
                    a.server,
                    a.username,
                    crate::print::when(&so.at),
                    so.reason
                )?,
                None => writeln!(out, "account       {} on {}", a.username, a.server)?,
            }
            match (&a.secret_store, &s.secrets_file) {
                (SecretStoreKind::File, Some(f)) => writeln!(
                    out,
                    "secrets       in {} (0600): no system keychain{}",
                    f.display(),
                    a.secret_note
                        .as_deref()
                        .map(|n| format!(" ({n})"))
                        .unwrap_or_default()
                )?,
                _ => writeln!(out, "secrets       system keychain")?,
            }
        }
    }
    match &s.enrollment {
        None => writeln!(
            out,
            "enrollment    not enrolled (`waddleperf enroll --org ID --secret SECRET`)"
        )?,
        Some(e) => match &e.lost {
            Some(lost) => writeln!(
                out,
                "enrollment    LOST since {}: device {} \"{}\" no longer exists on {} ({}); results keep queueing, run `waddleperf enroll --force --org {} --secret SECRET`",
                crate::print::when(&lost.at),
                e.id,
                e.device_name,
                e.server,
                lost.reason,
                e.organization_id
            )?,
            None => writeln!(
                out,
                "enrollment    device {} \"{}\" of organization {}",
                e.id, e.device_name, e.organization_id
            )?,
        },
    }
    let p = &s.progress;
    let last = p
        .last_success_at
        .map_or("never".to_owned(), |t| crate::print::when(&t));
    writeln!(
        out,
        "last sync     {last}; {} delivered in all; {} waiting, {} dead letter(s)",
        p.delivered_total, s.pending, s.dead
    )?;
    if let Some(e) = &p.last_error {
        writeln!(out, "sync error    {e}")?;
    }
    if let Some(nb) = p.not_before {
        writeln!(
            out,
            "next attempt  {} (backing off)",
            crate::print::when(&nb)
        )?;
    }
    Ok(())
}
