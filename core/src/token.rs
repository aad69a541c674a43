//! The one signed-token primitive ([`seal`] / [`open`]) and the API tokens built on it, which
//! tell `kompass serve` and the edge presigner which user may act, and until when.
//!
//! Format: `base64url(payload JSON) "." base64url(HMAC-SHA256)`, no padding. The MAC covers a
//! context string and the encoded payload, so the secret's MACs for one use (API token, upload
//! grant, edge allowance) never pass for another. An API token's payload is
//! `{"v":1,"sub":USER,"exp":UNIX_SECONDS}`.

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit as _, Mac as _};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use thiserror::Error;

use crate::time::rfc3339_utc;

/// The shortest secret `verify` accepts; a short key makes tokens forgeable by brute force.
pub const MIN_SECRET_BYTES: usize = 16;

/// Longer inputs are rejected before any decoding.
const MAX_TOKEN_LEN: usize = 4096;

/// The payload format version.
const VERSION: u8 = 1;

/// Domain separation for the MAC.
const CONTEXT: &[u8] = b"kompass-api-token.v1.";

/// What a valid token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// The user the token acts for.
    pub user: String,
    /// Unix seconds at which the token stops being valid.
    pub expires_at: u64,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TokenError {
    /// Not a token of this format.
    #[error("API token is malformed ({0}): paste the whole token as printed by `kompass token`")]
    Malformed(&'static str),
    /// The MAC does not match: altered, or minted with another secret.
    #[error(
        "API token signature does not match: it was altered or minted with another KOMPASS_SERVER_SECRET; mint a new one with `kompass token`"
    )]
    BadSignature,
    /// The token was valid until `expired_at` (unix seconds).
    #[error("API token expired at {}: mint a new one with `kompass token`", rfc3339_utc(*.expired_at))]
    Expired {
        /// When it expired, unix seconds.
        expired_at: u64,
    },
    /// The server's secret is too short to verify anything safely.
    #[error(
        "the token secret has {len} bytes, fewer than 16: set KOMPASS_SERVER_SECRET to at least 32 random bytes"
    )]
    WeakSecret {
        /// The secret's length in bytes.
        len: usize,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Payload<'a> {
    v: u8,
    #[serde(borrow)]
    sub: Cow<'a, str>,
    exp: u64,
}

/// The API token's MAC (the tests build tokens by hand with it).
#[cfg(test)]
fn mac(secret: &[u8], encoded_payload: &str) -> Hmac<Sha256> {
    mac_with(CONTEXT, secret, encoded_payload)
}

fn mac_with(context: &[u8], secret: &[u8], encoded_payload: &str) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(context);
    mac.update(encoded_payload.as_bytes());
    mac
}

/// Seals `payload` (JSON) in this module's format under a context string of its own, so other
/// signed facts (the edge allowance in [`crate::admission::allowance`], `serve`'s upload
/// grants) share the machinery but never pass for an API token, nor a token for them.
pub fn seal(context: &[u8], payload: &[u8], secret: &[u8]) -> String {
    let encoded = URL_SAFE_NO_PAD.encode(payload);
    let tag = mac_with(context, secret, &encoded).finalize().into_bytes();
    format!("{encoded}.{}", URL_SAFE_NO_PAD.encode(tag))
}

/// Mints a token for `user`, valid until `expires_at_unix`. `secret` should be at least 32
/// random bytes; `verify` refuses secrets under [`MIN_SECRET_BYTES`].
pub fn mint(user: &str, expires_at_unix: u64, secret: &[u8]) -> String {
    let payload = Payload { v: VERSION, sub: Cow::Borrowed(user), exp: expires_at_unix };
    let json = serde_json::to_vec(&payload).expect("a struct of a string and integers serialises");
    seal(CONTEXT, &json, secret)
}

/// Verifies `token` with `secret` at `now_unix`: the MAC (in constant time), then the expiry.
/// A token is valid while `now_unix < expires_at`.
pub fn verify(token: &str, secret: &[u8], now_unix: u64) -> Result<Claims, TokenError> {
    let json = open(CONTEXT, token, secret)?;
    let payload: Payload<'_> =
        serde_json::from_slice(&json).map_err(|_| TokenError::Malformed("payload is not JSON"))?;
    if payload.v != VERSION {
        return Err(TokenError::Malformed("unsupported version"));
    }
    if now_unix >= payload.exp {
        return Err(TokenError::Expired { expired_at: payload.exp });
    }
    Ok(Claims { user: payload.sub.into_owned(), expires_at: payload.exp })
}

