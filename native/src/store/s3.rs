//! The S3 bucket's operations: put, get, head, delete, list, verify. How a request travels
//! (the HTTP client, SigV4 header signing, retries with jittered backoff, request counters for
//! the free-tier ledger) is `transport`'s. Path-style addressing when an endpoint is set (SeaweedFS, MinIO, Garage),
//! virtual-hosted on AWS; kompass-core's `S3Target` decides the URLs.

mod error;
mod list;
mod retry;
mod transport;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use kompass_core::presign::{Credentials, S3Target, uri_encode};
use kompass_core::time::UnixMs;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode, Url};
use sha2::{Digest, Sha256};

pub use error::S3Error;
pub use list::ListPage;
pub use transport::{RequestCounts, RequestOutcome};

use error::Op;
use transport::{Counters, Request, Response};

/// SHA-256 of the empty body, signed for requests without one.
const EMPTY_SHA256_HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// S3 keys are at most 1,024 bytes of UTF-8.
const MAX_KEY_BYTES: usize = 1024;

/// How the store talks to S3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Options {
    /// Retries after the first attempt, on connection errors, timeouts, 5xx and throttling.
    pub max_retries: u32,
    /// Per attempt: from connecting until the whole answer is read.
    pub timeout: Duration,
    /// Per attempt: for the TCP (and TLS) connection alone.
    pub connect_timeout: Duration,
    /// The backoff ceiling before the first retry; it doubles for each further retry.
    pub retry_base_delay: Duration,
    /// The largest backoff ceiling.
    pub retry_max_delay: Duration,
    /// Keys per ListObjectsV2 page, 1 to 1,000 (S3's maximum, and the cheapest).
    pub list_page_size: u32,
    /// Per request, all attempts and backoff included: a hung endpoint ends the call after
    /// this long (plus one second per MiB of body, so big uploads on slow links can finish).
    pub deadline: Duration,
}

/// Options set from the configuration (`KOMPASS_S3_*`), the defaults for every store after.
static CONFIGURED: std::sync::OnceLock<S3Options> = std::sync::OnceLock::new();

impl S3Options {
    /// The built-in defaults: a call to a silent endpoint ends within seconds.
    pub fn builtin() -> Self {
        Self {
            max_retries: 4,
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(3),
            retry_base_delay: Duration::from_millis(100),
            retry_max_delay: Duration::from_secs(5),
            list_page_size: 1000,
            deadline: Duration::from_secs(20),
        }
    }

    /// Reads `KOMPASS_S3_CONNECT_TIMEOUT_SECS`, `KOMPASS_S3_TIMEOUT_SECS` (per attempt),
    /// `KOMPASS_S3_DEADLINE_SECS` (per request, retries included) and `KOMPASS_S3_RETRIES`
    /// from `vars` (decimal seconds); a bad value is warned about and the default kept. The
    /// result becomes [`S3Options::default`] for this process.
    pub fn configure(vars: &std::collections::BTreeMap<String, String>) -> Self {
        let mut o = Self::builtin();
        let secs = |name: &str, into: &mut Duration| {
            if let Some(v) = vars.get(name) {
                match v.trim().parse::<f64>() {
                    Ok(x) if x > 0.0 && x <= 86_400.0 => *into = Duration::from_secs_f64(x),
                    _ => eprintln!(
                        "warning: {name}={v:?} is not a number of seconds (0 < s <= 86400); using {into:?}"
                    ),
                }
            }
        };
        secs("KOMPASS_S3_CONNECT_TIMEOUT_SECS", &mut o.connect_timeout);
        secs("KOMPASS_S3_TIMEOUT_SECS", &mut o.timeout);
        secs("KOMPASS_S3_DEADLINE_SECS", &mut o.deadline);
        if let Some(v) = vars.get("KOMPASS_S3_RETRIES") {
            match v.trim().parse::<u32>() {
                Ok(n) if n <= 10 => o.max_retries = n,
                _ => eprintln!(
                    "warning: KOMPASS_S3_RETRIES={v:?} is not 0 to 10; using {}",
                    o.max_retries
                ),
            }
        }
        let _ = CONFIGURED.set(o.clone());
        o
    }
}

