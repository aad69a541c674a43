//! Where an object lives: the bucket's address (virtual-hosted on AWS, path-style on a custom
//! endpoint) and S3's URI encoding of keys.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use thiserror::Error;

/// Everything but S3's unreserved characters `A-Z a-z 0-9 - . _ ~` is encoded.
const S3_COMPONENT: &AsciiSet =
    &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Like [`S3_COMPONENT`] but keeps `/`, for object keys in a path.
const S3_PATH: &AsciiSet = &S3_COMPONENT.remove(b'/');

/// URI-encodes `input` the way S3 canonicalises it: every byte but `A-Z a-z 0-9 - . _ ~` as
/// `%XX` (upper-case hex); `/` is kept unless `encode_slash` (use `true` for query values).
pub fn uri_encode(input: &str, encode_slash: bool) -> String {
    let set = if encode_slash { S3_COMPONENT } else { S3_PATH };
    utf8_percent_encode(input, set).to_string()
}

/// The bucket to sign for: on AWS (no endpoint) or on an S3-compatible server (endpoint set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Target {
    /// An S3-compatible endpoint such as `http://127.0.0.1:8333`; when set, path-style addressing.
    pub endpoint: Option<String>,
    /// The signing region, e.g. `us-east-1`.
    pub region: String,
    /// The bucket name.
    pub bucket: String,
}

