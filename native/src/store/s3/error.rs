//! What went wrong talking to S3, told so that the reader knows what to do; and which S3
//! answers mean which failure.

use std::time::Duration;

use kompass_core::presign::{SignError, TargetError};
use serde::Deserialize;
use thiserror::Error;

/// A failed S3 operation. Messages name the setting to fix and never include a secret.
#[derive(Debug, Error)]
pub enum S3Error {
    /// The bucket, region or endpoint cannot be used.
    #[error("invalid S3 target: {0}")]
    Target(#[from] TargetError),
    /// An object key that cannot be sent as-is.
    #[error("invalid S3 object key {key:?}: {reason}")]
    InvalidKey {
        /// The key as given.
        key: String,
        /// What is wrong with it and what to use instead.
        reason: &'static str,
    },
    /// The HTTP client could not be built (e.g. no TLS roots).
    #[error("could not set up the HTTP client for S3 ({0}): check the system's TLS setup")]
    Client(String),
    /// The request could not be signed.
    #[error("could not sign the S3 request: {0}")]
    Sign(#[from] SignError),
    /// No connection could be made, or it broke, on every attempt.
    #[error(
        "S3 endpoint {endpoint} is unreachable ({detail}) after {attempts} attempt(s): check \
         AWS_ENDPOINT_URL (or AWS_REGION on AWS) and the network; S3 may be down"
    )]
    Unreachable {
        /// Scheme, host and port that were tried.
        endpoint: String,
        /// The underlying error, e.g. `Connection refused (os error 111)`.
        detail: String,
        /// How many attempts were made.
        attempts: u32,
    },
    /// The server did not answer in time, on every attempt.
    #[error(
        "S3 endpoint {endpoint} did not answer within {timeout:?} ({attempts} attempt(s)): S3 or \
         the network is slow or down; retry later or raise the timeout"
    )]
    Timeout {
        /// Scheme, host and port that were tried.
        endpoint: String,
        /// The per-attempt timeout.
        timeout: Duration,
        /// How many attempts were made.
        attempts: u32,
    },
    /// The request's whole deadline (all attempts) passed without an answer.
    #[error(
        "no answer to {op} from S3 endpoint {endpoint} within {deadline:?}, retries included \
         (KOMPASS_S3_DEADLINE_SECS): S3 or the network is down or hanging; retry later"
    )]
    Deadline {
        /// The operation, e.g. `LIST`.
        op: &'static str,
        /// Scheme, host and port that were tried.
        endpoint: String,
        /// The deadline that passed.
        deadline: Duration,
    },
    /// S3 does not accept the credentials (unknown key id, wrong secret, bad session token).
    #[error("S3 rejected the credentials ({code}): check {}", credential_hint(.code))]
    BadCredentials {
        /// S3's error code, e.g. `SignatureDoesNotMatch`.
        code: String,
    },
    /// The request's time differs too much from the server's.
    #[error(
        "S3 rejected the request time (RequestTimeTooSkewed): this machine's clock is off by \
         more than 15 minutes; synchronise it (NTP)"
    )]
    ClockSkewed,
    /// The credentials are valid but lack a permission.
    #[error(
        "S3 denied {operation} on bucket {bucket} ({code}): the credentials of AWS_ACCESS_KEY_ID \
         are valid but lack permission; grant {permission} on the bucket in its IAM or bucket policy"
    )]
    AccessDenied {
        /// The bucket.
        bucket: String,
        /// What was attempted, e.g. `PUT users/u/routes/a.json`.
        operation: String,
        /// The IAM permission that operation needs.
        permission: &'static str,
        /// S3's error code, usually `AccessDenied`.
        code: String,
    },
    /// A 403 with no error code (a HEAD answer has no body), so it may be either.
    #[error(
        "S3 refused {operation} on bucket {bucket} (403, no detail): check AWS_ACCESS_KEY_ID, \
         AWS_SECRET_ACCESS_KEY and the bucket's permissions (`kompass status` tells them apart)"
    )]
    Forbidden {
        /// The bucket.
        bucket: String,
        /// What was attempted.
        operation: String,
    },
    /// The bucket does not exist.
    #[error(
        "S3 bucket {bucket} does not exist at {endpoint}: check AWS_S3_BUCKET (and \
         AWS_ENDPOINT_URL / AWS_REGION), or create the bucket"
    )]
    NoSuchBucket {
        /// The bucket.
        bucket: String,
        /// Where it was looked for.
        endpoint: String,
    },
    /// The bucket exists in another region than the one signed for.
    #[error("S3 bucket {bucket} is in another region{}: set AWS_REGION{}", region_hint(.region, ""), region_hint(.region, "="))]
    WrongRegion {
        /// The bucket.
        bucket: String,
        /// The bucket's region, when S3 said.
        region: Option<String>,
    },
    /// The object does not exist.
    #[error("no S3 object {key}: check the name (`kompass list` shows what is stored)")]
    NotFound {
        /// The key.
        key: String,
    },
    /// A create-only write found the key taken (412).
    #[error(
        "S3 object {key} already exists (412 on a create-only write): pick another name, or \
         overwrite it on purpose"
    )]
    PreconditionFailed {
        /// The key.
        key: String,
    },
    /// The checksum passed for a body does not match it; nothing was sent.
    #[error(
        "the SHA-256 given for {key} does not match its bytes, so nothing was uploaded: compute \
         the checksum from the exact bytes being sent"
    )]
    WrongChecksum {
        /// The key.
        key: String,
    },
    /// S3 found the body different from its checksum (changed or damaged in transit).
    #[error(
        "S3 refused the upload of {key} ({code}): the bytes it received do not match their \
         SHA-256; the data changed or was damaged on the way; upload it again"
    )]
    ChecksumMismatch {
        /// The key.
        key: String,
        /// S3's error code, e.g. `BadDigest`.
        code: String,
    },
    /// The bytes read do not match the object's stored SHA-256.
    #[error(
        "the bytes read for S3 object {key} do not match its stored SHA-256: it is damaged or \
         changed during the read; read it again, or restore it from a local copy"
    )]
    Corrupt {
        /// The key.
        key: String,
    },
    /// A server-side failure (5xx, or throttling) that outlasted the retries.
    #[error(
        "S3 failed with {status} {code} after {attempts} attempt(s){}: the service is failing \
         or throttling; retry later",
        message_hint(.message)
    )]
    Server {
        /// The HTTP status.
        status: u16,
        /// S3's error code, or `-` when the answer had none.
        code: String,
        /// S3's message (shortened).
        message: String,
        /// How many attempts were made.
        attempts: u32,
    },
    /// Any other refusal (4xx) that is not one of the cases above.
    #[error(
        "S3 refused {operation} with {status} {code}{}: this request cannot succeed as sent; \
         check the key and the server's S3 compatibility",
        message_hint(.message)
    )]
    Rejected {
        /// What was attempted.
        operation: String,
        /// The HTTP status.
        status: u16,
        /// S3's error code, or `-`.
        code: String,
        /// S3's message (shortened).
        message: String,
    },
    /// An answer that is not what S3 sends.
    #[error("unexpected answer from S3: {0}; is AWS_ENDPOINT_URL an S3 server?")]
    Protocol(String),
}

