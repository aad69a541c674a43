//! SigV4 for S3: presigned URLs (query-string auth) for the browser and the edge, and
//! Authorization-header signing for the native S3 client.
//!
//! Pure: credentials and the time are arguments, so the same code signs natively, in the
//! browser and on an edge runtime (where `SystemTime::now()` would panic).

mod header;
mod query;
mod target;

use std::fmt;
use std::time::SystemTime;

use aws_smithy_runtime_api::client::identity::Identity;
use thiserror::Error;

pub use header::{SignError, SignableRequest, sign_request};
pub use query::{MAX_EXPIRY, MIN_EXPIRY, PresignError, Presigned, presign_get, presign_put};
pub use target::{S3Target, TargetError, uri_encode};

/// The SigV4 service name for S3.
const SERVICE: &str = "s3";

/// The last second the signer's date handling supports (9999-12-31T23:59:59Z).
const MAX_UNIX_SECS: u64 = crate::time::MAX_FORMATTED_SECS;

/// AWS credentials; the secret and the session token never appear in `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The access key id, e.g. `AKIAIOSFODNN7EXAMPLE`.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: String,
    /// The session token of temporary (STS) credentials.
    pub session_token: Option<String>,
}

impl Credentials {
    /// Long-term credentials (no session token).
    pub fn new(access_key_id: impl Into<String>, secret_access_key: impl Into<String>) -> Self {
        Self {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            session_token: None,
        }
    }

    /// The same credentials with a session token.
    pub fn with_session_token(mut self, token: impl Into<String>) -> Self {
        self.session_token = Some(token.into());
        self
    }

    /// Checks the parts are usable: they go into a credential scope (split at `/`) and headers.
    fn validate(&self) -> Result<(), CredentialsError> {
        let id = &self.access_key_id;
        if id.is_empty() {
            return Err(CredentialsError::EmptyAccessKeyId);
        }
        if !id.bytes().all(|b| b.is_ascii_graphic() && b != b'/') {
            return Err(CredentialsError::InvalidAccessKeyId);
        }
        if self.secret_access_key.is_empty() {
            return Err(CredentialsError::EmptySecretAccessKey);
        }
        if let Some(token) = &self.session_token
            && (token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()))
        {
            return Err(CredentialsError::InvalidSessionToken);
        }
        Ok(())
    }

    /// The identity aws-sigv4 signs with.
    fn identity(&self) -> Identity {
        aws_credential_types::Credentials::new(
            &self.access_key_id,
            &self.secret_access_key,
            self.session_token.clone(),
            None,
            "kompass",
        )
        .into()
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"** redacted **")
            .field("session_token", &self.session_token.as_ref().map(|_| "** redacted **"))
            .finish()
    }
}

/// Credentials that cannot be signed with. Messages never include the secret or the token.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CredentialsError {
    /// No access key id.
    #[error("the AWS access key id is empty: set AWS_ACCESS_KEY_ID")]
    EmptyAccessKeyId,
    /// The access key id has whitespace, control characters or `/`.
    #[error(
        "the AWS access key id has whitespace, control characters or '/': check AWS_ACCESS_KEY_ID"
    )]
    InvalidAccessKeyId,
    /// No secret access key.
    #[error("the AWS secret access key is empty: set AWS_SECRET_ACCESS_KEY")]
    EmptySecretAccessKey,
    /// The session token is empty or not a printable ASCII string.
    #[error(
        "the AWS session token is empty or has whitespace or control characters: pass the token as issued, or none"
    )]
    InvalidSessionToken,
}

/// A signing time the signer cannot represent.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TimeError {
    /// The time is before 1970-01-01.
    #[error("the signing time is before 1970: pass the current time")]
    BeforeEpoch,
    /// The time (plus the expiry) is after 9999-12-31T23:59:59Z.
    #[error("the signing time or expiry ends after the year 9999: pass the current time")]
    TooLate,
}

/// Unix seconds of `now`, bounded to what the signer's date formatting supports.
fn unix_secs(now: SystemTime) -> Result<u64, TimeError> {
    let now = crate::time::UnixMs::from_system_time(now);
    if now < crate::time::UnixMs::EPOCH {
        return Err(TimeError::BeforeEpoch);
    }
    let secs = now.as_secs();
    if secs > MAX_UNIX_SECS {
        return Err(TimeError::TooLate);
    }
    Ok(secs)
}

/// Region rules for the credential scope: no `/`, no whitespace, short.
fn scope_region_ok(region: &str) -> bool {
    !region.is_empty()
        && region.len() <= 64
        && region.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_secret_and_token() {
        let creds = Credentials::new("AKID", "very-secret-key").with_session_token("tok-123");
        let shown = format!("{creds:?}");
        assert!(shown.contains("AKID"));
        assert!(!shown.contains("very-secret-key"), "{shown}");
        assert!(!shown.contains("tok-123"), "{shown}");
    }

    #[test]
    fn credentials_are_validated() {
        assert_eq!(Credentials::new("", "s").validate(), Err(CredentialsError::EmptyAccessKeyId));
        assert_eq!(
            Credentials::new("AK/ID", "s").validate(),
            Err(CredentialsError::InvalidAccessKeyId)
        );
        assert_eq!(
            Credentials::new("AK ID", "s").validate(),
            Err(CredentialsError::InvalidAccessKeyId)
        );
        assert_eq!(
            Credentials::new("AKID", "").validate(),
            Err(CredentialsError::EmptySecretAccessKey)
        );
        assert_eq!(
            Credentials::new("AKID", "s").with_session_token("a\nb").validate(),
            Err(CredentialsError::InvalidSessionToken)
        );
        assert_eq!(
            Credentials::new("AKID", "s").with_session_token("").validate(),
            Err(CredentialsError::InvalidSessionToken)
        );
        assert!(
            Credentials::new("AKID", "s")
                .with_session_token("FwoGZXIvYXdzEJr//+/=")
                .validate()
                .is_ok()
        );
    }

    #[test]
    fn times_outside_the_signers_range_are_rejected() {
        use std::time::{Duration, UNIX_EPOCH};
        assert_eq!(unix_secs(UNIX_EPOCH - Duration::from_secs(1)), Err(TimeError::BeforeEpoch));
        assert_eq!(
            unix_secs(UNIX_EPOCH + Duration::from_secs(MAX_UNIX_SECS + 1)),
            Err(TimeError::TooLate)
        );
        assert_eq!(
            unix_secs(UNIX_EPOCH + Duration::from_millis(1_369_353_600_999)),
            Ok(1_369_353_600)
        );
    }
}
