//! Keyed pseudonyms for athlete and activity ids.
//!
//! Strava ids are sequential integers, so a plain hash of one is reversed by enumerating ids.
//! A pseudonym is therefore an HMAC-SHA256 under a secret key, written with the key's id
//! (`"k1:<64 hex>"`) so that keys can rotate and old pseudonyms stay attributable to their key.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The shortest secret accepted: 128 bits, so the key cannot be guessed and ids re-enumerated.
pub const MIN_SECRET_BYTES: usize = 16;

/// The longest key id accepted (it is written into every pseudonym).
pub const MAX_KEY_ID_BYTES: usize = 64;

/// Why a pseudonym key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PseudonymKeyError {
    /// The secret is too short to resist guessing.
    #[error(
        "the pseudonym key secret is {len} bytes; it must be at least {MIN_SECRET_BYTES} \
         (set KOMPASS_PSEUDONYM_KEY to 32 random bytes, e.g. the output of `openssl rand -hex 32`)"
    )]
    SecretTooShort {
        /// The length that was given.
        len: usize,
    },
    /// The key id is empty, too long or contains characters outside `[A-Za-z0-9._-]`.
    #[error(
        "the pseudonym key id {key_id:?} is invalid: use 1 to {MAX_KEY_ID_BYTES} characters \
         from A-Z, a-z, 0-9, '.', '_' and '-' (for example \"k1\")"
    )]
    BadKeyId {
        /// The key id that was given.
        key_id: String,
    },
}

/// The secret and id of the key that pseudonymizes athlete and activity ids.
///
/// Required by [`scrub`](super::scrub): rider data is never stored without one. `Debug` never
/// prints the secret.
#[derive(Clone)]
pub struct PseudonymKey {
    key_id: String,
    /// The HMAC state after absorbing the key, cloned per id instead of re-keying each time.
    mac: Hmac<Sha256>,
}

impl fmt::Debug for PseudonymKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PseudonymKey")
            .field("key_id", &self.key_id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl PseudonymKey {
    /// A key from its id (e.g. `"k1"`) and secret bytes (at least [`MIN_SECRET_BYTES`]).
    pub fn new(key_id: &str, secret: &[u8]) -> Result<Self, PseudonymKeyError> {
        if !is_valid_key_id(key_id) {
            return Err(PseudonymKeyError::BadKeyId { key_id: key_id.to_owned() });
        }
        if secret.len() < MIN_SECRET_BYTES {
            return Err(PseudonymKeyError::SecretTooShort { len: secret.len() });
        }
        // HMAC accepts keys of any length, so this cannot fail; map it anyway rather than panic.
        let mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret)
            .map_err(|_| PseudonymKeyError::SecretTooShort { len: secret.len() })?;
        Ok(Self { key_id: key_id.to_owned(), mac })
    }

    /// The key id written into pseudonyms and into the anonymization block.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The pseudonym of an athlete id: `"{key_id}:{hex(HMAC-SHA256(key, decimal id))}"`.
    pub fn athlete_pseudonym(&self, athlete_id: u64) -> String {
        self.pseudonym(Domain::Athlete, athlete_id)
    }

    /// The pseudonym of an activity id: `"{key_id}:{hex(HMAC-SHA256(key, "activity:" + id))}"`.
    pub fn activity_pseudonym(&self, activity_id: u64) -> String {
        self.pseudonym(Domain::Activity, activity_id)
    }

    /// The pseudonym of a KOMpass user (the user a server's API token names):
    /// `"{key_id}:{hex(HMAC-SHA256(key, "user:" + user))}"`. The server writes it as the
    /// `user_hash` of rider data that reaches it from outside, so the pseudonym is bound to
    /// the authenticated user rather than to an id the request body claims.
    pub fn user_pseudonym(&self, user: &str) -> String {
        let hex = self.mac_hex(&[b"user:", user.as_bytes()]);
        let mut out = String::with_capacity(self.key_id.len() + 65);
        out.push_str(&self.key_id);
        out.push(':');
        out.push_str(std::str::from_utf8(&hex).unwrap_or_default());
        out
    }

    pub(super) fn pseudonym(&self, domain: Domain, id: u64) -> String {
        let mut out = String::with_capacity(self.key_id.len() + 65);
        self.write_pseudonym(domain, id, &mut out);
        out
    }

    /// Appends the pseudonym of `id` (without quotes) to `out`.
    pub(super) fn write_pseudonym(&self, domain: Domain, id: u64, out: &mut String) {
        let mut digits = [0u8; 20];
        let id = format_u64(id, &mut digits);
        let hex = match domain {
            Domain::Athlete => self.mac_hex(&[id]),
            // Domain-separated so that an activity pseudonym never equals an athlete pseudonym.
            Domain::Activity => self.mac_hex(&[b"activity:", id]),
        };
        out.push_str(&self.key_id);
        out.push(':');
        // Hex digits are ASCII.
        out.push_str(std::str::from_utf8(&hex).unwrap_or_default());
    }

    /// Lower-case hex of HMAC-SHA256(key, concatenation of `parts`).
    pub(super) fn mac_hex(&self, parts: &[&[u8]]) -> [u8; 64] {
        let mut mac = self.mac.clone();
        for part in parts {
            mac.update(part);
        }
        let tag = mac.finalize().into_bytes();
        let mut hex = [0u8; 64];
        // 32 bytes always fit 64 hex digits.
        let _ = hex::encode_to_slice(tag.as_slice(), &mut hex);
        hex
    }
}

