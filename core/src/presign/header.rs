//! SigV4 Authorization-header signing for the native S3 client: it sends the request, this
//! decides the headers that authenticate it.

use std::time::SystemTime;

use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SessionTokenMode, SignableBody, SignatureLocation,
    SigningError, SigningSettings, UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use thiserror::Error;

use super::{Credentials, CredentialsError, SERVICE, TimeError, scope_region_ok, unix_secs};

/// Headers the signer adds; a request that already has one would be signed ambiguously.
const RESERVED_HEADERS: [&str; 4] =
    ["authorization", "x-amz-date", "x-amz-content-sha256", "x-amz-security-token"];

/// A request to sign with an Authorization header.
#[derive(Debug, Clone, Copy)]
pub struct SignableRequest<'a> {
    /// The HTTP method, e.g. `GET`.
    pub method: &'a str,
    /// The full URL, already URI-encoded as it will be sent (see [`super::S3Target::object_url`]
    /// and [`super::uri_encode`]); encode `+` in query values as `%2B`.
    pub url: &'a str,
    /// Headers that will be sent and should be signed (`host` is taken from the URL if absent).
    pub headers: &'a [(String, String)],
    /// Lower-case hex SHA-256 of the body; `None` signs `UNSIGNED-PAYLOAD`.
    pub payload_sha256_hex: Option<&'a str>,
}

/// Why a request could not be signed.
#[derive(Debug, Error)]
pub enum SignError {
    /// The URL is not an absolute http(s) URL.
    #[error("cannot sign URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The method is not an upper-case HTTP token.
    #[error("cannot sign HTTP method {0:?}: use an upper-case method such as GET or PUT")]
    InvalidMethod(String),
    /// A header the signer sets itself was passed in.
    #[error("header {0:?} is added by the signer: leave it out of the request to sign")]
    ReservedHeader(String),
    /// A header name or value cannot be sent.
    #[error("header {name:?} has an invalid name or value: use a token name and a printable value")]
    InvalidHeader {
        /// The header name as given.
        name: String,
    },
    /// The payload hash is not 64 hex digits.
    #[error(
        "payload hash {0:?} is not a SHA-256 in hex: pass 64 hex digits, or None for UNSIGNED-PAYLOAD"
    )]
    InvalidPayloadHash(String),
    /// The region cannot go into a credential scope.
    #[error("invalid S3 region {0:?}: use a region name such as us-east-1")]
    InvalidRegion(String),
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

impl From<SigningError> for SignError {
    fn from(e: SigningError) -> Self {
        Self::Signing(Box::new(e))
    }
}

/// Signs `req` for S3 in `region` at `now`; returns the headers to add: `x-amz-date`,
/// `authorization`, `x-amz-content-sha256` and, with a session token, `x-amz-security-token`.
pub fn sign_request(
    req: &SignableRequest<'_>,
    creds: &Credentials,
    region: &str,
    now: SystemTime,
) -> Result<Vec<(String, String)>, SignError> {
    check_url(req.url)?;
    if req.method.is_empty() || !req.method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(SignError::InvalidMethod(req.method.to_owned()));
    }
    for (name, value) in req.headers {
        let lower = name.to_ascii_lowercase();
        if RESERVED_HEADERS.contains(&lower.as_str()) {
            return Err(SignError::ReservedHeader(name.clone()));
        }
        if http::HeaderName::from_bytes(lower.as_bytes()).is_err()
            || http::HeaderValue::from_str(value).is_err()
        {
            return Err(SignError::InvalidHeader { name: name.clone() });
        }
    }
    let body = match req.payload_sha256_hex {
        None => SignableBody::UnsignedPayload,
        Some(hex) if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
            SignableBody::Precomputed(hex.to_ascii_lowercase())
        }
        Some(other) => return Err(SignError::InvalidPayloadHash(other.to_owned())),
    };
    if !scope_region_ok(region) {
        return Err(SignError::InvalidRegion(region.to_owned()));
    }
    creds.validate()?;
    let secs = unix_secs(now)?;

    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::Headers;
    // S3: the path is signed as sent (encoded once, not normalised), and every request
    // carries x-amz-content-sha256.
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    settings.session_token_mode = SessionTokenMode::Include;

    let identity = creds.identity();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(SERVICE)
        // Whole seconds, as x-amz-date carries them.
        .time(crate::time::UnixMs::from_secs(secs).to_system_time())
        .settings(settings)
        .build()
        .map_err(|e| SignError::Signing(Box::new(e)))?
        .into();
    let request = aws_sigv4::http_request::SignableRequest::new(
        req.method,
        req.url,
        req.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        body,
    )?;
    let (instructions, _signature) = sign(request, &params)?.into_parts();
    let (headers, _) = instructions.into_parts();
    Ok(headers.iter().map(|h| (h.name().to_owned(), h.value().to_owned())).collect())
}