impl S3Error {
    /// True when S3 is (for now) not usable: unreachable, too slow, failing (5xx) or
    /// throttling. Callers fall back to local storage on these, and not on 403/404/412,
    /// which another try would not change.
    pub fn is_outage(&self) -> bool {
        match self {
            Self::Unreachable { .. } | Self::Timeout { .. } | Self::Deadline { .. } => true,
            // 501 NotImplemented is a missing feature, not an outage.
            Self::Server { status, .. } => *status != 501,
            _ => false,
        }
    }
}

fn credential_hint(code: &str) -> &'static str {
    match code {
        "InvalidAccessKeyId" => "AWS_ACCESS_KEY_ID (S3 does not know this key id)",
        "SignatureDoesNotMatch" => "AWS_SECRET_ACCESS_KEY (it does not match AWS_ACCESS_KEY_ID)",
        "ExpiredToken" | "TokenRefreshRequired" => {
            "AWS_SESSION_TOKEN (the temporary credentials expired; get new ones)"
        }
        "InvalidToken" => "AWS_SESSION_TOKEN (it does not belong to AWS_ACCESS_KEY_ID)",
        _ => "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
    }
}

fn region_hint(region: &Option<String>, sep: &str) -> String {
    match (region, sep) {
        (Some(r), "") => format!(" ({r})"),
        (Some(r), _) => format!("={r}"),
        (None, _) => " to the bucket's region".to_owned(),
    }
}

