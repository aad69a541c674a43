//! `kompass serve`: starts the page and its API, and prints a link that opens the page signed
//! in as the development user.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use kompass_core::config::{Config, MIN_KEY_BYTES};
use serde::Serialize;

use super::{CliError, Output};
use crate::cli::{Cli, ServeArgs};
use crate::env::EnvError;
use crate::manager::{Backend, Manager};
use crate::serve::{App, find_www, router, unix_now};

/// The server secret variable.
const SECRET_VAR: &str = "KOMPASS_SERVER_SECRET";
/// The page directory variable.
const WWW_VAR: &str = "KOMPASS_WWW_DIR";
/// How long the printed development token is valid.
const DEV_TOKEN_SECS: u64 = 24 * 60 * 60;

/// What `serve` prints on start-up (with --json, one line).
#[derive(Serialize)]
struct Started {
    /// Where it listens.
    url: String,
    /// The page, signed in as the development user (the token is in the fragment).
    page_url: String,
    /// The development user.
    user: String,
    /// The development token.
    token: String,
    /// When the token expires, RFC 3339 UTC.
    expires_at: String,
    /// Where uploads go.
    backend: Backend,
    /// Whether the server secret was generated for this session only.
    ephemeral_secret: bool,
}

/// `n` random bytes as hex, from the operating system.
fn random_hex(n: usize) -> Result<String, CliError> {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).map_err(|e| {
        CliError::Other(format!("could not read random bytes from the operating system: {e}"))
    })?;
    Ok(hex::encode(bytes))
}

/// The configuration, with an ephemeral server secret when none is set and storage is local
/// (tokens then last as long as this process). With S3 enabled the secret must be set, so a
/// server that shares a bucket never hands out tokens nobody else can verify.
fn load_config(
    cli: &Cli,
) -> Result<(Config, bool, std::collections::BTreeMap<String, String>), CliError> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| ".".into());
    let mut vars = crate::env::variables(&cwd, cli.data_dir.as_deref())?;
    let config = Config::from_env_map(&vars).map_err(EnvError::from)?;
    if config.server_secret().is_ok() {
        return Ok((config, false, vars));
    }
    if config.s3.is_some() {
        return Err(CliError::Usage(format!(
            "{SECRET_VAR} is not set: with S3 enabled, serve needs a fixed secret so that tokens from `kompass token` work. Set it to at least {MIN_KEY_BYTES} random bytes (e.g. `openssl rand -hex 32`) in the environment or .env"
        )));
    }
    vars.insert(SECRET_VAR.into(), random_hex(32)?);
    let config = Config::from_env_map(&vars).map_err(EnvError::from)?;
    Ok((config, true, vars))
}

/// The host to put in a link for a listening address (a wildcard address is not reachable).
fn link_addr(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port())
        }
        _ => addr,
    }
}

/// How old a temp file must be before `serve` removes it at start.
const TEMP_FILE_AGE: std::time::Duration = std::time::Duration::from_secs(60 * 60);

/// How often `kompass serve` uploads queued saves (a bounded batch each time).
pub const SYNC_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// `kompass serve`.
pub async fn serve(cli: &Cli, args: &ServeArgs, out: &Output) -> Result<(), CliError> {
    let dev_user = kompass_core::key::UserId::new(&args.dev_user)
        .map_err(|e| CliError::Usage(format!("--dev-user: {e}")))?;
    let (config, ephemeral, vars) = load_config(cli)?;
    let secret =
        config.server_secret().map_err(|e| CliError::Other(e.to_string()))?.expose_bytes().to_vec();
    let www = find_www(vars.get(WWW_VAR).map(String::as_str).filter(|v| !v.trim().is_empty()))
        .map_err(CliError::Usage)?;
    if !www.join("pkg/kompass_wasm.js").is_file() {
        eprintln!(
            "warning: {} has no wasm package (pkg/kompass_wasm.js): the page cannot scrub files until you run scripts/build-wasm.sh",
            www.display()
        );
    }
    let manager = Manager::open(config)?;
    let backend = manager.preferred_backend();
    let where_ = match manager.config().s3.as_ref() {
        Some(s3) => format!("S3 bucket {}", s3.bucket),
        None => format!("local storage in {}", manager.config().data_directory),
    };
    let mut app = App::new(manager, &secret, www);
    app.metrics_token = vars
        .get(crate::serve::ops::METRICS_TOKEN_VAR)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty());
    app.limiter = crate::serve::limit::RateLimiter::from_setting(
        vars.get(crate::serve::limit::RATE_LIMIT_VAR).map(String::as_str),
    )
    .map_err(CliError::Usage)?;
    let auto_cleanup = app.manager.config().auto_cleanup;
    let app = Arc::new(app);
    // Temp files an earlier run left when it died mid-write (a streamed upload, a save). Only
    // old ones: a CLI save running beside the server may be writing a young one right now.
    let sweep = app.clone();
    tokio::task::spawn_blocking(move || {
        let now = crate::clock::now().to_system_time();
        match sweep.manager.local().sweep_temp_files(TEMP_FILE_AGE, now) {
            Ok(removed) if !removed.is_empty() => {
                tracing::info!("removed {} temp file(s) left by interrupted writes", removed.len())
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("could not sweep temp files left by interrupted writes: {e}"),
        }
    });
    crate::serve::jobs::spawn(
        app.clone(),
        crate::serve::jobs::Jobs::from_vars(&vars, auto_cleanup),
    );
    if app.manager.s3().is_some() {
        // Saves queued during an outage (or a spent budget) go up without anyone asking.
        let bg = app.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SYNC_EVERY);
            loop {
                tick.tick().await;
                match bg.manager.sync(Some(crate::manager::REPLAY_BATCH)).await {
                    Ok(r) if !r.uploaded.is_empty() => {
                        tracing::info!("uploaded {} queued save(s) to S3", r.uploaded.len())
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!("queued saves stay queued: {e}"),
                }
            }
        });
    }

    let listener = tokio::net::TcpListener::bind(args.addr).await.map_err(|e| {
        CliError::Other(format!("could not listen on {}: {e}; pick another --addr", args.addr))
    })?;
    let addr = listener
        .local_addr()
        .map_err(|e| CliError::Other(format!("could not read the listening address: {e}")))?;
    let link = link_addr(addr);
    let expires = unix_now() + DEV_TOKEN_SECS;
    let token = kompass_core::token::mint(dev_user.as_str(), expires, &secret);
    let started = Started {
        url: format!("http://{link}/"),
        page_url: format!("http://{link}/#token={token}"),
        user: dev_user.to_string(),
        token,
        expires_at: kompass_core::time::rfc3339_utc(expires),
        backend,
        ephemeral_secret: ephemeral,
    };
    out.print(&started, || {
        let mut s = format!("kompass serve: listening on {} ({where_})", started.url);
        if ephemeral {
            s.push_str(&format!(
                "\n{SECRET_VAR} is not set: using an ephemeral secret for this session; tokens stop working when serve stops (set it, e.g. `openssl rand -hex 32`, to keep them)"
            ));
        }
        if backend == Backend::S3 {
            s.push_str(&format!(
                "\nthe browser uploads straight to the bucket: its CORS configuration must allow PUT (any header) from {}",
                started.url.trim_end_matches('/')
            ));
        }
        s.push_str(&format!(
            "\nopen the page signed in as {} (token valid until {}):\n{}",
            started.user, started.expires_at, started.page_url
        ));
        s
    });

    axum::serve(listener, router(app))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| CliError::Other(format!("the server stopped: {e}")))
}