impl Default for S3Options {
    fn default() -> Self {
        CONFIGURED.get().cloned().unwrap_or_else(Self::builtin)
    }
}

/// Whether a PUT may replace an existing object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutMode {
    /// Write, replacing any object of that key.
    Overwrite,
    /// Write only if the key is free (`If-None-Match: *`); else [`S3Error::PreconditionFailed`].
    CreateOnly,
}

/// A successful PUT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutOutcome {
    /// The new object's ETag, without quotes.
    pub etag: Option<String>,
    /// True when the server echoed the SHA-256 it checked (AWS does; SeaweedFS may not).
    pub checksum_confirmed: bool,
    /// Attempts it took (1 without retries).
    pub attempts: u32,
}

/// What S3 says about an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// The object key.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// Last modification, unix milliseconds.
    pub last_modified_ms: u64,
    /// The ETag, without quotes.
    pub etag: Option<String>,
    /// The SHA-256 of the content, when known: from HEAD (S3's checksum or our
    /// `x-amz-meta-sha256`), never from a listing.
    pub sha256: Option<[u8; 32]>,
}

/// An S3 bucket. Cheap to clone; clones share the HTTP connection pool and the counters.
#[derive(Clone)]
pub struct S3Store {
    inner: Arc<Inner>,
}

struct Inner {
    client: reqwest::Client,
    target: S3Target,
    creds: Credentials,
    opts: S3Options,
    /// Scheme, host and port, for messages.
    endpoint: String,
    counters: Counters,
}

impl std::fmt::Debug for S3Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Store")
            .field("target", &self.inner.target)
            .field("creds", &self.inner.creds)
            .field("opts", &self.inner.opts)
            .finish_non_exhaustive()
    }
}