fn message_hint(message: &str) -> String {
    if message.is_empty() { String::new() } else { format!(" ({message})") }
}

/// The operation an answer belongs to; it decides what a bare 404 or 403 means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    /// PutObject.
    Put,
    /// GetObject.
    Get,
    /// HeadObject.
    Head,
    /// DeleteObject.
    Delete,
    /// ListObjectsV2.
    List,
}

impl Op {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Op::Put => "PUT",
            Op::Get => "GET",
            Op::Head => "HEAD",
            Op::Delete => "DELETE",
            Op::List => "LIST",
        }
    }

    fn permission(self) -> &'static str {
        match self {
            Op::Put => "s3:PutObject",
            Op::Get | Op::Head => "s3:GetObject",
            Op::Delete => "s3:DeleteObject",
            Op::List => "s3:ListBucket",
        }
    }
}

/// The request an error answer belongs to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Context<'a> {
    pub op: Op,
    pub bucket: &'a str,
    pub key: Option<&'a str>,
    pub endpoint: &'a str,
}

impl Context<'_> {
    fn operation(&self) -> String {
        match self.key {
            Some(key) => format!("{} {key}", self.op.name()),
            None => self.op.name().to_owned(),
        }
    }
}

/// The `<Error>` document of an S3 error answer.
#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ErrorBody {
    pub code: Option<String>,
    pub message: Option<String>,
    pub region: Option<String>,
}

/// Parses an error body; an empty (HEAD) or non-XML body gives no code.
pub(crate) fn parse_error_body(body: &[u8]) -> ErrorBody {
    std::str::from_utf8(body)
        .ok()
        .filter(|s| s.contains("<Error"))
        .and_then(|s| quick_xml::de::from_str::<ErrorBody>(s).ok())
        .unwrap_or_default()
}

/// Longest server message kept in an error (they can echo large canonical requests).
const MAX_MESSAGE: usize = 200;

/// The error for a non-success answer (after retries, if it was retriable).
/// `bucket_region` is the `x-amz-bucket-region` header, which S3 sends on redirects.
pub(crate) fn classify(
    status: u16,
    body: &ErrorBody,
    bucket_region: Option<&str>,
    attempts: u32,
    ctx: Context<'_>,
) -> S3Error {
    let code = body.code.as_deref();
    let code_or_dash = || code.unwrap_or("-").to_owned();
    let message = || shorten(body.message.as_deref().unwrap_or(""));
    let key = || ctx.key.unwrap_or("").to_owned();
    let bucket = || ctx.bucket.to_owned();
    let wrong_region = || S3Error::WrongRegion {
        bucket: bucket(),
        region: bucket_region.map(str::to_owned).or_else(|| body.region.clone()),
    };

    match (status, code) {
        (301 | 307, _)
        | (400, Some("AuthorizationHeaderMalformed" | "IllegalLocationConstraintException")) => {
            wrong_region()
        }
        (
            403 | 400,
            Some(
                c @ ("InvalidAccessKeyId"
                | "SignatureDoesNotMatch"
                | "InvalidToken"
                | "ExpiredToken"
                | "TokenRefreshRequired"),
            ),
        ) => S3Error::BadCredentials { code: c.to_owned() },
        (403, Some("RequestTimeTooSkewed")) => S3Error::ClockSkewed,
        (403, Some(c)) => S3Error::AccessDenied {
            bucket: bucket(),
            operation: ctx.operation(),
            permission: ctx.op.permission(),
            code: c.to_owned(),
        },
        (403, None) => S3Error::Forbidden { bucket: bucket(), operation: ctx.operation() },
        (404, Some("NoSuchBucket")) => {
            S3Error::NoSuchBucket { bucket: bucket(), endpoint: ctx.endpoint.to_owned() }
        }
        (404, Some("NoSuchKey")) => S3Error::NotFound { key: key() },
        // A bare 404 (HEAD has no body): about the object if there is one, else the bucket.
        (404, None) if ctx.key.is_some() && ctx.op != Op::List => S3Error::NotFound { key: key() },
        (404, None) => {
            S3Error::NoSuchBucket { bucket: bucket(), endpoint: ctx.endpoint.to_owned() }
        }
        (412, _) => S3Error::PreconditionFailed { key: key() },
        (400, Some(c @ ("BadDigest" | "XAmzContentSHA256Mismatch" | "InvalidDigest"))) => {
            S3Error::ChecksumMismatch { key: key(), code: c.to_owned() }
        }
        (s, c) if s >= 500 || super::retry::retriable_status(s, c) => {
            S3Error::Server { status, code: code_or_dash(), message: message(), attempts }
        }
        _ => S3Error::Rejected {
            operation: ctx.operation(),
            status,
            code: code_or_dash(),
            message: message(),
        },
    }
}