/// aws-sigv4 panics on a URL without a host, so this is checked first.
fn check_url(url: &str) -> Result<(), SignError> {
    let fail = |reason| Err(SignError::InvalidUrl { url: url.to_owned(), reason });
    let Ok(uri) = url.parse::<http::Uri>() else {
        return fail("it is not a valid, encoded URL");
    };
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return fail("the scheme must be http or https");
    }
    match uri.authority() {
        Some(authority) if !authority.host().is_empty() => Ok(()),
        _ => fail("it has no host"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::presign::S3Target;
    use std::time::{Duration, UNIX_EPOCH};

    const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn doc_time() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_369_353_600)
    }

    fn doc_creds() -> Credentials {
        Credentials::new("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    }

    fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
        headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    fn signature(headers: &[(String, String)]) -> &str {
        header(headers, "authorization").unwrap().rsplit_once("Signature=").unwrap().1
    }

    fn sign_doc(
        method: &str,
        url: &str,
        headers: &[(String, String)],
        payload: Option<&str>,
    ) -> Vec<(String, String)> {
        sign_request(
            &SignableRequest { method, url, headers, payload_sha256_hex: payload },
            &doc_creds(),
            "us-east-1",
            doc_time(),
        )
        .unwrap()
    }

    fn h(name: &str, value: &str) -> (String, String) {
        (name.to_owned(), value.to_owned())
    }

    /// "Signature Calculations for the Authorization Header", AWS S3 docs: GET Object.
    #[test]
    fn reproduces_the_aws_get_object_example() {
        let out = sign_doc(
            "GET",
            "https://examplebucket.s3.amazonaws.com/test.txt",
            &[h("Range", "bytes=0-9")],
            Some(EMPTY_SHA256),
        );
        assert_eq!(
            header(&out, "authorization"),
            Some(
                "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
                 SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
                 Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
            )
        );
        assert_eq!(header(&out, "x-amz-date"), Some("20130524T000000Z"));
        assert_eq!(header(&out, "x-amz-content-sha256"), Some(EMPTY_SHA256));
        assert_eq!(header(&out, "x-amz-security-token"), None);
        assert_eq!(out.len(), 3);
    }

    /// The same page's PUT Object example: a `$` in the key, a signed payload, extra headers.
    #[test]
    fn reproduces_the_aws_put_object_example() {
        use sha2::Digest as _;
        let payload = hex::encode(sha2::Sha256::digest(b"Welcome to Amazon S3."));
        let target = S3Target::new(None, "us-east-1", "examplebucket").unwrap();
        let url = target.object_url("test$file.text");
        assert_eq!(url, "https://examplebucket.s3.amazonaws.com/test%24file.text");
        let out = sign_doc(
            "PUT",
            &url,
            &[
                h("Date", "Fri, 24 May 2013 00:00:00 GMT"),
                h("x-amz-storage-class", "REDUCED_REDUNDANCY"),
            ],
            Some(&payload),
        );
        assert!(header(&out, "authorization").unwrap().contains(
            "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class,"
        ));
        assert_eq!(
            signature(&out),
            "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"
        );
        assert_eq!(header(&out, "x-amz-content-sha256"), Some(payload.as_str()));
    }

    /// The same page's bucket examples: a bare sub-resource and an unsorted query.
    #[test]
    fn reproduces_the_aws_bucket_examples() {
        let target = S3Target::new(None, "us-east-1", "examplebucket").unwrap();
        let lifecycle =
            sign_doc("GET", &format!("{}?lifecycle", target.bucket_url()), &[], Some(EMPTY_SHA256));
        assert_eq!(
            signature(&lifecycle),
            "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"
        );
        let list = sign_doc(
            "GET",
            &format!("{}?prefix=J&max-keys=2", target.bucket_url()),
            &[],
            Some(EMPTY_SHA256),
        );
        assert_eq!(
            signature(&list),
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
        );
    }

    #[test]
    fn unsigned_payload_and_session_token() {
        let headers = sign_request(
            &SignableRequest {
                method: "GET",
                url: "http://127.0.0.1:8333/kompass/k",
                headers: &[],
                payload_sha256_hex: None,
            },
            &doc_creds().with_session_token("tok+/="),
            "us-east-1",
            doc_time(),
        )
        .unwrap();
        assert_eq!(header(&headers, "x-amz-content-sha256"), Some("UNSIGNED-PAYLOAD"));
        assert_eq!(header(&headers, "x-amz-security-token"), Some("tok+/="));
        assert!(
            header(&headers, "authorization").unwrap().contains(
                "SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token,"
            )
        );
    }

    #[test]
    fn upper_case_payload_hash_is_accepted_as_lower_case() {
        let upper = EMPTY_SHA256.to_ascii_uppercase();
        let out = sign_doc(
            "GET",
            "https://examplebucket.s3.amazonaws.com/test.txt",
            &[h("Range", "bytes=0-9")],
            Some(&upper),
        );
        assert_eq!(
            signature(&out),
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    #[test]
    fn bad_requests_are_typed_errors() {
        let try_sign = |method: &str, url: &str, headers: &[(String, String)], payload| {
            sign_request(
                &SignableRequest { method, url, headers, payload_sha256_hex: payload },
                &doc_creds(),
                "us-east-1",
                doc_time(),
            )
        };
        let url = "https://examplebucket.s3.amazonaws.com/test.txt";
        for bad_url in
            ["/test.txt", "examplebucket/test.txt", "ftp://h/x", "https:///x", "http://h/a b"]
        {
            assert!(
                matches!(try_sign("GET", bad_url, &[], None), Err(SignError::InvalidUrl { .. })),
                "{bad_url:?}"
            );
        }
        assert!(matches!(try_sign("get", url, &[], None), Err(SignError::InvalidMethod(_))));
        for reserved in
            ["Authorization", "X-Amz-Date", "x-amz-content-sha256", "x-amz-security-token"]
        {
            assert!(matches!(
                try_sign("GET", url, &[h(reserved, "x")], None),
                Err(SignError::ReservedHeader(_))
            ));
        }
        assert!(matches!(
            try_sign("GET", url, &[h("bad name", "x")], None),
            Err(SignError::InvalidHeader { .. })
        ));
        assert!(matches!(
            try_sign("GET", url, &[h("x-ok", "line\nbreak")], None),
            Err(SignError::InvalidHeader { .. })
        ));
        for bad_hash in ["", "abc", &"g".repeat(64), &"a".repeat(65)] {
            assert!(matches!(
                try_sign("GET", url, &[], Some(bad_hash)),
                Err(SignError::InvalidPayloadHash(_))
            ));
        }
        let region_err = sign_request(
            &SignableRequest { method: "GET", url, headers: &[], payload_sha256_hex: None },
            &doc_creds(),
            "us/east",
            doc_time(),
        );
        assert!(matches!(region_err, Err(SignError::InvalidRegion(_))));
        let creds_err = sign_request(
            &SignableRequest { method: "GET", url, headers: &[], payload_sha256_hex: None },
            &Credentials::new("AKID", ""),
            "us-east-1",
            doc_time(),
        );
        assert!(matches!(
            creds_err,
            Err(SignError::Credentials(CredentialsError::EmptySecretAccessKey))
        ));
    }
}