impl S3Store {
    /// A store for `target` signed with `creds`. Checks the target; sends nothing.
    pub fn new(target: S3Target, creds: Credentials, opts: S3Options) -> Result<Self, S3Error> {
        target.validate()?;
        let client = transport::client(&opts)?;
        let endpoint =
            Url::parse(&target.bucket_url())
                .map(|u| u.origin().ascii_serialization())
                .map_err(|e| S3Error::Protocol(format!("the bucket URL does not parse ({e})")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                target,
                creds,
                opts,
                endpoint,
                counters: Counters::default(),
            }),
        })
    }

    /// Final outcomes of the requests sent so far, by operation.
    pub fn outcomes(&self) -> Vec<RequestOutcome> {
        let m = self.inner.counters.outcomes.lock().unwrap_or_else(|e| e.into_inner());
        m.iter().map(|(&(op, outcome), &count)| RequestOutcome { op, outcome, count }).collect()
    }

    /// The bucket this store writes to.
    pub fn target(&self) -> &S3Target {
        &self.inner.target
    }

    /// Requests sent so far (all attempts, by class).
    pub fn counts(&self) -> RequestCounts {
        self.inner.counters.snapshot()
    }

    /// Uploads `body` as `key` with its SHA-256, sent as `x-amz-checksum-sha256` (S3 checks it)
    /// and as `x-amz-meta-sha256` (so HEAD returns it on any S3-compatible server).
    /// The checksum is checked against the body first: a wrong one is never stored.
    pub async fn put(
        &self,
        key: &str,
        body: impl Into<Bytes>,
        sha256: [u8; 32],
        mode: PutMode,
    ) -> Result<PutOutcome, S3Error> {
        let body: Bytes = body.into();
        let url = self.object_url(key)?;
        if <[u8; 32]>::from(Sha256::digest(&body)) != sha256 {
            return Err(S3Error::WrongChecksum { key: key.to_owned() });
        }
        let checksum_b64 = BASE64.encode(sha256);
        let sha256_hex = hex::encode(sha256);
        let mut headers = vec![
            ("x-amz-checksum-sha256".to_owned(), checksum_b64.clone()),
            ("x-amz-meta-sha256".to_owned(), sha256_hex.clone()),
        ];
        if mode == PutMode::CreateOnly {
            headers.push(("if-none-match".to_owned(), "*".to_owned()));
        }
        let size = body.len() as u64;
        let req = Request {
            op: Op::Put,
            method: Method::PUT,
            url,
            key: Some(key),
            headers,
            body,
            payload_sha256_hex: sha256_hex,
        };
        let resp = self.execute(&req).await?;
        if !resp.status.is_success() {
            let err = self.error_for(&req, &resp);
            // A retried create-only PUT may have landed on an attempt whose answer was lost;
            // then the retry's 412 is about our own write. The same bytes there mean success.
            // (If that HEAD fails, the outcome is unknown: its error is the honest answer.)
            if matches!(err, S3Error::PreconditionFailed { .. })
                && resp.attempts > 1
                && let Some(meta) = self.head(key).await?
                && meta.size == size
                && meta.sha256 == Some(sha256)
            {
                return Ok(PutOutcome {
                    etag: meta.etag,
                    checksum_confirmed: false,
                    attempts: resp.attempts,
                });
            }
            return Err(err);
        }
        let echoed = header_str(&resp.headers, "x-amz-checksum-sha256");
        if let Some(echoed) = echoed
            && echoed != checksum_b64
        {
            return Err(S3Error::ChecksumMismatch {
                key: key.to_owned(),
                code: "a different x-amz-checksum-sha256 in the answer".to_owned(),
            });
        }
        Ok(PutOutcome {
            etag: header_str(&resp.headers, "etag").map(|e| strip_etag_quotes(e).to_owned()),
            checksum_confirmed: echoed.is_some(),
            attempts: resp.attempts,
        })
    }

    /// Downloads `key`. When the server has the object's SHA-256, the bytes are checked
    /// against it ([`S3Error::Corrupt`] if they differ).
    pub async fn get(&self, key: &str) -> Result<Vec<u8>, S3Error> {
        let req = self.object_request(Op::Get, Method::GET, key, true)?;
        let resp = self.execute(&req).await?;
        if !resp.status.is_success() {
            return Err(self.error_for(&req, &resp));
        }
        if let Some(expected) = stored_sha256(&resp.headers)
            && <[u8; 32]>::from(Sha256::digest(&resp.body)) != expected
        {
            return Err(S3Error::Corrupt { key: key.to_owned() });
        }
        Ok(resp.body.into())
    }

    /// The object's metadata, or `None` if there is no such object. (A HEAD answer has no
    /// body, so a missing bucket also reads as `None`; [`Self::check_access`] tells.)
    pub async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, S3Error> {
        let req = self.object_request(Op::Head, Method::HEAD, key, true)?;
        let resp = self.execute(&req).await?;
        if resp.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status.is_success() {
            return Err(self.error_for(&req, &resp));
        }
        meta_from_headers(key, &resp.headers).map(Some)
    }

    /// Deletes `key`; deleting a missing object succeeds (as on S3).
    pub async fn delete(&self, key: &str) -> Result<(), S3Error> {
        let req = self.object_request(Op::Delete, Method::DELETE, key, false)?;
        let resp = self.execute(&req).await?;
        if resp.status.is_success() {
            return Ok(());
        }
        match self.error_for(&req, &resp) {
            S3Error::NotFound { .. } => Ok(()),
            err => Err(err),
        }
    }

    /// One ListObjectsV2 page of the keys under `prefix`, starting at `continuation_token`
    /// (`None` for the first page).
    pub async fn list_page(
        &self,
        prefix: &str,
        continuation_token: Option<&str>,
    ) -> Result<ListPage, S3Error> {
        let page_size = self.inner.opts.list_page_size.clamp(1, 1000);
        let resp = self.list_request(prefix, continuation_token, page_size).await?;
        list::parse_list(&resp.body)
    }

    /// Every object under `prefix`, following continuation tokens past 1,000 keys.
    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, S3Error> {
        self.list_with_progress(prefix, |_| {}).await
    }

    /// Like [`Self::list`], calling `progress` with the number of objects so far after each page.
    pub async fn list_with_progress(
        &self,
        prefix: &str,
        mut progress: impl FnMut(usize),
    ) -> Result<Vec<ObjectMeta>, S3Error> {
        let mut objects = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self.list_page(prefix, token.as_deref()).await?;
            objects.extend(page.objects);
            progress(objects.len());
            match page.next_continuation_token {
                None => return Ok(objects),
                // A server that hands back the same token would make this loop forever.
                Some(next) if token.as_deref() == Some(next.as_str()) => {
                    return Err(S3Error::Protocol(
                        "ListObjectsV2 returned the same continuation token twice".into(),
                    ));
                }
                Some(next) => token = Some(next),
            }
        }
    }

    /// True only if `key` exists with exactly `size` bytes and this SHA-256: from HEAD when
    /// the server keeps the checksum, else by downloading and hashing. A local copy may be
    /// removed only after this returns true.
    pub async fn verify(&self, key: &str, size: u64, sha256: [u8; 32]) -> Result<bool, S3Error> {
        let Some(meta) = self.head(key).await? else {
            return Ok(false);
        };
        if meta.size != size {
            return Ok(false);
        }
        if let Some(stored) = meta.sha256 {
            return Ok(stored == sha256);
        }
        let bytes = match self.get(key).await {
            Ok(bytes) => bytes,
            Err(S3Error::NotFound { .. }) => return Ok(false),
            Err(e) => return Err(e),
        };
        Ok(bytes.len() as u64 == size && <[u8; 32]>::from(Sha256::digest(&bytes)) == sha256)
    }

    /// One signed request to the bucket (ListObjectsV2, max-keys=1) that tells apart an
    /// unreachable endpoint ([`S3Error::Unreachable`]), bad credentials
    /// ([`S3Error::BadCredentials`]), a missing bucket ([`S3Error::NoSuchBucket`]) and a
    /// missing permission ([`S3Error::AccessDenied`]).
    pub async fn check_access(&self) -> Result<(), S3Error> {
        self.list_request("", None, 1).await.map(|_| ())
    }

    async fn list_request(
        &self,
        prefix: &str,
        continuation_token: Option<&str>,
        max_keys: u32,
    ) -> Result<Response, S3Error> {
        let max_keys = max_keys.to_string();
        // encoding-type=url: keys come back URL-encoded, so any key survives XML 1.0.
        let mut params =
            vec![("encoding-type", "url"), ("list-type", "2"), ("max-keys", max_keys.as_str())];
        if !prefix.is_empty() {
            params.push(("prefix", prefix));
        }
        if let Some(token) = continuation_token {
            params.push(("continuation-token", token));
        }
        let query: Vec<String> =
            params.iter().map(|(k, v)| format!("{k}={}", uri_encode(v, true))).collect();
        let url = format!("{}?{}", self.inner.target.bucket_url(), query.join("&"));
        let url = Url::parse(&url)
            .map_err(|e| S3Error::Protocol(format!("the list URL does not parse ({e})")))?;
        let req = Request {
            op: Op::List,
            method: Method::GET,
            url,
            key: None,
            headers: Vec::new(),
            body: Bytes::new(),
            payload_sha256_hex: EMPTY_SHA256_HEX.to_owned(),
        };
        let resp = self.execute(&req).await?;
        if !resp.status.is_success() {
            return Err(self.error_for(&req, &resp));
        }
        Ok(resp)
    }

    fn object_request<'a>(
        &self,
        op: Op,
        method: Method,
        key: &'a str,
        with_checksum: bool,
    ) -> Result<Request<'a>, S3Error> {
        let mut headers = Vec::new();
        if with_checksum {
            // Asks S3 to return the stored x-amz-checksum-sha256.
            headers.push(("x-amz-checksum-mode".to_owned(), "ENABLED".to_owned()));
        }
        Ok(Request {
            op,
            method,
            url: self.object_url(key)?,
            key: Some(key),
            headers,
            body: Bytes::new(),
            payload_sha256_hex: EMPTY_SHA256_HEX.to_owned(),
        })
    }

    /// The object's URL; the key is encoded once, and that exact string is signed and sent.
    fn object_url(&self, key: &str) -> Result<Url, S3Error> {
        let invalid = |reason| S3Error::InvalidKey { key: key.to_owned(), reason };
        if key.is_empty() {
            return Err(invalid("an object key cannot be empty"));
        }
        if key.len() > MAX_KEY_BYTES {
            return Err(invalid("S3 keys are at most 1,024 bytes; use a shorter name"));
        }
        if key.split('/').any(|s| s == "." || s == "..") {
            return Err(invalid(
                "a '.' or '..' segment is resolved away by URLs and would reach another object; rename it",
            ));
        }
        let raw = self.inner.target.object_url(key);
        let url = Url::parse(&raw).map_err(|_| invalid("it does not form a valid URL"))?;
        // The signature covers the path as sent: a URL parser that rewrote it would break it.
        if url.as_str() != raw {
            return Err(invalid("it does not survive URL parsing unchanged; rename it"));
        }
        Ok(url)
    }
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// ETags arrive quoted (`"abc"`); compare and show them bare.
pub(crate) fn strip_etag_quotes(etag: &str) -> &str {
    etag.trim().trim_matches('"')
}

