//! The edge's admission: an *allowance* the server signs (with `KOMPASS_SERVER_SECRET`, in the
//! API token's format under its own context) and the page forwards to the edge presigner.
//!
//! The edge holds no inventory, so it cannot run [`super::decide`]. The server runs it when it
//! issues the allowance: the bytes and PUT-class requests the user may still spend (quota minus
//! stored and reserved bytes; the month's remaining PUT budget, capped), until a short expiry.
//! The edge then admits an upload only against facts it can trust:
//!
//! - with an allowance: the signature, the user (the token's), the expiry, and what this edge
//!   instance has already granted under that allowance ([`Spent`]);
//! - without one: only the per-file limit and the user quota against what this edge instance has
//!   granted the user since it started; the caller's reported usage is never trusted.
//!
//! **The bound a lying or replaying client reaches**: per edge instance (isolate) it holds, an
//! allowance yields at most its `bytes` and `puts` before it expires, so replaying it to *n*
//! isolates yields at most `n × bytes` (and `n × puts`) within its lifetime (5 minutes by
//! default). Without an allowance, at most one user quota per isolate. A forged or altered
//! allowance is refused (HMAC). Whatever lands beyond the quota is seen by the server's next
//! listing and counted: later admissions refuse, and cleanup trims it.

use serde::{Deserialize, Serialize};

use crate::key::UserId;
use crate::quota::Limits;
use crate::time::UnixMs;
use crate::token::{TokenError, open, seal};

/// Domain separation: an allowance is never an API token, nor an upload grant.
const CONTEXT: &[u8] = b"kompass-edge-allowance.v1.";

/// Default lifetime of an allowance.
pub const DEFAULT_ALLOWANCE_TTL_MS: u64 = 5 * 60 * 1000;

/// Most PUTs one allowance carries, however much budget remains.
pub const MAX_ALLOWANCE_PUTS: u64 = 50;

/// What the server lets a user spend at the edge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Allowance {
    /// Whose it is.
    pub user: UserId,
    /// Bytes the user may still upload.
    pub bytes: u64,
    /// PUT-class requests (presigned uploads) the user may still spend.
    pub puts: u64,
    /// When it stops counting.
    pub expires_at: UnixMs,
    /// Distinguishes allowances issued at the same time (the edge accounts per allowance).
    pub id: u64,
}

impl Allowance {
    /// Signs it with the server secret.
    pub fn seal(&self, secret: &[u8]) -> String {
        let json = serde_json::to_vec(self).expect("an allowance serialises");
        seal(CONTEXT, &json, secret)
    }

    /// Reads a sealed allowance *without* checking its signature, for a client that holds no
    /// secret and got it from its own server over its authenticated request (the page, for
    /// its [`precheck`]). Never admit anything on it: the server and the edge [`open`] it.
    ///
    /// [`open`]: Allowance::open
    pub fn read_unverified(sealed: &str) -> Result<Allowance, TokenError> {
        use base64::Engine as _;
        let (encoded, _tag) =
            sealed.split_once('.').ok_or(TokenError::Malformed("not two dot-separated parts"))?;
        let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(encoded)
            .map_err(|_| TokenError::Malformed("payload is not base64url"))?;
        serde_json::from_slice(&json).map_err(|_| TokenError::Malformed("not an allowance"))
    }

    /// Checks the signature and the expiry at `now`.
    pub fn open(sealed: &str, secret: &[u8], now: UnixMs) -> Result<Allowance, TokenError> {
        let json = open(CONTEXT, sealed, secret)?;
        let a: Allowance =
            serde_json::from_slice(&json).map_err(|_| TokenError::Malformed("not an allowance"))?;
        if now >= a.expires_at {
            return Err(TokenError::Expired { expired_at: a.expires_at.as_secs() });
        }
        Ok(a)
    }
}

/// What an edge instance has granted so far under one allowance (or to one user without one).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spent {
    /// Bytes granted.
    pub bytes: u64,
    /// Presigned uploads granted.
    pub puts: u64,
}