/// What an id names; pseudonyms of different kinds never collide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Domain {
    /// An athlete id; its pseudonym is the `user_hash`.
    Athlete,
    /// An activity id; its pseudonym is the `activity_hash`.
    Activity,
}

/// Whether `key_id` may be written into pseudonyms verbatim (no JSON escaping, no `:`).
pub(super) fn is_valid_key_id(key_id: &str) -> bool {
    !key_id.is_empty()
        && key_id.len() <= MAX_KEY_ID_BYTES
        && key_id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Whether `s` has the shape of a pseudonym this module writes: `{key id}:{64 lower-case hex}`.
#[cfg(test)]
pub(super) fn is_pseudonym(s: &str) -> bool {
    pseudonym_key_id(s).is_some()
}

/// The key id of a pseudonym-shaped string (`{key id}:{64 lower-case hex}`), or `None`.
pub(super) fn pseudonym_key_id(s: &str) -> Option<&str> {
    let (key_id, hex) = s.split_once(':')?;
    (is_valid_key_id(key_id)
        && hex.len() == 64
        && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
    .then_some(key_id)
}

/// The decimal digits of `n`, without allocating.
fn format_u64(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_test_case_1() {
        let key = PseudonymKey::new("k1", &[0x0b; 20]).unwrap();
        let hex = key.mac_hex(&[b"Hi There"]);
        assert_eq!(
            std::str::from_utf8(&hex).unwrap(),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
    }

    #[test]
    fn athlete_pseudonym_is_hmac_of_the_decimal_id_with_key_id_prefix() {
        let key = PseudonymKey::new("k1", &[0x0b; 20]).unwrap();
        let expected =
            format!("k1:{}", std::str::from_utf8(&key.mac_hex(&[b"123456789"])).unwrap());
        assert_eq!(key.athlete_pseudonym(123_456_789), expected);
        assert!(is_pseudonym(&expected));
    }

    #[test]
    fn pseudonyms_are_stable_and_depend_on_the_key_and_the_domain() {
        let a = PseudonymKey::new("k1", b"0123456789abcdef").unwrap();
        let a2 = PseudonymKey::new("k1", b"0123456789abcdef").unwrap();
        let b = PseudonymKey::new("k1", b"0123456789abcdeF").unwrap();
        assert_eq!(a.athlete_pseudonym(42), a2.athlete_pseudonym(42));
        assert_ne!(a.athlete_pseudonym(42), b.athlete_pseudonym(42));
        assert_ne!(a.athlete_pseudonym(42), a.athlete_pseudonym(43));
        assert_ne!(a.athlete_pseudonym(42)[3..], a.activity_pseudonym(42)[3..]);
        assert_ne!(a.athlete_pseudonym(42)[3..], a.user_pseudonym("42")[3..]);
        assert_eq!(a.user_pseudonym("alice"), a2.user_pseudonym("alice"));
        assert_ne!(a.user_pseudonym("alice"), b.user_pseudonym("alice"));
        assert!(is_pseudonym(&a.user_pseudonym("alice")));
    }

    #[test]
    fn format_u64_writes_decimal_digits() {
        let mut buf = [0u8; 20];
        assert_eq!(format_u64(0, &mut buf), b"0");
        assert_eq!(format_u64(123_456_789, &mut buf), b"123456789");
        assert_eq!(format_u64(u64::MAX, &mut buf), u64::MAX.to_string().as_bytes());
    }

    #[test]
    fn weak_secrets_and_bad_key_ids_are_refused() {
        assert_eq!(
            PseudonymKey::new("k1", b"short").unwrap_err(),
            PseudonymKeyError::SecretTooShort { len: 5 }
        );
        for bad in ["", "k:1", "k 1", "k\"1", &"k".repeat(65)] {
            assert!(
                matches!(PseudonymKey::new(bad, &[7; 32]), Err(PseudonymKeyError::BadKeyId { .. })),
                "{bad:?} accepted"
            );
        }
        assert!(PseudonymKey::new("k1.rot-2_a", &[7; 32]).is_ok());
    }

    #[test]
    fn debug_never_prints_the_secret() {
        let key = PseudonymKey::new("k1", b"super-secret-key-bytes").unwrap();
        let shown = format!("{key:?}");
        assert!(shown.contains("k1") && !shown.contains("super-secret"), "{shown}");
    }

    #[test]
    fn pseudonym_shape_check_rejects_free_text() {
        assert!(!is_pseudonym("k1:John Doe"));
        assert!(!is_pseudonym(&format!("k1:{}", "A".repeat(64))));
        assert!(!is_pseudonym(&"a".repeat(64)));
    }
}
