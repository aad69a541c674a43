//! Presigned URLs (SigV4 query-string auth): a GET to read a key, a PUT that only accepts the
//! exact bytes that passed the precheck.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SessionTokenMode, SignableBody, SignatureLocation,
    SigningError, SigningSettings, UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::{
    Credentials, CredentialsError, MAX_UNIX_SECS, S3Target, SERVICE, TargetError, TimeError,
    unix_secs, uri_encode,
};

/// The shortest expiry S3 accepts.
pub const MIN_EXPIRY: Duration = Duration::from_secs(1);
/// The longest expiry S3 accepts for SigV4 presigned URLs: 7 days.
pub const MAX_EXPIRY: Duration = Duration::from_secs(604_800);

/// S3's limit on the length of a key, in bytes.
const MAX_KEY_BYTES: usize = 1024;

/// A presigned request; serialises to the `presign` JSON contract
/// `{"url","method","headers","key","expires_at"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presigned {
    /// The full URL, signature in the query string.
    pub url: String,
    /// `GET` or `PUT`.
    pub method: String,
    /// Headers the client must send with exactly these values (lower-case names). A browser
    /// sets `content-length` itself from the body; `fetch` refuses to set it.
    pub headers: BTreeMap<String, String>,
    /// The object key (not encoded).
    pub key: String,
    /// When the URL stops working, RFC 3339 UTC, e.g. `2026-11-28T12:00:00Z`.
    pub expires_at: String,
}