/// Why the edge refuses an upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum EdgeRefusal {
    /// Over the per-file limit.
    #[error(
        "the file is {size} bytes, over the per-file limit of {limit} bytes: upload a smaller file"
    )]
    FileTooLarge {
        /// The file's size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// More than the allowance (or, without one, the quota) has left.
    #[error(
        "{size} bytes would exceed what this user may still upload here ({left} bytes left{how}): ask the server for a fresh allowance (GET /api/allowance) or upload through the server"
    )]
    OverAllowance {
        /// The file's size.
        size: u64,
        /// Bytes left.
        left: u64,
        /// Which fact bounds it.
        how: &'static str,
    },
    /// No PUT left in the allowance.
    #[error(
        "the allowance has no upload left (the month's request budget is nearly spent): ask the server for a fresh one"
    )]
    NoPutsLeft,
    /// The allowance belongs to another user.
    #[error("the allowance is another user's: ask the server for yours")]
    NotYours,
    /// The allowance has expired (only the page's [`precheck`] says so; the edge refuses an
    /// expired allowance when opening it).
    #[error("the allowance expired: ask the server for a fresh one (GET /api/allowance)")]
    Expired {
        /// When it expired.
        expired_at: UnixMs,
    },
}

/// The edge's decision on an upload of `size` bytes by `user`, given what this instance has
/// already granted under the same allowance (or to the same user, without one). Pure.
pub fn edge_admit(
    user: &UserId,
    size: u64,
    allowance: Option<&Allowance>,
    spent: Spent,
    limits: &Limits,
) -> Result<Spent, EdgeRefusal> {
    if size > limits.max_file_bytes {
        return Err(EdgeRefusal::FileTooLarge { size, limit: limits.max_file_bytes });
    }
    let (cap, how) = match allowance {
        Some(a) if a.user != *user => return Err(EdgeRefusal::NotYours),
        Some(a) => {
            if spent.puts >= a.puts {
                return Err(EdgeRefusal::NoPutsLeft);
            }
            (a.bytes, ", from the server's allowance")
        }
        None => (limits.max_user_bytes, " of the quota, without an allowance"),
    };
    let left = cap.saturating_sub(spent.bytes);
    if size > left {
        return Err(EdgeRefusal::OverAllowance { size, left, how });
    }
    Ok(Spent { bytes: spent.bytes + size, puts: spent.puts + 1 })
}