/// A target that cannot be addressed or signed for.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TargetError {
    /// The region is empty, too long or has characters a region cannot have.
    #[error(
        "invalid S3 region {region:?}: use a region name such as us-east-1 (letters, digits, '-'{}; at most 64 characters)",
        if *.on_aws { ", lower case on AWS" } else { ", '_'" }
    )]
    InvalidRegion {
        /// The region as given.
        region: String,
        /// Whether the stricter AWS host-name rules applied (no custom endpoint).
        on_aws: bool,
    },
    /// The bucket name breaks S3's naming rules.
    #[error("invalid S3 bucket name {bucket:?}: {reason}; fix AWS_S3_BUCKET")]
    InvalidBucket {
        /// The bucket as given.
        bucket: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// The endpoint is not a bare `http(s)://host[:port]` URL.
    #[error(
        "invalid S3 endpoint {endpoint:?}: {reason}; set AWS_ENDPOINT_URL to a URL like http://127.0.0.1:8333"
    )]
    InvalidEndpoint {
        /// The endpoint as given.
        endpoint: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// How a bucket is addressed; decided in one place so object and bucket URLs agree.
enum Addressing {
    /// `https://{bucket}.{host}/`
    VirtualHosted { host: String },
    /// `{base}/{bucket}/`
    PathStyle { base: String },
}

impl S3Target {
    /// A validated target; a trailing `/` on the endpoint is dropped.
    pub fn new(
        endpoint: Option<String>,
        region: impl Into<String>,
        bucket: impl Into<String>,
    ) -> Result<Self, TargetError> {
        let target = Self {
            endpoint: endpoint.map(|e| e.trim_end_matches('/').to_owned()),
            region: region.into(),
            bucket: bucket.into(),
        };
        target.validate()?;
        Ok(target)
    }

    /// Checks region, bucket and endpoint; presigning calls this, so a target built by hand
    /// cannot put a bad name into a host or a credential scope.
    pub fn validate(&self) -> Result<(), TargetError> {
        validate_region(&self.region, self.endpoint.is_none())?;
        validate_bucket(&self.bucket)?;
        if let Some(endpoint) = &self.endpoint {
            validate_endpoint(endpoint)?;
        }
        Ok(())
    }

    /// The URL of `key` in the bucket, the key URI-encoded with its `/` kept.
    pub fn object_url(&self, key: &str) -> String {
        let key = uri_encode(key, false);
        match self.addressing() {
            Addressing::VirtualHosted { host } => format!("https://{}.{host}/{key}", self.bucket),
            Addressing::PathStyle { base } => format!("{base}/{}/{key}", self.bucket),
        }
    }

    /// The URL of the bucket itself, for bucket operations such as ListObjectsV2: append
    /// `?list-type=2&prefix=...` (values encoded with [`uri_encode`]`(v, true)`).
    pub fn bucket_url(&self) -> String {
        match self.addressing() {
            Addressing::VirtualHosted { host } => format!("https://{}.{host}/", self.bucket),
            // Path-style bucket requests go to `/bucket`, as the AWS SDKs send them.
            Addressing::PathStyle { base } => format!("{base}/{}", self.bucket),
        }
    }

    fn addressing(&self) -> Addressing {
        if let Some(endpoint) = &self.endpoint {
            return Addressing::PathStyle { base: endpoint.trim_end_matches('/').to_owned() };
        }
        // us-east-1's legacy global host is what the AWS documentation's examples sign.
        let host = if self.region == "us-east-1" {
            "s3.amazonaws.com".to_owned()
        } else {
            format!("s3.{}.amazonaws.com", self.region)
        };
        if self.bucket.contains('.') {
            // A dotted bucket as a subdomain breaks AWS's wildcard TLS certificate.
            return Addressing::PathStyle { base: format!("https://{host}") };
        }
        Addressing::VirtualHosted { host }
    }
}

fn validate_region(region: &str, on_aws: bool) -> Result<(), TargetError> {
    let allowed = |c: char| {
        if on_aws {
            c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'
        } else {
            c.is_ascii_alphanumeric() || c == '-' || c == '_'
        }
    };
    if region.is_empty() || region.len() > 64 || !region.chars().all(allowed) {
        return Err(TargetError::InvalidRegion { region: region.to_owned(), on_aws });
    }
    Ok(())
}

fn validate_bucket(bucket: &str) -> Result<(), TargetError> {
    let fail = |reason| Err(TargetError::InvalidBucket { bucket: bucket.to_owned(), reason });
    if !(3..=63).contains(&bucket.len()) {
        return fail("a bucket name has 3 to 63 characters");
    }
    if !bucket
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        return fail("a bucket name has only lower-case letters, digits, '.' and '-'");
    }
    let edge_ok = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !edge_ok(bucket.as_bytes()[0]) || !edge_ok(bucket.as_bytes()[bucket.len() - 1]) {
        return fail("a bucket name starts and ends with a letter or digit");
    }
    if bucket.contains("..") || bucket.contains(".-") || bucket.contains("-.") {
        return fail("a bucket name has no '..', '.-' or '-.'");
    }
    if bucket.split('.').count() == 4
        && bucket
            .split('.')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
    {
        return fail("a bucket name is not an IP address");
    }
    Ok(())
}