fn shorten(message: &str) -> String {
    let message = message.trim();
    if message.chars().count() <= MAX_MESSAGE {
        return message.to_owned();
    }
    let cut: String = message.chars().take(MAX_MESSAGE).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    const CTX_KEY: Context<'static> = Context {
        op: Op::Get,
        bucket: "kompass-test",
        key: Some("users/u/routes/a.json"),
        endpoint: "http://127.0.0.1:8333",
    };
    const CTX_LIST: Context<'static> = Context {
        op: Op::List,
        bucket: "kompass-test",
        key: None,
        endpoint: "http://127.0.0.1:8333",
    };

    fn body(code: &str) -> ErrorBody {
        ErrorBody {
            code: Some(code.to_owned()),
            message: Some("the message".to_owned()),
            region: None,
        }
    }

    #[test]
    fn parses_error_documents() {
        let xml = br#"<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message><Resource>/nope</Resource><RequestId>1</RequestId><BucketName>nope</BucketName></Error>"#;
        let b = parse_error_body(xml);
        assert_eq!(b.code.as_deref(), Some("NoSuchBucket"));
        assert_eq!(b.message.as_deref(), Some("The specified bucket does not exist"));
        let redirect = br#"<Error><Code>AuthorizationHeaderMalformed</Code><Message>m</Message><Region>eu-west-1</Region></Error>"#;
        assert_eq!(parse_error_body(redirect).region.as_deref(), Some("eu-west-1"));
        assert_eq!(parse_error_body(b""), ErrorBody::default());
        assert_eq!(
            parse_error_body(b"<html><body>502 Bad Gateway</body></html>"),
            ErrorBody::default()
        );
        assert_eq!(parse_error_body(b"\xff<Error>"), ErrorBody::default());
    }

    #[test]
    fn credentials_problems_name_the_variable_to_fix() {
        let e = classify(403, &body("SignatureDoesNotMatch"), None, 1, CTX_KEY);
        assert!(matches!(&e, S3Error::BadCredentials { code } if code == "SignatureDoesNotMatch"));
        assert!(e.to_string().contains("AWS_SECRET_ACCESS_KEY"), "{e}");
        let e = classify(403, &body("InvalidAccessKeyId"), None, 1, CTX_KEY);
        assert!(e.to_string().contains("check AWS_ACCESS_KEY_ID"), "{e}");
        let e = classify(400, &body("ExpiredToken"), None, 1, CTX_KEY);
        assert!(e.to_string().contains("AWS_SESSION_TOKEN"), "{e}");
        assert!(!e.is_outage());
        assert!(matches!(
            classify(403, &body("RequestTimeTooSkewed"), None, 1, CTX_KEY),
            S3Error::ClockSkewed
        ));
    }

    #[test]
    fn access_denied_names_the_permission() {
        let ctx = Context { op: Op::Put, ..CTX_KEY };
        let e = classify(403, &body("AccessDenied"), None, 1, ctx);
        let text = e.to_string();
        assert!(matches!(e, S3Error::AccessDenied { .. }));
        assert!(text.contains("s3:PutObject"), "{text}");
        assert!(text.contains("PUT users/u/routes/a.json"), "{text}");
        let e = classify(403, &ErrorBody::default(), None, 1, CTX_KEY);
        assert!(matches!(e, S3Error::Forbidden { .. }));
        assert!(e.to_string().contains("AWS_SECRET_ACCESS_KEY"));
    }

    #[test]
    fn not_found_is_told_apart_from_a_missing_bucket() {
        assert!(matches!(
            classify(404, &body("NoSuchKey"), None, 1, CTX_KEY),
            S3Error::NotFound { key } if key == "users/u/routes/a.json"
        ));
        let e = classify(404, &body("NoSuchBucket"), None, 1, CTX_KEY);
        assert!(matches!(&e, S3Error::NoSuchBucket { bucket, .. } if bucket == "kompass-test"));
        assert!(e.to_string().contains("AWS_S3_BUCKET"), "{e}");
        assert!(matches!(
            classify(404, &ErrorBody::default(), None, 1, CTX_KEY),
            S3Error::NotFound { .. }
        ));
        assert!(matches!(
            classify(404, &ErrorBody::default(), None, 1, CTX_LIST),
            S3Error::NoSuchBucket { .. }
        ));
    }

    #[test]
    fn precondition_and_checksum_failures() {
        let e = classify(412, &body("PreconditionFailed"), None, 1, CTX_KEY);
        assert!(matches!(e, S3Error::PreconditionFailed { .. }));
        assert!(!e.is_outage());
        assert!(matches!(
            classify(400, &body("BadDigest"), None, 1, CTX_KEY),
            S3Error::ChecksumMismatch { .. }
        ));
    }

    #[test]
    fn server_failures_are_outages_but_not_501() {
        let e = classify(503, &body("SlowDown"), None, 5, CTX_KEY);
        assert!(matches!(&e, S3Error::Server { status: 503, attempts: 5, .. }));
        assert!(e.is_outage());
        assert!(e.to_string().contains("5 attempt"), "{e}");
        assert!(classify(500, &ErrorBody::default(), None, 1, CTX_KEY).is_outage());
        assert!(classify(429, &ErrorBody::default(), None, 1, CTX_KEY).is_outage());
        assert!(!classify(501, &body("NotImplemented"), None, 1, CTX_KEY).is_outage());
        let e = classify(400, &body("InvalidArgument"), None, 1, CTX_KEY);
        assert!(matches!(e, S3Error::Rejected { status: 400, .. }));
        assert!(!e.is_outage());
    }

    #[test]
    fn redirects_say_which_region() {
        let e = classify(301, &body("PermanentRedirect"), Some("eu-central-1"), 1, CTX_LIST);
        assert!(e.to_string().contains("AWS_REGION=eu-central-1"), "{e}");
        let with_region =
            ErrorBody { region: Some("eu-west-1".into()), ..body("AuthorizationHeaderMalformed") };
        let e = classify(400, &with_region, None, 1, CTX_LIST);
        assert!(e.to_string().contains("AWS_REGION=eu-west-1"), "{e}");
        let e = classify(301, &ErrorBody::default(), None, 1, CTX_LIST);
        assert!(e.to_string().contains("to the bucket's region"), "{e}");
    }

    #[test]
    fn long_server_messages_are_shortened() {
        let long = ErrorBody {
            code: Some("InternalError".into()),
            message: Some("x".repeat(5000)),
            region: None,
        };
        let text = classify(500, &long, None, 1, CTX_KEY).to_string();
        assert!(text.len() < 600, "{}", text.len());
    }
}
