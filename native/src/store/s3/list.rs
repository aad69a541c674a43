//! ListObjectsV2 answers, parsed with quick-xml's serde support (never by string slicing).

use percent_encoding::percent_decode_str;
use serde::Deserialize;

use kompass_core::time::UnixMs;

use super::{ObjectMeta, S3Error, parse_s3_date, strip_etag_quotes};

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPage {
    /// The objects of this page, in the server's (lexicographic key) order.
    pub objects: Vec<ObjectMeta>,
    /// The token for the next page; `None` on the last page.
    pub next_continuation_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListBucketResult {
    // Required: S3 always sends it, and it keeps an HTML error page from parsing as empty.
    is_truncated: bool,
    next_continuation_token: Option<String>,
    encoding_type: Option<String>,
    #[serde(default)]
    contents: Vec<Contents>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Contents {
    key: String,
    last_modified: String,
    #[serde(rename = "ETag")]
    etag: Option<String>,
    size: u64,
}

/// Parses a ListObjectsV2 body. Keys are URL-decoded when the server says it encoded them
/// (`EncodingType` = `url`; requested so that any key survives XML 1.0).
pub(crate) fn parse_list(xml: &[u8]) -> Result<ListPage, S3Error> {
    let text = std::str::from_utf8(xml)
        .map_err(|_| S3Error::Protocol("a ListObjectsV2 answer is not UTF-8".into()))?;
    let result: ListBucketResult = quick_xml::de::from_str(text).map_err(|e| {
        S3Error::Protocol(format!("a ListObjectsV2 answer could not be parsed ({e})"))
    })?;
    let url_encoded = match result.encoding_type.as_deref() {
        None => false,
        Some(t) if t.eq_ignore_ascii_case("url") => true,
        Some(other) => {
            return Err(S3Error::Protocol(format!(
                "a ListObjectsV2 answer has an unknown EncodingType {other:?}"
            )));
        }
    };
    let objects = result
        .contents
        .into_iter()
        .map(|c| {
            let key = if url_encoded { decode_key(&c.key)? } else { c.key };
            let last_modified_ms = parse_s3_date(UnixMs::parse_rfc3339(&c.last_modified))
                .ok_or_else(|| {
                    S3Error::Protocol(format!(
                        "ListObjectsV2 gave {key:?} an unreadable LastModified {:?}",
                        c.last_modified
                    ))
                })?;
            Ok(ObjectMeta {
                key,
                size: c.size,
                last_modified_ms,
                etag: c.etag.map(|e| strip_etag_quotes(&e).to_owned()),
                sha256: None,
            })
        })
        .collect::<Result<Vec<_>, S3Error>>()?;
    let next_continuation_token = match (result.is_truncated, result.next_continuation_token) {
        (false, _) => None,
        (true, Some(token)) if !token.is_empty() => Some(token),
        // Without a token the next page cannot be asked for: stopping would silently drop keys.
        (true, _) => {
            return Err(S3Error::Protocol(
                "a ListObjectsV2 answer is truncated but has no NextContinuationToken".into(),
            ));
        }
    };
    Ok(ListPage { objects, next_continuation_token })
}

/// Undoes S3's `encoding-type=url`: form-style (`+` is a space, a literal `+` is `%2B`).
fn decode_key(encoded: &str) -> Result<String, S3Error> {
    let spaced = encoded.replace('+', " ");
    percent_decode_str(&spaced).decode_utf8().map(|k| k.into_owned()).map_err(|_| {
        S3Error::Protocol(format!(
            "ListObjectsV2 gave a key that is not UTF-8 once decoded: {encoded:?}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example answer from the AWS ListObjectsV2 documentation, with a second page.
    const AWS_EXAMPLE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
    <Name>bucket</Name>
    <Prefix/>
    <KeyCount>2</KeyCount>
    <MaxKeys>2</MaxKeys>
    <IsTruncated>true</IsTruncated>
    <Contents>
        <Key>my-image.jpg</Key>
        <LastModified>2009-10-12T17:50:30.000Z</LastModified>
        <ETag>&quot;fba9dede5f27731c9771645a39863328&quot;</ETag>
        <Size>434234</Size>
        <StorageClass>STANDARD</StorageClass>
    </Contents>
    <Contents>
        <Key>my-third-image.jpg</Key>
        <LastModified>2009-10-12T17:50:30.000Z</LastModified>
        <ETag>"1b2cf535f27731c974343645a3985328"</ETag>
        <Size>64994</Size>
        <StorageClass>STANDARD_IA</StorageClass>
        <Owner><ID>abc</ID><DisplayName>me</DisplayName></Owner>
    </Contents>
    <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>
</ListBucketResult>"#;

    #[test]
    fn parses_the_aws_example() {
        let page = parse_list(AWS_EXAMPLE.as_bytes()).unwrap();
        assert_eq!(
            page.next_continuation_token.as_deref(),
            Some("1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=")
        );
        assert_eq!(page.objects.len(), 2);
        assert_eq!(
            page.objects[0],
            ObjectMeta {
                key: "my-image.jpg".into(),
                size: 434_234,
                last_modified_ms: 1_255_369_830_000,
                etag: Some("fba9dede5f27731c9771645a39863328".into()),
                sha256: None,
            }
        );
        assert_eq!(page.objects[1].key, "my-third-image.jpg");
        assert_eq!(page.objects[1].size, 64_994);
        assert_eq!(page.objects[1].etag.as_deref(), Some("1b2cf535f27731c974343645a3985328"));
    }

    #[test]
    fn last_page_and_empty_listing() {
        let last = r#"<ListBucketResult><IsTruncated>false</IsTruncated>
            <Contents><Key>a</Key><LastModified>2024-01-01T00:00:00Z</LastModified><Size>0</Size></Contents>
            <NextContinuationToken>ignored-when-not-truncated</NextContinuationToken>
            </ListBucketResult>"#;
        let page = parse_list(last.as_bytes()).unwrap();
        assert_eq!(page.next_continuation_token, None);
        assert_eq!(page.objects.len(), 1);
        assert_eq!(page.objects[0].etag, None);

        let empty = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>kompass-test</Name><Prefix>nothing/</Prefix><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated><KeyCount>0</KeyCount></ListBucketResult>"#;
        let page = parse_list(empty.as_bytes()).unwrap();
        assert!(page.objects.is_empty());
        assert_eq!(page.next_continuation_token, None);
    }

    #[test]
    fn url_encoded_keys_are_decoded() {
        let xml = r#"<ListBucketResult><EncodingType>url</EncodingType><IsTruncated>false</IsTruncated>
            <Contents><Key>users/u1/routes/a+b%2Bc%20d.json</Key><LastModified>2024-01-01T00:00:00Z</LastModified><Size>3</Size></Contents>
            <Contents><Key>%E6%97%A5%E6%9C%AC/%F0%9F%9A%B2%25.json</Key><LastModified>2024-01-01T00:00:00Z</LastModified><Size>4</Size></Contents>
            </ListBucketResult>"#;
        let page = parse_list(xml.as_bytes()).unwrap();
        let keys: Vec<_> = page.objects.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(keys, ["users/u1/routes/a b+c d.json", "日本/🚲%.json"]);
    }

    #[test]
    fn keys_are_kept_verbatim_without_url_encoding() {
        let xml = r#"<ListBucketResult><IsTruncated>false</IsTruncated>
            <Contents><Key>a+b%20 &amp; &lt;c&gt;.json</Key><LastModified>2024-01-01T00:00:00Z</LastModified><Size>3</Size></Contents>
            </ListBucketResult>"#;
        let page = parse_list(xml.as_bytes()).unwrap();
        assert_eq!(page.objects[0].key, "a+b%20 & <c>.json");
    }

    #[test]
    fn contents_interleaved_with_common_prefixes_are_all_kept() {
        let xml = r#"<ListBucketResult><IsTruncated>false</IsTruncated>
            <Contents><Key>a</Key><LastModified>2024-01-01T00:00:00Z</LastModified><Size>1</Size></Contents>
            <CommonPrefixes><Prefix>b/</Prefix></CommonPrefixes>
            <Contents><Key>c</Key><LastModified>2024-01-01T00:00:00Z</LastModified><Size>2</Size></Contents>
            </ListBucketResult>"#;
        let page = parse_list(xml.as_bytes()).unwrap();
        let keys: Vec<_> = page.objects.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(keys, ["a", "c"]);
    }

    #[test]
    fn truncated_without_a_token_is_an_error() {
        let xml = r#"<ListBucketResult><IsTruncated>true</IsTruncated>
            <Contents><Key>a</Key><LastModified>2024-01-01T00:00:00Z</LastModified><Size>1</Size></Contents>
            </ListBucketResult>"#;
        let err = parse_list(xml.as_bytes()).unwrap_err();
        assert!(matches!(err, S3Error::Protocol(_)), "{err}");
        assert!(err.to_string().contains("NextContinuationToken"), "{err}");
    }

    #[test]
    fn garbage_is_a_protocol_error() {
        for bad in [
            &b"<html><body>Gateway</body></html>"[..],
            b"not xml at all",
            b"<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>a</Key><Size>x</Size></Contents></ListBucketResult>",
            b"<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>a</Key><LastModified>yesterday</LastModified><Size>1</Size></Contents></ListBucketResult>",
            b"\xff\xfe",
        ] {
            let err = parse_list(bad).unwrap_err();
            assert!(matches!(err, S3Error::Protocol(_)), "{err}");
        }
    }

    proptest::proptest! {
        /// S3's url encoding (form style: space as `+`, `+` as `%2B`) decodes to the key.
        #[test]
        fn form_encoded_keys_decode_to_themselves(key in "\\PC{0,30}") {
            const FORM: &percent_encoding::AsciiSet =
                &percent_encoding::NON_ALPHANUMERIC.remove(b'/').remove(b' ');
            let encoded = percent_encoding::utf8_percent_encode(&key, FORM)
                .to_string()
                .replace(' ', "+");
            proptest::prop_assert_eq!(decode_key(&encoded).unwrap(), key);
        }
    }

    #[test]
    fn invalid_encoded_key_is_a_protocol_error() {
        let xml = r#"<ListBucketResult><EncodingType>url</EncodingType><IsTruncated>false</IsTruncated>
            <Contents><Key>%FF%FE</Key><LastModified>2024-01-01T00:00:00Z</LastModified><Size>1</Size></Contents>
            </ListBucketResult>"#;
        assert!(matches!(parse_list(xml.as_bytes()), Err(S3Error::Protocol(_))));
    }
}