fn validate_endpoint(endpoint: &str) -> Result<(), TargetError> {
    let fail = |reason| Err(TargetError::InvalidEndpoint { endpoint: endpoint.to_owned(), reason });
    let trimmed = endpoint.trim_end_matches('/');
    if trimmed.contains(['?', '#']) {
        return fail("an endpoint has no query or fragment");
    }
    let Ok(uri) = trimmed.parse::<http::Uri>() else {
        return fail("it is not a URL");
    };
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return fail("the scheme must be http or https");
    }
    let Some(authority) = uri.authority() else {
        return fail("it has no host");
    };
    if authority.as_str().contains('@') {
        return fail("credentials do not belong in the endpoint URL");
    }
    if authority.host().is_empty() {
        return fail("it has no host");
    }
    if !matches!(uri.path(), "" | "/") {
        return fail("an endpoint has no path (the bucket is added to it)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aws(region: &str, bucket: &str) -> S3Target {
        S3Target::new(None, region, bucket).unwrap()
    }

    #[test]
    fn virtual_hosted_on_aws() {
        assert_eq!(
            aws("us-east-1", "examplebucket").object_url("test.txt"),
            "https://examplebucket.s3.amazonaws.com/test.txt"
        );
        assert_eq!(
            aws("eu-central-1", "kompass").object_url("users/u1/routes/a b.json"),
            "https://kompass.s3.eu-central-1.amazonaws.com/users/u1/routes/a%20b.json"
        );
        assert_eq!(
            aws("eu-central-1", "kompass").bucket_url(),
            "https://kompass.s3.eu-central-1.amazonaws.com/"
        );
    }

    #[test]
    fn dotted_bucket_on_aws_is_path_style() {
        let t = aws("eu-west-1", "my.bucket");
        assert_eq!(t.object_url("k"), "https://s3.eu-west-1.amazonaws.com/my.bucket/k");
        assert_eq!(t.bucket_url(), "https://s3.eu-west-1.amazonaws.com/my.bucket");
    }

    #[test]
    fn path_style_with_endpoint() {
        let t =
            S3Target::new(Some("http://127.0.0.1:8333/".into()), "us-east-1", "kompass").unwrap();
        assert_eq!(t.endpoint.as_deref(), Some("http://127.0.0.1:8333"));
        assert_eq!(t.object_url("routes/x.json"), "http://127.0.0.1:8333/kompass/routes/x.json");
        assert_eq!(t.bucket_url(), "http://127.0.0.1:8333/kompass");
        // Built by hand with a trailing slash: URLs still have no double slash.
        let hand = S3Target {
            endpoint: Some("http://minio:9000/".into()),
            region: "us-east-1".into(),
            bucket: "b12".into(),
        };
        assert_eq!(hand.object_url("k"), "http://minio:9000/b12/k");
    }

    #[test]
    fn keys_are_encoded_per_s3_rules() {
        assert_eq!(uri_encode("test$file.text", false), "test%24file.text");
        assert_eq!(uri_encode("a-b_c.d~e/f", false), "a-b_c.d~e/f");
        assert_eq!(uri_encode("a b+c=é/d", false), "a%20b%2Bc%3D%C3%A9/d");
        assert_eq!(uri_encode("a/b", true), "a%2Fb");
        assert_eq!(uri_encode("%", true), "%25");
    }

    #[test]
    fn bad_regions_are_rejected() {
        for region in ["", "US-EAST-1", "us east", "us/east", &"a".repeat(65)] {
            assert!(
                matches!(
                    S3Target::new(None, region, "bucket"),
                    Err(TargetError::InvalidRegion { .. })
                ),
                "{region:?}"
            );
        }
        // Custom servers may use names AWS would not (Garage's default is "garage").
        assert!(S3Target::new(Some("http://h:1".into()), "Local_1", "bucket").is_ok());
        assert!(S3Target::new(Some("http://h:1".into()), "a/b", "bucket").is_err());
    }

    #[test]
    fn bad_buckets_are_rejected() {
        for bucket in [
            "ab",
            &"a".repeat(64),
            "Upper",
            "under_score",
            "-start",
            "end-",
            "a..b",
            "a.-b",
            "192.168.5.4",
            "sl/ash",
        ] {
            assert!(
                matches!(
                    S3Target::new(None, "us-east-1", bucket),
                    Err(TargetError::InvalidBucket { .. })
                ),
                "{bucket:?}"
            );
        }
        assert!(S3Target::new(None, "us-east-1", "a.b-c.1").is_ok());
    }

    #[test]
    fn bad_endpoints_are_rejected() {
        for endpoint in [
            "127.0.0.1:8333",
            "ftp://host",
            "http://user:pw@host",
            "http://host/prefix",
            "http://host?x=1",
            "http://host#f",
            "not a url",
        ] {
            assert!(
                matches!(
                    S3Target::new(Some(endpoint.into()), "us-east-1", "bucket"),
                    Err(TargetError::InvalidEndpoint { .. })
                ),
                "{endpoint:?}"
            );
        }
        assert!(S3Target::new(Some("https://s3.example.org".into()), "x", "bucket").is_ok());
    }
}
