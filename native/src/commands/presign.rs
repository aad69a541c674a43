//! `kompass presign`: a presigned S3 PUT for one object, after admission.

use std::time::Duration;

use kompass_core::inventory::Sha256Digest;
use kompass_core::presign::presign_put;

use super::data::object_key;
use super::{CliError, Output, open_manager};
use crate::cli::{Cli, PresignArgs};
use crate::manager::ManagerError;

/// `kompass presign`: admission like every upload (the grant reserves its bytes and charges
/// the request budget; nothing is deleted until it is confirmed), then the URL.
pub async fn presign(cli: &Cli, args: &PresignArgs, out: &Output) -> Result<(), CliError> {
    let key = object_key(&args.target)?;
    let sha = Sha256Digest::from_hex(&args.sha256)
        .map_err(|e| CliError::Usage(format!("--sha256: {e}")))?;
    let m = open_manager(cli)?;
    let limit = m.config().limits.max_file_bytes;
    if args.size > limit {
        return Err(ManagerError::Refused(kompass_core::admission::Refusal::Size(
            kompass_core::quota::Refusal::FileTooLarge { size: args.size, limit },
        ))
        .into());
    }
    let s3 = m.require_s3()?;
    let now = crate::clock::now();
    let expires = now.plus_ms(args.expires.saturating_mul(1000));
    m.grant(&key, args.size, expires).await?;
    let cfg = m.config().s3.as_ref().ok_or(ManagerError::S3Disabled)?;
    let creds = cfg.signing_credentials();
    let signed = presign_put(
        s3.target(),
        &key.s3_key(),
        args.size,
        sha.0,
        &creds,
        now.to_system_time(),
        Duration::from_secs(args.expires),
        None,
    )
    .map_err(|e| CliError::Usage(e.to_string()))?;
    out.print(&signed, || {
        let mut s = format!("{} {}", signed.method, signed.url);
        for (k, v) in &signed.headers {
            s.push_str(&format!("\n  {k}: {v}"));
        }
        s.push_str(&format!("\nexpires at {}", signed.expires_at));
        s
    });
    Ok(())
}
