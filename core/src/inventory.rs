//! inventory: the facts about stored objects that fifo, migrate, monitor and the stores share.
//!
//! An inventory is a plain `Vec<ObjectInfo>`: what a store listing returns, what the deciders
//! take. Owner and data type are given fields (the store knows them from the key layout), so
//! nothing here parses keys.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One stored object: where it is, how big, how old, whose, and (when known) its checksum.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ObjectInfo {
    /// The object key in the bucket's key space (`users/{user}/{type}/{name}` or `{type}/{name}`).
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// Last modification, unix milliseconds UTC.
    pub last_modified_ms: i64,
    /// SHA-256 of the content, when the store knows it (absent means unknown, not "no content").
    #[serde(default)]
    pub sha256: Option<Sha256Digest>,
    /// The owning user; `None` is global data (models, training data, anonymous routes).
    #[serde(default)]
    pub user: Option<String>,
    /// The data type (`routes`, `fitness`, `models`, `training_data`).
    pub data_type: String,
}

/// A SHA-256 digest; serialized as 64 lowercase hex characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sha256Digest(pub [u8; 32]);

/// Why a string is not a SHA-256 digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// Hex input of the wrong length or with a non-hex character.
    #[error("not a SHA-256 hex digest ({reason}): expected 64 hex characters, got {input:?}")]
    Hex {
        /// The rejected input (a digest is not secret).
        input: String,
        /// What the hex decoder objected to.
        reason: String,
    },
    /// Base64 input that does not decode to 32 bytes.
    #[error(
        "not a SHA-256 base64 digest: expected 44 base64 characters decoding to 32 bytes, got {input:?}{hint}"
    )]
    Base64 {
        /// The rejected input.
        input: String,
        /// A hint for the common composite-checksum case, or empty.
        hint: &'static str,
    },
}

impl Sha256Digest {
    /// The SHA-256 of `bytes` (the page hashes what it uploads with this, through wasm).
    pub fn of(bytes: &[u8]) -> Self {
        use sha2::Digest as _;
        Sha256Digest(sha2::Sha256::digest(bytes).into())
    }

    /// The digest as 64 lowercase hex characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The digest in standard base64, as S3's `x-amz-checksum-sha256` carries it.
    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.0)
    }

    /// Parse 64 hex characters (either case).
    pub fn from_hex(input: &str) -> Result<Self, DigestError> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(input, &mut out)
            .map_err(|e| DigestError::Hex { input: input.to_owned(), reason: e.to_string() })?;
        Ok(Self(out))
    }

    /// Parse S3's base64 `ChecksumSHA256` of a whole object.
    ///
    /// A multipart upload reports a checksum of part checksums (`...=-3`); that is not the
    /// content's SHA-256, so it is rejected rather than compared with one.
    pub fn from_base64(input: &str) -> Result<Self, DigestError> {
        let hint = if input.contains('-') {
            " (a value ending in -N is a multipart checksum of parts, not the object's SHA-256)"
        } else {
            ""
        };
        let bad = || DigestError::Base64 { input: input.to_owned(), hint };
        let bytes = base64::engine::general_purpose::STANDARD.decode(input).map_err(|_| bad())?;
        let arr: [u8; 32] = bytes.try_into().map_err(|_| bad())?;
        Ok(Self(arr))
    }
}

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256Digest({})", self.to_hex())
    }
}

impl FromStr for Sha256Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_hex(s)
    }
}

impl Serialize for Sha256Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Sha256Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::from_hex(&s).map_err(serde::de::Error::custom)
    }
}

/// Bytes and file count of a set of objects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// Total size in bytes.
    pub bytes: u64,
    /// Number of objects.
    pub files: u64,
}

impl Tally {
    /// Count one object of `size` bytes.
    pub fn add(&mut self, size: u64) {
        self.bytes += size;
        self.files += 1;
    }

    /// Uncount one object of `size` bytes (saturating, so a bad caller cannot wrap around).
    pub fn remove(&mut self, size: u64) {
        self.bytes = self.bytes.saturating_sub(size);
        self.files = self.files.saturating_sub(1);
    }
}

/// One user's usage, in total and per data type.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserUsage {
    /// Total bytes of the user's objects.
    pub bytes: u64,
    /// Number of the user's objects.
    pub files: u64,
    /// Per data type.
    pub by_type: BTreeMap<String, Tally>,
}

/// Usage of a whole inventory: the bucket, each user, and global data per type.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Everything in the inventory.
    pub bucket: Tally,
    /// Per user (users with no objects are absent).
    pub users: BTreeMap<String, UserUsage>,
    /// Global data (no user), per data type.
    pub global: BTreeMap<String, Tally>,
}