/// Why a URL could not be presigned.
#[derive(Debug, Error)]
pub enum PresignError {
    /// The expiry is outside what S3 accepts.
    #[error(
        "presigned URL expiry of {requested:?} is out of range: choose between 1 second and 7 days (604800 s)"
    )]
    ExpiryOutOfRange {
        /// The expiry asked for.
        requested: Duration,
    },
    /// The key is empty or longer than S3 allows.
    #[error("object key is {reason}: pass a key of 1 to 1024 bytes")]
    InvalidKey {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The key is rider (fitness) data, which is stored only by the server (the scrub
    /// policy, [`crate::scrub::POLICY`]): no upload URL is ever issued for it.
    #[error("{}", crate::scrub::policy::USE_RIDER_ROUTE)]
    RiderData,
    /// The content type could not be sent as a header value.
    #[error(
        "content type {content_type:?} is not a valid header value: use a MIME type such as application/json"
    )]
    InvalidContentType {
        /// The content type as given.
        content_type: String,
    },
    /// The bucket, region or endpoint is invalid.
    #[error(transparent)]
    Target(#[from] TargetError),
    /// The credentials are unusable.
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    /// The time is outside the signer's range.
    #[error(transparent)]
    Time(#[from] TimeError),
    /// aws-sigv4 refused the request (a bug here if the checks above passed).
    #[error("SigV4 signing failed: {0}")]
    Signing(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl From<SigningError> for PresignError {
    fn from(e: SigningError) -> Self {
        Self::Signing(Box::new(e))
    }
}

/// Presigns a GET of `key`, valid from `now` for `expires` (1 s ..= 7 days).
pub fn presign_get(
    target: &S3Target,
    key: &str,
    creds: &Credentials,
    now: SystemTime,
    expires: Duration,
) -> Result<Presigned, PresignError> {
    presign(target, "GET", key, BTreeMap::new(), creds, now, expires)
}

/// Presigns a PUT of `key` that S3 accepts only with a body of `size` bytes whose SHA-256 is
/// `sha256`: `content-length` and `x-amz-checksum-sha256` are signed headers, and S3 checks
/// the body against the checksum. A `content_type` is signed too, so it must be sent as given.
#[allow(clippy::too_many_arguments)] // the contract shared with the CLI, wasm and edge callers
pub fn presign_put(
    target: &S3Target,
    key: &str,
    size: u64,
    sha256: [u8; 32],
    creds: &Credentials,
    now: SystemTime,
    expires: Duration,
    content_type: Option<&str>,
) -> Result<Presigned, PresignError> {
    if crate::key::ObjectKey::from_s3_key(key)
        .is_ok_and(|k| k.data_type() == crate::key::DataType::Fitness)
    {
        return Err(PresignError::RiderData);
    }
    let mut headers = BTreeMap::new();
    headers.insert("content-length".to_owned(), size.to_string());
    headers.insert("x-amz-checksum-sha256".to_owned(), STANDARD.encode(sha256));
    if let Some(content_type) = content_type {
        let printable = content_type.bytes().all(|b| b == b' ' || b.is_ascii_graphic());
        if content_type.trim().is_empty() || content_type.len() > 256 || !printable {
            return Err(PresignError::InvalidContentType { content_type: content_type.to_owned() });
        }
        headers.insert("content-type".to_owned(), content_type.to_owned());
    }
    presign(target, "PUT", key, headers, creds, now, expires)
}

fn presign(
    target: &S3Target,
    method: &str,
    key: &str,
    headers: BTreeMap<String, String>,
    creds: &Credentials,
    now: SystemTime,
    expires: Duration,
) -> Result<Presigned, PresignError> {
    if !(MIN_EXPIRY..=MAX_EXPIRY).contains(&expires) {
        return Err(PresignError::ExpiryOutOfRange { requested: expires });
    }
    if key.is_empty() {
        return Err(PresignError::InvalidKey { reason: "empty" });
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(PresignError::InvalidKey { reason: "longer than 1024 bytes" });
    }
    target.validate()?;
    creds.validate()?;
    let expires_secs = expires.as_secs();
    // X-Amz-Date has whole seconds, so the URL expires at the whole second plus the expiry.
    let expires_at = unix_secs(now)? + expires_secs;
    if expires_at > MAX_UNIX_SECS {
        return Err(TimeError::TooLate.into());
    }

    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(Duration::from_secs(expires_secs));
    // S3 takes the path as sent (encoded once, not normalised) and needs no payload header
    // for a presigned URL; the session token is part of what S3 signs.
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    settings.payload_checksum_kind = PayloadChecksumKind::NoHeader;
    settings.session_token_mode = SessionTokenMode::Include;

    let identity = creds.identity();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&target.region)
        .name(SERVICE)
        .time(now)
        .settings(settings)
        .build()
        .map_err(|e| PresignError::Signing(Box::new(e)))?
        .into();

    let url = target.object_url(key);
    let request = aws_sigv4::http_request::SignableRequest::new(
        method,
        url.as_str(),
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        // The client's bytes are bound by the signed checksum header, not the payload hash.
        SignableBody::UnsignedPayload,
    )?;
    let (instructions, _signature) = sign(request, &params)?.into_parts();
    let (_, query) = instructions.into_parts();

    let query: Vec<String> = query
        .iter()
        .map(|(name, value)| format!("{}={}", uri_encode(name, true), uri_encode(value, true)))
        .collect();
    Ok(Presigned {
        url: format!("{url}?{}", query.join("&")),
        method: method.to_owned(),
        headers,
        key: key.to_owned(),
        expires_at: crate::time::rfc3339_utc(expires_at),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    /// 2013-05-24T00:00:00Z, the time of the AWS documentation's examples.
    fn doc_time() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_369_353_600)
    }

    fn doc_creds() -> Credentials {
        Credentials::new("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    }

    fn doc_target() -> S3Target {
        S3Target::new(None, "us-east-1", "examplebucket").unwrap()
    }

    fn query_param<'a>(url: &'a str, name: &str) -> Option<&'a str> {
        let query = url.split_once('?')?.1;
        query.split('&').find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
    }

    fn sha(bytes: &[u8]) -> [u8; 32] {
        use sha2::Digest as _;
        sha2::Sha256::digest(bytes).into()
    }

    #[test]
    fn no_upload_url_is_issued_for_rider_data() {
        let put = |key: &str| {
            presign_put(
                &doc_target(),
                key,
                2,
                sha(b"{}"),
                &doc_creds(),
                doc_time(),
                Duration::from_secs(60),
                None,
            )
        };
        let refused = put("users/alice/fitness/fitness_data_20240501_063000.json").unwrap_err();
        assert!(matches!(refused, PresignError::RiderData), "{refused:?}");
        assert!(refused.to_string().contains("POST /api/rider"), "{refused}");
        assert!(put("users/alice/routes/ride.json").is_ok());
        // A key outside the layout is not rider data by name (the caller validates keys).
        assert!(put("test.txt").is_ok());
    }

    /// "Authenticating Requests: Using Query Parameters (AWS Signature Version 4)", AWS S3 docs.
    #[test]
    fn reproduces_the_aws_presigned_get_example() {
        let p = presign_get(
            &doc_target(),
            "test.txt",
            &doc_creds(),
            doc_time(),
            Duration::from_secs(86_400),
        )
        .unwrap();
        assert_eq!(
            p.url,
            "https://examplebucket.s3.amazonaws.com/test.txt\
             ?X-Amz-Algorithm=AWS4-HMAC-SHA256\
             &X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request\
             &X-Amz-Date=20130524T000000Z\
             &X-Amz-Expires=86400\
             &X-Amz-SignedHeaders=host\
             &X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
        );
        assert_eq!(p.method, "GET");
        assert!(p.headers.is_empty());
        assert_eq!(p.key, "test.txt");
        assert_eq!(p.expires_at, "2013-05-25T00:00:00Z");
    }

    #[test]
    fn serialises_to_the_json_contract() {
        let p = presign_get(
            &doc_target(),
            "test.txt",
            &doc_creds(),
            doc_time(),
            Duration::from_secs(60),
        )
        .unwrap();
        let json = serde_json::to_value(&p).unwrap();
        let mut fields: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
        fields.sort_unstable();
        assert_eq!(fields, ["expires_at", "headers", "key", "method", "url"]);
        assert_eq!(json["expires_at"], "2013-05-24T00:01:00Z");
        assert_eq!(json["method"], "GET");
        assert!(json["headers"].as_object().unwrap().is_empty());
        let back: Presigned = serde_json::from_value(json).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn put_signs_length_and_checksum() {
        let body = b"{\"route\": 1}";
        let p = presign_put(
            &doc_target(),
            "users/u1/routes/r.json",
            body.len() as u64,
            sha(body),
            &doc_creds(),
            doc_time(),
            Duration::from_secs(300),
            None,
        )
        .unwrap();
        assert_eq!(p.method, "PUT");
        assert_eq!(
            query_param(&p.url, "X-Amz-SignedHeaders"),
            Some("content-length%3Bhost%3Bx-amz-checksum-sha256")
        );
        assert_eq!(p.headers.len(), 2);
        assert_eq!(p.headers["content-length"], body.len().to_string());
        // base64 of the 32-byte digest: 44 characters, and decodes back to the digest.
        let checksum = &p.headers["x-amz-checksum-sha256"];
        assert_eq!(STANDARD.decode(checksum).unwrap(), sha(body));
        assert!(
            p.url.starts_with("https://examplebucket.s3.amazonaws.com/users/u1/routes/r.json?")
        );
        assert_eq!(p.expires_at, "2013-05-24T00:05:00Z");
    }

    #[test]
    fn put_signs_the_content_type_when_given() {
        let p = presign_put(
            &doc_target(),
            "k.json",
            3,
            sha(b"abc"),
            &doc_creds(),
            doc_time(),
            Duration::from_secs(300),
            Some("application/json"),
        )
        .unwrap();
        assert_eq!(
            query_param(&p.url, "X-Amz-SignedHeaders"),
            Some("content-length%3Bcontent-type%3Bhost%3Bx-amz-checksum-sha256")
        );
        assert_eq!(p.headers["content-type"], "application/json");

        for bad in ["", "  ", "text/plain\r\nx-evil: 1", "é"] {
            assert!(
                matches!(
                    presign_put(
                        &doc_target(),
                        "k",
                        1,
                        [0; 32],
                        &doc_creds(),
                        doc_time(),
                        Duration::from_secs(60),
                        Some(bad)
                    ),
                    Err(PresignError::InvalidContentType { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn put_signature_changes_with_size_and_checksum() {
        let sign_put = |size: u64, digest: [u8; 32]| {
            let p = presign_put(
                &doc_target(),
                "k.json",
                size,
                digest,
                &doc_creds(),
                doc_time(),
                Duration::from_secs(300),
                None,
            )
            .unwrap();
            query_param(&p.url, "X-Amz-Signature").unwrap().to_owned()
        };
        let base = sign_put(3, sha(b"abc"));
        assert_eq!(base.len(), 64);
        assert_eq!(base, sign_put(3, sha(b"abc")), "signing is deterministic");
        assert_ne!(base, sign_put(4, sha(b"abc")), "size is signed");
        assert_ne!(base, sign_put(3, sha(b"abd")), "checksum is signed");
    }

    #[test]
    fn path_style_endpoint_signs_host_with_port() {
        let target =
            S3Target::new(Some("http://127.0.0.1:8333".into()), "us-east-1", "kompass").unwrap();
        let p = presign_get(
            &target,
            "routes/a b.json",
            &doc_creds(),
            doc_time(),
            Duration::from_secs(60),
        )
        .unwrap();
        assert!(
            p.url.starts_with("http://127.0.0.1:8333/kompass/routes/a%20b.json?X-Amz-Algorithm="),
            "{}",
            p.url
        );
        // The signature covers host:port; another port gives another signature.
        let other =
            S3Target::new(Some("http://127.0.0.1:9000".into()), "us-east-1", "kompass").unwrap();
        let q = presign_get(
            &other,
            "routes/a b.json",
            &doc_creds(),
            doc_time(),
            Duration::from_secs(60),
        )
        .unwrap();
        assert_ne!(query_param(&p.url, "X-Amz-Signature"), query_param(&q.url, "X-Amz-Signature"));
    }

    #[test]
    fn expiry_is_bounded() {
        let get =
            |expires| presign_get(&doc_target(), "test.txt", &doc_creds(), doc_time(), expires);
        for bad in [
            Duration::ZERO,
            Duration::from_millis(999),
            Duration::from_secs(604_801),
            Duration::from_millis(604_800_001),
        ] {
            match get(bad) {
                Err(PresignError::ExpiryOutOfRange { requested }) => assert_eq!(requested, bad),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
        let msg = get(Duration::ZERO).unwrap_err().to_string();
        assert!(msg.contains("604800"), "{msg}");
        let one = get(Duration::from_secs(1)).unwrap();
        assert_eq!(query_param(&one.url, "X-Amz-Expires"), Some("1"));
        let week = get(Duration::from_secs(604_800)).unwrap();
        assert_eq!(query_param(&week.url, "X-Amz-Expires"), Some("604800"));
        assert_eq!(week.expires_at, "2013-05-31T00:00:00Z");
    }

    #[test]
    fn session_token_is_signed_and_sent() {
        let token = "FwoGZXIvYXdz+token/with=chars";
        let creds = doc_creds().with_session_token(token);
        let p =
            presign_get(&doc_target(), "test.txt", &creds, doc_time(), Duration::from_secs(86_400))
                .unwrap();
        assert_eq!(
            query_param(&p.url, "X-Amz-Security-Token"),
            Some("FwoGZXIvYXdz%2Btoken%2Fwith%3Dchars")
        );
        // S3 includes the token in the signed query string: the signature differs from the
        // documented one (same request, no token).
        let sig = query_param(&p.url, "X-Amz-Signature").unwrap();
        assert_ne!(sig, "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
        let other = presign_get(
            &doc_target(),
            "test.txt",
            &doc_creds().with_session_token("another-token"),
            doc_time(),
            Duration::from_secs(86_400),
        )
        .unwrap();
        assert_ne!(Some(sig), query_param(&other.url, "X-Amz-Signature"));
        // No token, no parameter.
        let plain = presign_get(
            &doc_target(),
            "test.txt",
            &doc_creds(),
            doc_time(),
            Duration::from_secs(86_400),
        )
        .unwrap();
        assert_eq!(query_param(&plain.url, "X-Amz-Security-Token"), None);
    }

    #[test]
    fn bad_inputs_are_typed_errors() {
        let get = |target: &S3Target, key: &str, creds: &Credentials, now| {
            presign_get(target, key, creds, now, Duration::from_secs(60))
        };
        assert!(matches!(
            get(&doc_target(), "", &doc_creds(), doc_time()),
            Err(PresignError::InvalidKey { .. })
        ));
        assert!(matches!(
            get(&doc_target(), &"k".repeat(1025), &doc_creds(), doc_time()),
            Err(PresignError::InvalidKey { .. })
        ));
        assert!(get(&doc_target(), &"k".repeat(1024), &doc_creds(), doc_time()).is_ok());
        let hand_built =
            S3Target { endpoint: None, region: "us-east-1".into(), bucket: "Bad_Bucket".into() };
        assert!(matches!(
            get(&hand_built, "k", &doc_creds(), doc_time()),
            Err(PresignError::Target(TargetError::InvalidBucket { .. }))
        ));
        assert!(matches!(
            get(&doc_target(), "k", &Credentials::new("", "s"), doc_time()),
            Err(PresignError::Credentials(CredentialsError::EmptyAccessKeyId))
        ));
        assert!(matches!(
            get(&doc_target(), "k", &doc_creds(), UNIX_EPOCH - Duration::from_secs(1)),
            Err(PresignError::Time(TimeError::BeforeEpoch))
        ));
        // The expiry itself may not run past the signer's calendar.
        assert!(matches!(
            presign_get(
                &doc_target(),
                "k",
                &doc_creds(),
                UNIX_EPOCH + Duration::from_secs(MAX_UNIX_SECS),
                Duration::from_secs(60)
            ),
            Err(PresignError::Time(TimeError::TooLate))
        ));
    }

    #[test]
    fn sub_second_now_is_truncated_like_x_amz_date() {
        let p = presign_get(
            &doc_target(),
            "test.txt",
            &doc_creds(),
            doc_time() + Duration::from_millis(999),
            Duration::from_secs(86_400),
        )
        .unwrap();
        assert!(p.url.ends_with(
            "X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
        ));
        assert_eq!(p.expires_at, "2013-05-25T00:00:00Z");
    }
}