/// The page's precheck of an upload of `size` bytes: what the edge would decide on the first
/// use of `allowance` (the one the page forwards), and what the server's admission decided
/// when it issued it (quota minus stored and reserved bytes, the month's PUT budget), so the
/// page prechecks only against facts the server stated. Pure.
pub fn precheck(
    size: u64,
    allowance: &Allowance,
    limits: &Limits,
    now: UnixMs,
) -> Result<Spent, EdgeRefusal> {
    if now >= allowance.expires_at {
        return Err(EdgeRefusal::Expired { expired_at: allowance.expires_at });
    }
    edge_admit(&allowance.user, size, Some(allowance), Spent::default(), limits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quota::MIB;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
    const NOW: UnixMs = UnixMs(1_800_000_000_000);

    fn alice() -> UserId {
        UserId::new("alice").unwrap()
    }

    fn allowance(bytes: u64, puts: u64) -> Allowance {
        Allowance { user: alice(), bytes, puts, expires_at: NOW.plus_ms(60_000), id: 7 }
    }

    #[test]
    fn sealed_allowances_round_trip_and_refuse_tampering_expiry_and_tokens() {
        let a = allowance(10, 2);
        let sealed = a.seal(SECRET);
        assert_eq!(Allowance::open(&sealed, SECRET, NOW).unwrap(), a);
        assert!(matches!(
            Allowance::open(&sealed, SECRET, NOW.plus_ms(60_000)),
            Err(TokenError::Expired { .. })
        ));
        assert_eq!(
            Allowance::open(&sealed, b"another secret of enough length!", NOW),
            Err(TokenError::BadSignature)
        );
        // An API token is not an allowance, nor the reverse.
        let token = crate::token::mint("alice", NOW.as_secs() + 60, SECRET);
        assert_eq!(Allowance::open(&token, SECRET, NOW), Err(TokenError::BadSignature));
        assert!(crate::token::verify(&sealed, SECRET, NOW.as_secs()).is_err());
        // A raised byte count breaks the MAC.
        let forged = allowance(u64::MAX, 2).seal(b"attacker guesses a secret of len");
        assert_eq!(Allowance::open(&forged, SECRET, NOW), Err(TokenError::BadSignature));
    }

    #[test]
    fn two_hundred_50_mib_asks_never_pass_the_quota_without_an_allowance() {
        let limits = Limits::default();
        let mut spent = Spent::default();
        let mut admitted = 0u64;
        for _ in 0..200 {
            if let Ok(s) = edge_admit(&alice(), 50 * MIB, None, spent, &limits) {
                spent = s;
                admitted += 1;
            }
        }
        assert_eq!(admitted * 50 * MIB, limits.max_user_bytes);
        assert_eq!(admitted, 2);
    }

    #[test]
    fn an_allowance_bounds_bytes_and_puts_and_is_the_users_own() {
        let limits = Limits::default();
        let a = allowance(3 * MIB, 2);
        let s = edge_admit(&alice(), MIB, Some(&a), Spent::default(), &limits).unwrap();
        let s = edge_admit(&alice(), MIB, Some(&a), s, &limits).unwrap();
        assert_eq!(edge_admit(&alice(), 1, Some(&a), s, &limits), Err(EdgeRefusal::NoPutsLeft));
        let big = allowance(3 * MIB, 10);
        let e = edge_admit(&alice(), 4 * MIB, Some(&big), Spent::default(), &limits).unwrap_err();
        assert!(matches!(e, EdgeRefusal::OverAllowance { left, .. } if left == 3 * MIB), "{e}");
        let bob = UserId::new("bob").unwrap();
        assert_eq!(
            edge_admit(&bob, 1, Some(&a), Spent::default(), &limits),
            Err(EdgeRefusal::NotYours)
        );
        let e = edge_admit(&alice(), 51 * MIB, Some(&big), Spent::default(), &limits).unwrap_err();
        assert!(matches!(e, EdgeRefusal::FileTooLarge { .. }));
    }

    #[test]
    fn the_pages_precheck_reads_the_allowance_it_forwards_and_decides_as_the_edge() {
        let limits = Limits::default();
        let a = allowance(3 * MIB, 2);
        let sealed = a.seal(SECRET);
        let read = Allowance::read_unverified(&sealed).unwrap();
        assert_eq!(read, a, "the same facts the edge opens");
        assert_eq!(precheck(3 * MIB, &read, &limits, NOW), Ok(Spent { bytes: 3 * MIB, puts: 1 }));
        assert_eq!(
            precheck(3 * MIB + 1, &read, &limits, NOW),
            edge_admit(&alice(), 3 * MIB + 1, Some(&a), Spent::default(), &limits)
        );
        assert!(matches!(
            precheck(3 * MIB + 1, &read, &limits, NOW),
            Err(EdgeRefusal::OverAllowance { left, .. }) if left == 3 * MIB
        ));
        assert!(matches!(
            precheck(51 * MIB, &read, &limits, NOW),
            Err(EdgeRefusal::FileTooLarge { .. })
        ));
        assert_eq!(
            precheck(1, &read, &limits, a.expires_at),
            Err(EdgeRefusal::Expired { expired_at: a.expires_at })
        );
        assert_eq!(
            precheck(1, &allowance(10, 0), &limits, NOW),
            Err(EdgeRefusal::NoPutsLeft),
            "the month's budget is spent"
        );
        // Not an allowance: refused, never guessed at.
        for bad in ["", "abc", "!!!.x", "eyJ1c2VyIjoxfQ.x"] {
            assert!(Allowance::read_unverified(bad).is_err(), "{bad}");
        }
    }
}