/// Summarize an inventory: bytes and file counts per user, per (user, data type), and in total.
///
/// One pass with a hash map, then sorted maps for a stable output; linear in the inventory.
pub fn usage(objects: &[ObjectInfo]) -> Usage {
    let mut interner = GroupInterner::default();
    // Names apart from tallies: the tallies are the hot, randomly accessed part.
    let mut names: Vec<(Option<&str>, &str)> = Vec::new();
    let mut tallies: Vec<Tally> = Vec::new();
    let mut bucket = Tally::default();
    for o in objects {
        bucket.add(o.size);
        let (user, data_type) = (o.user.as_deref(), o.data_type.as_str());
        let (g, new) = interner.intern(user, data_type);
        if new {
            names.push((user, data_type));
            tallies.push(Tally::default());
        }
        tallies[g].add(o.size);
    }
    let mut out = Usage { bucket, ..Usage::default() };
    for ((user, data_type), tally) in names.into_iter().zip(tallies) {
        match user {
            Some(user) => {
                let u = out.users.entry(user.to_owned()).or_default();
                u.bytes += tally.bytes;
                u.files += tally.files;
                u.by_type.insert(data_type.to_owned(), tally);
            }
            None => {
                out.global.insert(data_type.to_owned(), tally);
            }
        }
    }
    out
}

/// Numbers (user, data type) groups 0, 1, 2, … in order of first appearance.
///
/// Grouping a million objects is bound by memory, not arithmetic: with ~20k groups a general
/// hash map (owned keys, 24-byte entries, a separate allocation per key) no longer fits in a
/// core's L2 cache and every lookup misses two or three times. This table keeps the hot data
/// compact: 8-byte slots holding part of the hash, and all group names in one byte arena.
/// Equality is always checked on the names, so a hash collision costs time, never a wrong group.
#[derive(Default)]
pub(crate) struct GroupInterner<'a> {
    /// Open addressing, linear probing: (high half of the hash, group id + 1), id 0 is empty.
    slots: Vec<(u32, u32)>,
    /// Per group: its full hash, read only when the table grows.
    hashes: Vec<u64>,
    /// Per group: its encoded name's range in `arena`.
    spans: Vec<(u32, u32)>,
    arena: Vec<u8>,
    buf: Vec<u8>,
    /// The previous object's group: listings come sorted by key, so it usually repeats.
    last: Option<(Option<&'a str>, &'a str, usize)>,
}

impl<'a> GroupInterner<'a> {
    /// The group id of (user, data type), and whether it is new.
    pub(crate) fn intern(&mut self, user: Option<&'a str>, data_type: &'a str) -> (usize, bool) {
        if let Some((u, t, g)) = self.last
            && u == user
            && t == data_type
        {
            return (g, false);
        }
        // An injective encoding: tag, then a length-prefixed user, then the type.
        self.buf.clear();
        match user {
            None => self.buf.push(0),
            Some(u) => {
                self.buf.push(1);
                self.buf.extend_from_slice(&(u.len() as u64).to_le_bytes());
                self.buf.extend_from_slice(u.as_bytes());
            }
        }
        self.buf.extend_from_slice(data_type.as_bytes());
        let hash = fx_hash(&self.buf);
        if self.spans.len() * 2 >= self.slots.len() {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let mut i = slot_of(hash, mask);
        let tag = (hash >> 32) as u32;
        let found = loop {
            match self.slots[i] {
                (_, 0) => {
                    let g = self.spans.len();
                    let start = self.arena.len();
                    self.arena.extend_from_slice(&self.buf);
                    let span = (start, self.arena.len());
                    let span = (
                        u32::try_from(span.0).expect("group names under 4 GiB"),
                        u32::try_from(span.1).expect("group names under 4 GiB"),
                    );
                    self.spans.push(span);
                    self.hashes.push(hash);
                    self.slots[i] = (tag, u32::try_from(g + 1).expect("fewer than 2^32 groups"));
                    break (g, true);
                }
                (t, id) if t == tag => {
                    let g = id as usize - 1;
                    let (start, end) = self.spans[g];
                    if self.arena[start as usize..end as usize] == self.buf[..] {
                        break (g, false);
                    }
                }
                _ => {}
            }
            i = (i + 1) & mask;
        };
        self.last = Some((user, data_type, found.0));
        found
    }

    /// Double the slots (at least 64) and re-place every group; keeps the load at most half.
    fn grow(&mut self) {
        let cap = (self.slots.len() * 2).max(64);
        let mask = cap - 1;
        let mut slots = vec![(0u32, 0u32); cap];
        for (g, &hash) in self.hashes.iter().enumerate() {
            let mut i = slot_of(hash, mask);
            while slots[i].1 != 0 {
                i = (i + 1) & mask;
            }
            slots[i] = ((hash >> 32) as u32, (g + 1) as u32);
        }
        self.slots = slots;
    }
}

/// The slot for a hash: its low bits (well mixed, see `fx_hash`); slots keep the high half.
fn slot_of(hash: u64, mask: usize) -> usize {
    hash as usize & mask
}

/// The multiply-rotate hash of rustc (FxHash) over 8-byte words, then murmur3's finalizer:
/// FxHash alone leaves names that differ in a few digits clustered in the low bits, which
/// made linear probing crawl.
///
/// Flooding is not a concern: names are owner ids and data types from our own bucket, and the
/// worst case is slower, not wrong.
fn fx_hash(bytes: &[u8]) -> u64 {
    const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
    let mut h: u64 = 0;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
    }
    let rest = chunks.remainder();
    let mut w = [0u8; 8];
    w[..rest.len()].copy_from_slice(rest);
    h = (h.rotate_left(5) ^ u64::from_le_bytes(w) ^ ((bytes.len() as u64) << 56)).wrapping_mul(K);
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(key: &str, size: u64, user: Option<&str>, data_type: &str) -> ObjectInfo {
        ObjectInfo {
            key: key.into(),
            size,
            last_modified_ms: 0,
            sha256: None,
            user: user.map(Into::into),
            data_type: data_type.into(),
        }
    }