/// The object's SHA-256 from an answer's headers: S3's own checksum (with
/// `x-amz-checksum-mode: ENABLED`), else the `x-amz-meta-sha256` we wrote. A multipart
/// object's composite checksum (`...-N`) is not a hash of the content and is skipped.
fn stored_sha256(headers: &HeaderMap) -> Option<[u8; 32]> {
    let composite = header_str(headers, "x-amz-checksum-type")
        .is_some_and(|t| t.eq_ignore_ascii_case("COMPOSITE"));
    let from_checksum = header_str(headers, "x-amz-checksum-sha256")
        .filter(|_| !composite)
        .and_then(|v| BASE64.decode(v.trim()).ok())
        .and_then(|v| <[u8; 32]>::try_from(v).ok());
    from_checksum.or_else(|| {
        header_str(headers, "x-amz-meta-sha256")
            .and_then(|v| hex::decode(v.trim()).ok())
            .and_then(|v| <[u8; 32]>::try_from(v).ok())
    })
}

/// A date S3 sent as unsigned milliseconds: a stored object is not older than 1970.
pub(crate) fn parse_s3_date(t: Option<UnixMs>) -> Option<u64> {
    t.and_then(|t| u64::try_from(t.as_i64()).ok())
}

fn meta_from_headers(key: &str, headers: &HeaderMap) -> Result<ObjectMeta, S3Error> {
    // Read from the header: reqwest's content_length() is the (empty) body's for HEAD.
    let size = header_str(headers, "content-length")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .ok_or_else(|| {
            S3Error::Protocol(format!("HEAD {key} answered without a Content-Length"))
        })?;
    let last_modified = header_str(headers, "last-modified").unwrap_or("");
    let last_modified_ms =
        parse_s3_date(UnixMs::parse_http_date(last_modified)).ok_or_else(|| {
            S3Error::Protocol(format!(
                "HEAD {key} answered with an unreadable Last-Modified {last_modified:?}"
            ))
        })?;
    Ok(ObjectMeta {
        key: key.to_owned(),
        size,
        last_modified_ms,
        etag: header_str(headers, "etag").map(|e| strip_etag_quotes(e).to_owned()),
        sha256: stored_sha256(headers),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    fn store(endpoint: Option<&str>, bucket: &str) -> S3Store {
        let target = S3Target::new(endpoint.map(str::to_owned), "us-east-1", bucket).unwrap();
        S3Store::new(target, Credentials::new("AKID", "sekrit-value-123"), S3Options::default())
            .unwrap()
    }

    #[test]
    fn checksum_comes_from_s3_first_then_our_metadata() {
        let sha = <[u8; 32]>::from(Sha256::digest(b"hello"));
        let other = <[u8; 32]>::from(Sha256::digest(b"other"));
        let both = headers(&[
            ("x-amz-checksum-sha256", &BASE64.encode(sha)),
            ("x-amz-meta-sha256", &hex::encode(other)),
        ]);
        assert_eq!(stored_sha256(&both), Some(sha));
        let meta_only = headers(&[("x-amz-meta-sha256", &hex::encode(other))]);
        assert_eq!(stored_sha256(&meta_only), Some(other));
        let composite = headers(&[
            ("x-amz-checksum-sha256", &format!("{}-3", BASE64.encode(sha))),
            ("x-amz-checksum-type", "COMPOSITE"),
        ]);
        assert_eq!(stored_sha256(&composite), None);
        let garbage =
            headers(&[("x-amz-checksum-sha256", "not base64!"), ("x-amz-meta-sha256", "abcd")]);
        assert_eq!(stored_sha256(&garbage), None);
        assert_eq!(stored_sha256(&HeaderMap::new()), None);
    }

    #[test]
    fn head_headers_become_metadata() {
        let sha = <[u8; 32]>::from(Sha256::digest(b"hello"));
        let h = headers(&[
            ("content-length", "5"),
            ("last-modified", "Wed, 21 Oct 2015 07:28:00 GMT"),
            ("etag", "\"5d41402abc4b2a76b9719d911017c592\""),
            ("x-amz-meta-sha256", &hex::encode(sha)),
        ]);
        let meta = meta_from_headers("k", &h).unwrap();
        assert_eq!(
            meta,
            ObjectMeta {
                key: "k".into(),
                size: 5,
                last_modified_ms: 1_445_412_480_000,
                etag: Some("5d41402abc4b2a76b9719d911017c592".into()),
                sha256: Some(sha),
            }
        );
        let no_length = headers(&[("last-modified", "Wed, 21 Oct 2015 07:28:00 GMT")]);
        assert!(matches!(meta_from_headers("k", &no_length), Err(S3Error::Protocol(_))));
        let bad_date = headers(&[("content-length", "5"), ("last-modified", "yesterday")]);
        assert!(matches!(meta_from_headers("k", &bad_date), Err(S3Error::Protocol(_))));
    }

    #[test]
    fn urls_are_path_style_with_an_endpoint_and_virtual_hosted_on_aws() {
        let local = store(Some("http://127.0.0.1:8333"), "kompass-test");
        assert_eq!(
            local.object_url("users/u1/routes/a b+c.json").unwrap().as_str(),
            "http://127.0.0.1:8333/kompass-test/users/u1/routes/a%20b%2Bc.json"
        );
        let aws = store(None, "kompass-data");
        assert_eq!(
            aws.object_url("routes/ä/🚲.json").unwrap().as_str(),
            "https://kompass-data.s3.amazonaws.com/routes/%C3%A4/%F0%9F%9A%B2.json"
        );
        assert_eq!(aws.inner.endpoint, "https://kompass-data.s3.amazonaws.com");
        assert_eq!(local.inner.endpoint, "http://127.0.0.1:8333");
    }

    #[test]
    fn keys_that_urls_would_rewrite_are_refused() {
        let s = store(Some("http://127.0.0.1:8333"), "kompass-test");
        for bad in ["", "a/../b", "./a", "a/.", "..", &"k".repeat(1025)] {
            assert!(matches!(s.object_url(bad), Err(S3Error::InvalidKey { .. })), "{bad:?}");
        }
        for good in ["a/.../b", "a/.hidden", "a//b", "%41", "a?b#c", "~tilde"] {
            assert!(s.object_url(good).is_ok(), "{good:?}");
        }
        assert_eq!(s.object_url("%41?#").unwrap().path(), "/kompass-test/%2541%3F%23");
    }

    proptest::proptest! {
        /// Any key is sent as one encoding of itself: the URL parser keeps it as built (so the
        /// signed path is the sent path) and decoding the path gives the key back.
        #[test]
        fn every_key_round_trips_through_its_url(key in "[^\\x00]{1,40}") {
            proptest::prop_assume!(!key.split('/').any(|s| s == "." || s == ".."));
            // One store: building a client loads the TLS roots, which is slow.
            static STORE: std::sync::LazyLock<S3Store> =
                std::sync::LazyLock::new(|| store(Some("http://127.0.0.1:8333"), "kompass-test"));
            let url = STORE.object_url(&key).unwrap();
            let path = url.path().strip_prefix("/kompass-test/").unwrap();
            proptest::prop_assert!(path
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~/%".contains(&b)));
            let decoded = percent_encoding::percent_decode_str(path).decode_utf8().unwrap();
            proptest::prop_assert_eq!(decoded, key.as_str());
        }
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let s = store(None, "kompass-data");
        let shown = format!("{s:?}");
        assert!(shown.contains("AKID"));
        assert!(!shown.contains("sekrit"), "{shown}");
    }

    #[test]
    fn request_classes_add_up() {
        let c = RequestCounts { put: 3, list: 2, get: 5, head: 7, delete: 1 };
        assert_eq!(c.put_class(), 5);
        assert_eq!(c.get_class(), 12);
    }
}