/// Checks the format and the MAC (in constant time) of a sealed value under `context`, and
/// returns its payload bytes. What the payload says (expiry included) is the caller's to check.
pub fn open(context: &[u8], token: &str, secret: &[u8]) -> Result<Vec<u8>, TokenError> {
    if secret.len() < MIN_SECRET_BYTES {
        return Err(TokenError::WeakSecret { len: secret.len() });
    }
    if token.is_empty() {
        return Err(TokenError::Malformed("empty"));
    }
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed("too long"));
    }
    // Checked before the MAC so a paste with stray whitespace is reported as such.
    if !token.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) {
        return Err(TokenError::Malformed("characters outside base64url"));
    }
    let mut parts = token.split('.');
    let (Some(encoded), Some(encoded_tag), None) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed("not two dot-separated parts"));
    };
    if encoded.is_empty() || encoded_tag.is_empty() {
        return Err(TokenError::Malformed("an empty part"));
    }
    let tag = URL_SAFE_NO_PAD
        .decode(encoded_tag)
        .map_err(|_| TokenError::Malformed("signature is not base64url"))?;
    if tag.len() != 32 {
        return Err(TokenError::Malformed("signature is not 32 bytes"));
    }
    mac_with(context, secret, encoded).verify_slice(&tag).map_err(|_| TokenError::BadSignature)?;

    // Only a value this secret sealed gets here, so these checks guard against format drift.
    URL_SAFE_NO_PAD.decode(encoded).map_err(|_| TokenError::Malformed("payload is not base64url"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
    const NOW: u64 = 1_800_000_000;

    /// A token over an arbitrary payload, correctly MACed: reaches the checks after the MAC.
    fn signed(payload: &[u8]) -> String {
        let encoded = URL_SAFE_NO_PAD.encode(payload);
        let tag = mac(SECRET, &encoded).finalize().into_bytes();
        format!("{encoded}.{}", URL_SAFE_NO_PAD.encode(tag))
    }

    #[test]
    fn round_trip() {
        let token = mint("rider-42", NOW + 3600, SECRET);
        assert_eq!(
            verify(&token, SECRET, NOW),
            Ok(Claims { user: "rider-42".into(), expires_at: NOW + 3600 })
        );
        assert!(
            token.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)),
            "URL- and header-safe: {token}"
        );
    }

    #[test]
    fn minting_is_deterministic_and_bound_to_its_inputs() {
        let token = mint("u", NOW, SECRET);
        assert_eq!(token, mint("u", NOW, SECRET));
        assert_ne!(token, mint("v", NOW, SECRET));
        assert_ne!(token, mint("u", NOW + 1, SECRET));
        assert_ne!(token, mint("u", NOW, b"another secret of enough length"));
    }

    #[test]
    fn expires_at_the_stated_second() {
        let token = mint("u", NOW, SECRET);
        assert!(verify(&token, SECRET, NOW - 1).is_ok());
        assert_eq!(verify(&token, SECRET, NOW), Err(TokenError::Expired { expired_at: NOW }));
        assert_eq!(
            verify(&token, SECRET, NOW + 86_400),
            Err(TokenError::Expired { expired_at: NOW })
        );
        let msg = verify(&token, SECRET, NOW).unwrap_err().to_string();
        assert!(msg.contains("2027-01-15T08:00:00Z"), "{msg}");
    }

    #[test]
    fn tampered_payload_is_a_bad_signature() {
        let token = mint("alice", NOW + 60, SECRET);
        let (_, tag) = token.split_once('.').unwrap();
        for forged in [
            br#"{"v":1,"sub":"bob","exp":1800000060}"#.as_slice(),
            br#"{"v":1,"sub":"alice","exp":9999999999}"#.as_slice(),
        ] {
            let forged = format!("{}.{tag}", URL_SAFE_NO_PAD.encode(forged));
            assert_eq!(verify(&forged, SECRET, NOW), Err(TokenError::BadSignature));
        }
        // Another token's signature does not transfer either.
        let bob = mint("bob", NOW + 60, SECRET);
        let (bob_payload, _) = bob.split_once('.').unwrap();
        assert_eq!(
            verify(&format!("{bob_payload}.{tag}"), SECRET, NOW),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn wrong_secret_is_a_bad_signature() {
        let token = mint("alice", NOW + 60, SECRET);
        assert_eq!(
            verify(&token, b"fedcba9876543210fedcba9876543210", NOW),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn weak_secrets_are_refused() {
        let token = mint("alice", NOW + 60, b"short");
        assert_eq!(verify(&token, b"short", NOW), Err(TokenError::WeakSecret { len: 5 }));
        assert_eq!(verify(&token, b"", NOW), Err(TokenError::WeakSecret { len: 0 }));
        let ok = mint("alice", NOW + 60, &SECRET[..MIN_SECRET_BYTES]);
        assert!(verify(&ok, &SECRET[..MIN_SECRET_BYTES], NOW).is_ok());
    }

    #[test]
    fn malformed_inputs() {
        let good = mint("alice", NOW + 60, SECRET);
        let (payload, tag) = good.split_once('.').unwrap();
        let cases: Vec<String> = vec![
            String::new(),
            "no-dot".into(),
            ".".into(),
            format!("{payload}."),
            format!(".{tag}"),
            format!("{payload}.{tag}.extra"),
            format!("{payload}.{tag}="),
            format!("{payload}.***"),
            format!("{payload}.{}", URL_SAFE_NO_PAD.encode([0u8; 31])),
            format!("{payload}.{}", URL_SAFE_NO_PAD.encode([0u8; 33])),
            "a".repeat(MAX_TOKEN_LEN + 1),
            format!(" {good}"),
        ];
        for case in &cases {
            assert!(
                matches!(verify(case, SECRET, NOW), Err(TokenError::Malformed(_))),
                "{case:?}: {:?}",
                verify(case, SECRET, NOW)
            );
        }
    }

    #[test]
    fn correctly_signed_garbage_is_malformed() {
        for payload in [
            b"not json".as_slice(),
            br#"{"v":2,"sub":"u","exp":1900000000}"#,
            br#"{"v":1,"sub":"u"}"#,
            br#"{"v":1,"sub":"u","exp":1900000000,"admin":true}"#,
            br#"{"v":1,"sub":7,"exp":1900000000}"#,
        ] {
            assert!(
                matches!(verify(&signed(payload), SECRET, NOW), Err(TokenError::Malformed(_))),
                "{}",
                String::from_utf8_lossy(payload)
            );
        }
        // The helper itself produces valid tokens, so the cases above fail for their payloads.
        assert!(verify(&signed(br#"{"v":1,"sub":"u","exp":1900000000}"#), SECRET, NOW).is_ok());
    }

    #[test]
    fn a_sealed_value_opens_only_under_its_context() {
        let sealed = seal(b"kompass-test-a.v1.", b"{}", SECRET);
        assert_eq!(open(b"kompass-test-a.v1.", &sealed, SECRET), Ok(b"{}".to_vec()));
        assert_eq!(open(b"kompass-test-b.v1.", &sealed, SECRET), Err(TokenError::BadSignature));
        assert_eq!(open(CONTEXT, &sealed, SECRET), Err(TokenError::BadSignature));
        // The API token is the primitive under its own context: same wire format.
        assert_eq!(
            mint("u", NOW, SECRET),
            seal(CONTEXT, br#"{"v":1,"sub":"u","exp":1800000000}"#, SECRET)
        );
    }

    proptest! {
        #[test]
        fn any_user_round_trips(user in ".{0,64}", exp in 1u64..u64::MAX) {
            let token = mint(&user, exp, SECRET);
            let claims = verify(&token, SECRET, exp - 1).unwrap();
            prop_assert_eq!(claims.user, user);
            prop_assert_eq!(claims.expires_at, exp);
        }

        #[test]
        fn any_single_character_change_is_refused(index in 0usize..200, replacement in "[A-Za-z0-9_.=-]") {
            let token = mint("alice", NOW + 60, SECRET);
            let index = index % token.len();
            let mut altered = token.clone();
            altered.replace_range(index..=index, &replacement);
            prop_assume!(altered != token);
            prop_assert!(verify(&altered, SECRET, NOW).is_err());
        }
    }
}