    #[test]
    fn digest_hex_roundtrip_and_case() {
        let d = Sha256Digest([0xab; 32]);
        assert_eq!(d.to_hex(), "ab".repeat(32));
        assert_eq!(Sha256Digest::from_hex(&"AB".repeat(32)).unwrap(), d);
        assert_eq!("ab".repeat(32).parse::<Sha256Digest>().unwrap(), d);
    }

    #[test]
    fn digest_rejects_bad_hex() {
        let e = Sha256Digest::from_hex("abc").unwrap_err();
        assert!(e.to_string().contains("64 hex characters"), "{e}");
        assert!(Sha256Digest::from_hex(&"zz".repeat(32)).is_err());
    }

    #[test]
    fn digest_base64_matches_s3_form() {
        // SHA-256 of the empty string, as S3 reports it in ChecksumSHA256.
        let d = Sha256Digest::from_base64("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=").unwrap();
        assert_eq!(d.to_hex(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(d.to_base64(), "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
    }

    #[test]
    fn digest_rejects_multipart_checksum() {
        let e = Sha256Digest::from_base64("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=-3")
            .unwrap_err();
        assert!(e.to_string().contains("multipart"), "{e}");
    }

    #[test]
    fn object_info_serde_snake_case_and_defaults() {
        let json = r#"{"key":"models/m.bin","size":3,"last_modified_ms":-5,"data_type":"models"}"#;
        let o: ObjectInfo = serde_json::from_str(json).unwrap();
        assert_eq!(o.user, None);
        assert_eq!(o.sha256, None);
        assert_eq!(o.last_modified_ms, -5);
        let with =
            ObjectInfo { sha256: Some(Sha256Digest([1; 32])), user: Some("alice".into()), ..o };
        let v = serde_json::to_value(&with).unwrap();
        assert_eq!(v["sha256"], "01".repeat(32));
        assert_eq!(v["user"], "alice");
        let back: ObjectInfo = serde_json::from_value(v).unwrap();
        assert_eq!(back, with);
    }

    #[test]
    fn interner_numbers_groups_in_order_and_keeps_them_apart() {
        let names: Vec<String> = (0..5000).map(|i| format!("u{i}")).collect();
        let mut it = GroupInterner::default();
        assert_eq!(it.intern(None, "routes"), (0, true));
        assert_eq!(it.intern(Some(""), "routes"), (1, true)); // not the same as no user
        assert_eq!(it.intern(None, "models"), (2, true));
        assert_eq!(it.intern(Some("a"), "b"), (3, true));
        assert_eq!(it.intern(Some("ab"), ""), (4, true)); // no ambiguity across the boundary
        for (i, n) in names.iter().enumerate() {
            assert_eq!(it.intern(Some(n), "fitness"), (5 + i, true));
        }
        // Past several growths, every group is still found, and found again after another.
        for (i, n) in names.iter().enumerate().rev() {
            assert_eq!(it.intern(Some(n), "fitness"), (5 + i, false));
            assert_eq!(it.intern(None, "routes"), (0, false));
        }
        assert_eq!(it.intern(Some(""), "routes"), (1, false));
        assert_eq!(it.intern(Some("ab"), ""), (4, false));
        assert_eq!(it.intern(Some("a"), "b"), (3, false));
    }

    #[test]
    fn usage_sums_per_user_type_and_bucket() {
        let inv = vec![
            obj("users/a/routes/1", 10, Some("a"), "routes"),
            obj("users/a/routes/2", 5, Some("a"), "routes"),
            obj("users/a/fitness/1", 7, Some("a"), "fitness"),
            obj("users/b/routes/1", 1, Some("b"), "routes"),
            obj("models/m", 100, None, "models"),
            obj("routes/anon", 3, None, "routes"),
        ];
        let u = usage(&inv);
        assert_eq!(u.bucket, Tally { bytes: 126, files: 6 });
        assert_eq!(u.users["a"].bytes, 22);
        assert_eq!(u.users["a"].files, 3);
        assert_eq!(u.users["a"].by_type["routes"], Tally { bytes: 15, files: 2 });
        assert_eq!(u.users["a"].by_type["fitness"], Tally { bytes: 7, files: 1 });
        assert_eq!(u.users["b"].bytes, 1);
        assert_eq!(u.global["models"], Tally { bytes: 100, files: 1 });
        assert_eq!(u.global["routes"], Tally { bytes: 3, files: 1 });
        assert_eq!(u.users.len(), 2);
        assert_eq!(usage(&[]), Usage::default());
    }
}
