//! `kompass token`: mints an API token for one user (what `serve` and the edge accept).

use super::{CliError, Output};
use crate::cli::{Cli, TokenArgs};
use crate::manager::ManagerError;

/// `kompass token`.
pub fn token(cli: &Cli, args: &TokenArgs, out: &Output) -> Result<(), CliError> {
    let user = kompass_core::key::UserId::new(&args.user).map_err(ManagerError::Key)?;
    let cfg = crate::env::load(cli.data_dir.as_deref())?;
    // A missing or weak secret is a configuration problem (exit 2), like any other.
    let secret = cfg.server_secret().map_err(|e| CliError::Usage(e.to_string()))?;
    if args.expires == 0 {
        return Err(CliError::Usage("--expires must be at least 1 second".into()));
    }
    let expires_at = crate::clock::now().as_secs().saturating_add(args.expires);
    let token = kompass_core::token::mint(user.as_str(), expires_at, secret.expose_bytes());
    let expires_at = kompass_core::time::rfc3339_utc(expires_at);
    out.print(
        &serde_json::json!({ "token": token, "user": user, "expires_at": expires_at }),
        || token.clone(),
    );
    Ok(())
}
