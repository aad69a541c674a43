//! The S3 store against a real S3 server (SeaweedFS with SigV4 verification, started by
//! `scripts/s3-server.sh`), and against a scripted fake server for failures a real one will
//! not produce on demand (5xx, hangs, dropped connections).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::support;
use crate::support::{FakeServer, Reply, S3Env};
use kompass::store::s3::{ObjectMeta, PutMode, RequestCounts, S3Error, S3Options, S3Store};
use kompass_core::presign::{Credentials, S3Target};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

fn sha(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

/// Short backoff so retry tests stay fast; the schedule itself is unit-tested.
fn fast_options() -> S3Options {
    S3Options {
        retry_base_delay: Duration::from_millis(5),
        retry_max_delay: Duration::from_millis(20),
        timeout: Duration::from_secs(10),
        ..S3Options::default()
    }
}

fn store_with(env: &S3Env, bucket: &str, key_id: &str, secret: &str, opts: S3Options) -> S3Store {
    let target = S3Target::new(Some(env.endpoint.clone()), env.region.clone(), bucket).unwrap();
    S3Store::new(target, Credentials::new(key_id, secret), opts).unwrap()
}

fn store(env: &S3Env) -> S3Store {
    store_with(env, &env.bucket, &env.access_key_id, &env.secret_access_key, fast_options())
}

fn fake_store(server: &FakeServer, opts: S3Options) -> S3Store {
    let target = S3Target::new(Some(server.url.clone()), "us-east-1", "kompass-test").unwrap();
    S3Store::new(target, Credentials::new("AKIAFAKE", "fake-secret"), opts).unwrap()
}

fn counts_since(store: &S3Store, before: RequestCounts) -> RequestCounts {
    let now = store.counts();
    RequestCounts {
        put: now.put - before.put,
        list: now.list - before.list,
        get: now.get - before.get,
        head: now.head - before.head,
        delete: now.delete - before.delete,
    }
}

// ---------------------------------------------------------------- against SeaweedFS

#[tokio::test]
async fn put_get_head_delete_round_trip_with_checksum() {
    let Some(env) = support::s3_env("put_get_head_delete_round_trip_with_checksum") else {
        return;
    };
    let s3 = store(&env);
    let key = format!("{}routes/ride.json", support::unique_prefix("roundtrip"));
    let body = br#"{"route":"Col du Galibier","km":34.8}"#.to_vec();
    let before = now_ms();

    let put = s3.put(&key, body.clone(), sha(&body), PutMode::Overwrite).await.unwrap();
    assert_eq!(put.attempts, 1);
    assert!(put.etag.as_deref().is_some_and(|e| !e.is_empty()));

    assert_eq!(s3.get(&key).await.unwrap(), body);

    let meta = s3.head(&key).await.unwrap().expect("the object exists");
    assert_eq!(meta.key, key);
    assert_eq!(meta.size, body.len() as u64);
    assert_eq!(meta.sha256, Some(sha(&body)), "HEAD returns the checksum");
    assert_eq!(meta.etag, put.etag);
    // Second resolution, and the two clocks are the same machine's.
    assert!(meta.last_modified_ms + 2_000 >= before, "{meta:?}");
    assert!(meta.last_modified_ms <= now_ms() + 2_000, "{meta:?}");

    assert!(s3.verify(&key, body.len() as u64, sha(&body)).await.unwrap());
    assert!(!s3.verify(&key, body.len() as u64 + 1, sha(&body)).await.unwrap());
    assert!(!s3.verify(&key, body.len() as u64, sha(b"other")).await.unwrap());

    // Overwrite replaces.
    let v2 = b"{}".to_vec();
    s3.put(&key, v2.clone(), sha(&v2), PutMode::Overwrite).await.unwrap();
    assert_eq!(s3.get(&key).await.unwrap(), v2);
    assert_eq!(s3.head(&key).await.unwrap().unwrap().sha256, Some(sha(&v2)));

    s3.delete(&key).await.unwrap();
    assert_eq!(s3.head(&key).await.unwrap(), None);
    assert!(!s3.verify(&key, 2, sha(&v2)).await.unwrap());
    let err = s3.get(&key).await.unwrap_err();
    assert!(matches!(&err, S3Error::NotFound { key: k } if *k == key), "{err}");
    assert!(!err.is_outage());
    // Deleting a missing object succeeds, as on S3.
    s3.delete(&key).await.unwrap();
}

#[tokio::test]
async fn empty_object_round_trip() {
    let Some(env) = support::s3_env("empty_object_round_trip") else {
        return;
    };
    let s3 = store(&env);
    let key = format!("{}empty.json", support::unique_prefix("empty"));
    s3.put(&key, Vec::new(), sha(b""), PutMode::CreateOnly).await.unwrap();
    assert_eq!(s3.get(&key).await.unwrap(), b"");
    let meta = s3.head(&key).await.unwrap().unwrap();
    assert_eq!((meta.size, meta.sha256), (0, Some(sha(b""))));
}

#[tokio::test]
async fn unicode_space_and_reserved_character_keys() {
    let Some(env) = support::s3_env("unicode_space_and_reserved_character_keys") else {
        return;
    };
    let s3 = store(&env);
    let prefix = support::unique_prefix("unicode");
    let names = [
        "a file with spaces.json",
        "plus+and%percent=equals&amp;.json",
        "Ünïcödé/日本語/🚲 ride.json",
        "semi;colon,comma'quote(1)~[x]!*$@.json",
    ];
    for (i, name) in names.iter().enumerate() {
        let key = format!("{prefix}{name}");
        let body = format!("body {i}").into_bytes();
        s3.put(&key, body.clone(), sha(&body), PutMode::CreateOnly)
            .await
            .unwrap_or_else(|e| panic!("put {key:?}: {e}"));
        assert_eq!(s3.get(&key).await.unwrap(), body, "{key:?}");
        let meta = s3.head(&key).await.unwrap().expect("exists");
        assert_eq!(meta.sha256, Some(sha(&body)), "{key:?}");
    }
    let mut listed: Vec<String> =
        s3.list(&prefix).await.unwrap().into_iter().map(|o| o.key).collect();
    listed.sort();
    let mut expected: Vec<String> = names.iter().map(|n| format!("{prefix}{n}")).collect();
    expected.sort();
    assert_eq!(listed, expected);
    // A prefix with a space and unicode selects only its own keys.
    let sub = s3.list(&format!("{prefix}Ünïcödé/")).await.unwrap();
    assert_eq!(sub.len(), 1);
    assert_eq!(sub[0].key, format!("{prefix}Ünïcödé/日本語/🚲 ride.json"));
    for key in expected {
        s3.delete(&key).await.unwrap();
    }
    assert!(s3.list(&prefix).await.unwrap().is_empty());
}

#[tokio::test]
async fn create_only_refuses_an_existing_key() {
    let Some(env) = support::s3_env("create_only_refuses_an_existing_key") else {
        return;
    };
    let s3 = store(&env);
    let key = format!("{}fitness/data.json", support::unique_prefix("create-only"));
    let first = b"first".to_vec();
    let second = b"second".to_vec();
    s3.put(&key, first.clone(), sha(&first), PutMode::CreateOnly).await.unwrap();
    let before = s3.counts();
    let err = s3.put(&key, second.clone(), sha(&second), PutMode::CreateOnly).await.unwrap_err();
    assert!(matches!(&err, S3Error::PreconditionFailed { key: k } if *k == key), "{err}");
    assert!(!err.is_outage());
    assert!(err.to_string().contains("already exists"), "{err}");
    // A 412 is final: one attempt, no retry, no HEAD.
    assert_eq!(counts_since(&s3, before), RequestCounts { put: 1, ..RequestCounts::default() });
    assert_eq!(s3.get(&key).await.unwrap(), first, "the original is intact");
}

#[tokio::test]
async fn listing_paginates_past_1000_keys() {
    let Some(env) = support::s3_env("listing_paginates_past_1000_keys") else {
        return;
    };
    let s3 = store(&env);
    let prefix = support::unique_prefix("paginate");
    const N: usize = 1050;
    let limit = Arc::new(Semaphore::new(16));
    let mut tasks = JoinSet::new();
    for i in 0..N {
        let (s3, limit) = (s3.clone(), limit.clone());
        let key = format!("{prefix}obj-{i:05}.json");
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await.unwrap();
            let body = format!("{{\"i\":{i}}}").into_bytes();
            s3.put(&key, body.clone(), sha(&body), PutMode::Overwrite).await.map(|_| ())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap().unwrap();
    }

    let before = s3.counts();
    let mut progress = Vec::new();
    let objects: Vec<ObjectMeta> =
        s3.list_with_progress(&prefix, |n| progress.push(n)).await.unwrap();
    assert_eq!(objects.len(), N);
    let keys: Vec<&str> = objects.iter().map(|o| o.key.as_str()).collect();
    let expected: Vec<String> = (0..N).map(|i| format!("{prefix}obj-{i:05}.json")).collect();
    assert_eq!(keys, expected, "every key once, in order");
    assert_eq!(objects[7].size, "{\"i\":7}".len() as u64);
    // Two pages of at most 1,000: two LIST requests, nothing else.
    assert_eq!(progress, vec![1000, N]);
    assert_eq!(counts_since(&s3, before), RequestCounts { list: 2, ..RequestCounts::default() });

    // The paged primitive: a first page and its token.
    let first = s3.list_page(&prefix, None).await.unwrap();
    assert_eq!(first.objects.len(), 1000);
    let token = first.next_continuation_token.expect("truncated");
    let rest = s3.list_page(&prefix, Some(&token)).await.unwrap();
    assert_eq!(rest.objects.len(), N - 1000);
    assert_eq!(rest.next_continuation_token, None);
    assert_eq!(rest.objects[0].key, expected[1000]);
}

#[tokio::test]
async fn wrong_secret_is_bad_credentials_and_never_shown() {
    let Some(env) = support::s3_env("wrong_secret_is_bad_credentials_and_never_shown") else {
        return;
    };
    let wrong_secret = "wrong-secret-Zq8vX3kP9mLw2Rt7";
    let s3 = store_with(&env, &env.bucket, &env.access_key_id, wrong_secret, fast_options());
    for err in [
        s3.check_access().await.unwrap_err(),
        s3.put("it/x.json", b"x".to_vec(), sha(b"x"), PutMode::Overwrite).await.unwrap_err(),
        s3.get("it/x.json").await.unwrap_err(),
    ] {
        assert!(
            matches!(&err, S3Error::BadCredentials { code } if code == "SignatureDoesNotMatch"),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(text.contains("AWS_SECRET_ACCESS_KEY"), "{text}");
        assert!(!text.contains(wrong_secret), "{text}");
        assert!(!format!("{err:?}").contains(wrong_secret));
        assert!(!text.contains(&env.secret_access_key), "{text}");
        assert!(!err.is_outage());
    }
    // Not retried: one request each.
    assert_eq!(s3.counts(), RequestCounts { list: 1, put: 1, get: 1, ..RequestCounts::default() });
}

#[tokio::test]
async fn unknown_access_key_is_bad_credentials() {
    let Some(env) = support::s3_env("unknown_access_key_is_bad_credentials") else {
        return;
    };
    let s3 = store_with(
        &env,
        &env.bucket,
        "AKIANOSUCHKEY0000000",
        &env.secret_access_key,
        fast_options(),
    );
    let err = s3.check_access().await.unwrap_err();
    assert!(
        matches!(&err, S3Error::BadCredentials { code } if code == "InvalidAccessKeyId"),
        "{err:?}"
    );
    assert!(err.to_string().contains("check AWS_ACCESS_KEY_ID"), "{err}");
    assert!(!err.to_string().contains(&env.secret_access_key));
}

#[tokio::test]
async fn missing_bucket_is_no_such_bucket() {
    let Some(env) = support::s3_env("missing_bucket_is_no_such_bucket") else {
        return;
    };
    let bucket = format!("kompass-missing-{}", std::process::id());
    let s3 = store_with(&env, &bucket, &env.access_key_id, &env.secret_access_key, fast_options());
    let err = s3.check_access().await.unwrap_err();
    assert!(matches!(&err, S3Error::NoSuchBucket { bucket: b, .. } if *b == bucket), "{err:?}");
    assert!(err.to_string().contains("AWS_S3_BUCKET"), "{err}");
    assert!(!err.is_outage());
    let err = s3.list("users/").await.unwrap_err();
    assert!(matches!(err, S3Error::NoSuchBucket { .. }), "{err:?}");
    let err = s3.get("users/u/routes/a.json").await.unwrap_err();
    assert!(matches!(err, S3Error::NoSuchBucket { .. }), "{err:?}");
}

#[tokio::test]
async fn missing_permission_is_access_denied() {
    let Some(env) = support::s3_env("missing_permission_is_access_denied") else {
        return;
    };
    // "reader" may read and list kompass-test but not write; "outsider" may touch another bucket only.
    let (reader_id, reader_secret) = support::identity("reader");
    let reader = store_with(&env, &env.bucket, &reader_id, &reader_secret, fast_options());
    reader.check_access().await.unwrap();
    let key = format!("{}denied.json", support::unique_prefix("denied"));
    let err = reader.put(&key, b"x".to_vec(), sha(b"x"), PutMode::Overwrite).await.unwrap_err();
    assert!(matches!(&err, S3Error::AccessDenied { .. }), "{err:?}");
    assert!(err.to_string().contains("s3:PutObject"), "{err}");
    assert!(!err.is_outage());

    let (outsider_id, outsider_secret) = support::identity("outsider");
    let outsider = store_with(&env, &env.bucket, &outsider_id, &outsider_secret, fast_options());
    let err = outsider.check_access().await.unwrap_err();
    assert!(matches!(&err, S3Error::AccessDenied { .. }), "{err:?}");
    assert!(err.to_string().contains("s3:ListBucket"), "{err}");
    assert!(!err.to_string().contains(&outsider_secret));
}

#[tokio::test]
async fn check_access_passes_with_good_credentials() {
    let Some(env) = support::s3_env("check_access_passes_with_good_credentials") else {
        return;
    };
    let s3 = store(&env);
    s3.check_access().await.unwrap();
    assert_eq!(s3.counts(), RequestCounts { list: 1, ..RequestCounts::default() });
}

#[tokio::test]
async fn counters_count_each_request_class() {
    let Some(env) = support::s3_env("counters_count_each_request_class") else {
        return;
    };
    let s3 = store(&env);
    let prefix = support::unique_prefix("counters");
    for i in 0..3 {
        let body = vec![i; 10];
        s3.put(&format!("{prefix}{i}"), body.clone(), sha(&body), PutMode::Overwrite)
            .await
            .unwrap();
    }
    s3.get(&format!("{prefix}0")).await.unwrap();
    s3.get(&format!("{prefix}1")).await.unwrap();
    s3.head(&format!("{prefix}2")).await.unwrap();
    assert_eq!(s3.list(&prefix).await.unwrap().len(), 3);
    s3.delete(&format!("{prefix}0")).await.unwrap();
    // verify: one HEAD (SeaweedFS returns the checksum, so no GET).
    assert!(s3.verify(&format!("{prefix}1"), 10, sha(&[1; 10])).await.unwrap());
    let c = s3.counts();
    assert_eq!(c, RequestCounts { put: 3, list: 1, get: 2, head: 2, delete: 1 });
    assert_eq!((c.put_class(), c.get_class()), (4, 4));
    // Clones share the counters (one ledger per bucket).
    let clone = s3.clone();
    clone.head(&format!("{prefix}2")).await.unwrap();
    assert_eq!(s3.counts().head, 3);
}

#[tokio::test]
async fn a_wrong_checksum_is_refused_before_sending() {
    let Some(env) = support::s3_env("a_wrong_checksum_is_refused_before_sending") else {
        return;
    };
    let s3 = store(&env);
    let key = format!("{}x.json", support::unique_prefix("wrong-sum"));
    let err =
        s3.put(&key, b"actual".to_vec(), sha(b"claimed"), PutMode::Overwrite).await.unwrap_err();
    assert!(matches!(err, S3Error::WrongChecksum { .. }), "{err:?}");
    assert_eq!(s3.counts(), RequestCounts::default());
    assert_eq!(s3.head(&key).await.unwrap(), None);
}

// ---------------------------------------------------------------- failures, scripted

#[tokio::test]
async fn closed_port_is_unreachable_after_bounded_attempts() {
    let port = support::closed_port();
    let target =
        S3Target::new(Some(format!("http://127.0.0.1:{port}")), "us-east-1", "kompass-test")
            .unwrap();
    let opts = S3Options { max_retries: 3, ..fast_options() };
    let s3 = S3Store::new(target, Credentials::new("AKIAFAKE", "fake-secret"), opts).unwrap();
    let err = s3.head("users/u/routes/a.json").await.unwrap_err();
    assert!(
        matches!(&err, S3Error::Unreachable { attempts: 4, endpoint, .. } if *endpoint == format!("http://127.0.0.1:{port}")),
        "{err:?}"
    );
    assert!(err.is_outage());
    let text = err.to_string();
    assert!(text.contains("AWS_ENDPOINT_URL"), "{text}");
    assert!(text.to_lowercase().contains("refused"), "{text}");
    assert_eq!(s3.counts(), RequestCounts { head: 4, ..RequestCounts::default() });
    let err = s3.check_access().await.unwrap_err();
    assert!(matches!(err, S3Error::Unreachable { .. }), "{err:?}");
    assert_eq!(s3.counts().list, 4);
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let server = FakeServer::start(vec![Reply::Hang]).await;
    let opts = S3Options { max_retries: 1, timeout: Duration::from_millis(300), ..fast_options() };
    let s3 = fake_store(&server, opts);
    let err = s3.get("a.json").await.unwrap_err();
    assert!(matches!(err, S3Error::Timeout { attempts: 2, .. }), "{err:?}");
    assert!(err.is_outage());
    assert_eq!(server.received().len(), 2);
    assert_eq!(s3.counts().get, 2);
}

#[tokio::test]
async fn slow_down_and_5xx_are_retried_then_succeed() {
    let server = FakeServer::start(vec![
        Reply::s3_error(503, "SlowDown"),
        Reply::s3_error(500, "InternalError"),
        Reply::Close,
        Reply::ok(&[("etag", "\"abc\"")], ""),
    ])
    .await;
    let s3 = fake_store(&server, fast_options());
    let out = s3.put("a.json", b"x".to_vec(), sha(b"x"), PutMode::Overwrite).await.unwrap();
    assert_eq!(out.attempts, 4);
    assert_eq!(out.etag.as_deref(), Some("abc"));
    assert_eq!(s3.counts().put, 4, "every attempt is billed");
    // Each retry is signed afresh and carries the same body.
    for r in server.received() {
        assert_eq!(r.body, b"x");
        assert!(r.header("authorization").is_some());
    }
}

#[tokio::test]
async fn persistent_5xx_is_an_outage_after_max_retries() {
    let server = FakeServer::start(vec![Reply::s3_error(500, "InternalError")]).await;
    let opts = S3Options { max_retries: 2, ..fast_options() };
    let s3 = fake_store(&server, opts);
    let err = s3.list("users/").await.unwrap_err();
    assert!(
        matches!(&err, S3Error::Server { status: 500, code, attempts: 3, .. } if code == "InternalError"),
        "{err:?}"
    );
    assert!(err.is_outage());
    assert_eq!(server.received().len(), 3);
    assert_eq!(s3.counts().list, 3);
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    for (reply, check) in [
        (
            Reply::s3_error(403, "AccessDenied"),
            (|e: &S3Error| matches!(e, S3Error::AccessDenied { .. })) as fn(&S3Error) -> bool,
        ),
        (Reply::s3_error(400, "InvalidArgument"), |e| {
            matches!(e, S3Error::Rejected { status: 400, .. })
        }),
        (Reply::s3_error(501, "NotImplemented"), |e| {
            matches!(e, S3Error::Server { status: 501, .. }) && !e.is_outage()
        }),
        (Reply::s3_error(409, "BucketAlreadyExists"), |e| {
            matches!(e, S3Error::Rejected { status: 409, .. })
        }),
    ] {
        let server = FakeServer::start(vec![reply, Reply::ok(&[], "")]).await;
        let s3 = fake_store(&server, fast_options());
        let err = s3.put("a.json", b"x".to_vec(), sha(b"x"), PutMode::Overwrite).await.unwrap_err();
        assert!(check(&err), "{err:?}");
        assert_eq!(server.received().len(), 1, "{err:?} was retried");
    }
}

#[tokio::test]
async fn requests_are_signed_and_carry_the_checksums() {
    let server = FakeServer::start(vec![Reply::ok(&[], "")]).await;
    let s3 = fake_store(&server, fast_options());
    let body = b"{\"a\":1}".to_vec();
    s3.put("users/u1/routes/a b+ü.json", body.clone(), sha(&body), PutMode::CreateOnly)
        .await
        .unwrap();
    let r = &server.received()[0];
    assert_eq!(r.request_line, "PUT /kompass-test/users/u1/routes/a%20b%2B%C3%BC.json HTTP/1.1");
    let hex_sum = hex::encode(sha(&body));
    assert_eq!(r.header("x-amz-content-sha256"), Some(hex_sum.as_str()));
    assert_eq!(r.header("x-amz-meta-sha256"), Some(hex_sum.as_str()));
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(sha(&body));
    assert_eq!(r.header("x-amz-checksum-sha256"), Some(b64.as_str()));
    assert_eq!(r.header("if-none-match"), Some("*"));
    assert_eq!(r.header("content-length"), Some("7"));
    let auth = r.header("authorization").unwrap();
    assert!(auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIAFAKE/"), "{auth}");
    assert!(auth.contains("/us-east-1/s3/aws4_request"), "{auth}");
    for signed in ["host", "if-none-match", "x-amz-checksum-sha256", "x-amz-meta-sha256"] {
        assert!(auth.contains(signed), "{signed} unsigned: {auth}");
    }
    assert!(!auth.contains("fake-secret"));
    assert_eq!(r.body, body);
}

#[tokio::test]
async fn list_requests_ask_for_url_encoded_keys_and_follow_tokens() {
    let page = |keys: &[&str], token: Option<&str>| {
        let contents: String = keys
            .iter()
            .map(|k| {
                format!(
                    "<Contents><Key>{k}</Key><LastModified>2024-05-01T10:00:00.000Z</LastModified>\
                     <ETag>\"e\"</ETag><Size>1</Size></Contents>"
                )
            })
            .collect();
        let tail = match token {
            Some(t) => format!(
                "<IsTruncated>true</IsTruncated><NextContinuationToken>{t}</NextContinuationToken>"
            ),
            None => "<IsTruncated>false</IsTruncated>".to_owned(),
        };
        Reply::ok(
            &[("content-type", "application/xml")],
            &format!(
                "<ListBucketResult><EncodingType>url</EncodingType>{contents}{tail}</ListBucketResult>"
            ),
        )
    };
    let server = FakeServer::start(vec![
        page(&["p/a+b", "p/c%2Bd"], Some("tok/en+=")),
        page(&["p/%C3%A9"], None),
    ])
    .await;
    let s3 = fake_store(&server, fast_options());
    let objects = s3.list("p/ x").await.unwrap();
    let keys: Vec<&str> = objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(keys, ["p/a b", "p/c+d", "p/é"]);
    assert_eq!(objects[0].last_modified_ms, 1_714_557_600_000);
    let received = server.received();
    assert_eq!(
        received[0].request_line,
        "GET /kompass-test?encoding-type=url&list-type=2&max-keys=1000&prefix=p%2F%20x HTTP/1.1"
    );
    assert!(
        received[1].request_line.contains("&continuation-token=tok%2Fen%2B%3D "),
        "{}",
        received[1].request_line
    );
    assert_eq!(s3.counts().list, 2);
}

#[tokio::test]
async fn a_repeated_continuation_token_is_an_error_not_a_loop() {
    let body = "<ListBucketResult><IsTruncated>true</IsTruncated>\
                <NextContinuationToken>same</NextContinuationToken></ListBucketResult>";
    let server = FakeServer::start(vec![Reply::ok(&[], body)]).await;
    let s3 = fake_store(&server, fast_options());
    let err = s3.list("").await.unwrap_err();
    assert!(matches!(err, S3Error::Protocol(_)), "{err:?}");
    assert_eq!(s3.counts().list, 2);
}

#[tokio::test]
async fn verify_downloads_and_hashes_when_the_server_keeps_no_checksum() {
    let body = "stored bytes";
    // The fake sends Content-Length from its body, so a HEAD reply carries a body of that size
    // (which the client does not read).
    let head =
        Reply::ok(&[("last-modified", "Wed, 21 Oct 2015 07:28:00 GMT")], &" ".repeat(body.len()));
    let server = FakeServer::start(vec![head, Reply::ok(&[], body)]).await;
    let s3 = fake_store(&server, fast_options());
    assert!(s3.verify("a.json", body.len() as u64, sha(body.as_bytes())).await.unwrap());
    assert_eq!(s3.counts(), RequestCounts { head: 1, get: 1, ..RequestCounts::default() });

    // Same size, other bytes: false.
    let server = FakeServer::start(vec![
        Reply::ok(&[("last-modified", "Wed, 21 Oct 2015 07:28:00 GMT")], "            "),
        Reply::ok(&[], "other  bytes"),
    ])
    .await;
    let s3 = fake_store(&server, fast_options());
    assert!(!s3.verify("a.json", body.len() as u64, sha(body.as_bytes())).await.unwrap());
}

#[tokio::test]
async fn a_download_that_does_not_match_its_stored_checksum_is_corrupt() {
    let stored = hex::encode(sha(b"original"));
    let server =
        FakeServer::start(vec![Reply::ok(&[("x-amz-meta-sha256", &stored)], "tampered")]).await;
    let s3 = fake_store(&server, fast_options());
    let err = s3.get("a.json").await.unwrap_err();
    assert!(matches!(err, S3Error::Corrupt { .. }), "{err:?}");
}

#[tokio::test]
async fn a_create_only_put_whose_answer_was_lost_is_recognised_as_ours() {
    let body = b"mine".to_vec();
    let hex_sum = hex::encode(sha(&body));
    let head = Reply::Answer {
        status: 200,
        headers: vec![
            ("last-modified".into(), "Wed, 21 Oct 2015 07:28:00 GMT".into()),
            ("x-amz-meta-sha256".into(), hex_sum.clone()),
            ("etag".into(), "\"e1\"".into()),
        ],
        body: " ".repeat(body.len()),
    };
    // Attempt 1 lands but its answer is lost; the retry finds the key taken.
    let server = FakeServer::start(vec![
        Reply::Close,
        Reply::s3_error(412, "PreconditionFailed"),
        head.clone(),
    ])
    .await;
    let s3 = fake_store(&server, fast_options());
    let out = s3.put("a.json", body.clone(), sha(&body), PutMode::CreateOnly).await.unwrap();
    assert_eq!(out.attempts, 2);
    assert_eq!(out.etag.as_deref(), Some("e1"));
    assert_eq!(s3.counts(), RequestCounts { put: 2, head: 1, ..RequestCounts::default() });

    // Someone else's bytes under that key: still a conflict.
    let server =
        FakeServer::start(vec![Reply::Close, Reply::s3_error(412, "PreconditionFailed"), head])
            .await;
    let s3 = fake_store(&server, fast_options());
    let err =
        s3.put("a.json", b"diff".to_vec(), sha(b"diff"), PutMode::CreateOnly).await.unwrap_err();
    assert!(matches!(err, S3Error::PreconditionFailed { .. }), "{err:?}");
}

/// The `Store` trait over S3 keeps the same contract as the local and in-memory stores
/// (`store/contract_tests.rs`): typed keys in, the core's records out, create-only refusals
/// typed, listings scoped to one owner.
#[tokio::test]
async fn the_store_trait_over_s3_keeps_the_contract() {
    use kompass::store::{Scope, Store, StoreError};
    use kompass_core::key::{DataType, ObjectKey, UserId};
    let Some(env) = support::s3_env("the_store_trait_over_s3_keeps_the_contract") else {
        return;
    };
    let s = store(&env);
    let user = format!("st-{}", now_ms());
    let key = |t: &str, n: &str| ObjectKey::parse_parts(Some(&user), t, n).unwrap();
    let (a, b) = (key("routes", "a.json"), key("fitness", "b.json"));
    assert!(Store::head(&s, &a).await.unwrap().is_none());
    assert!(Store::get(&s, &a).await.unwrap_err().is_not_found());
    let rec = Store::put(&s, &a, b"12345", PutMode::Overwrite).await.unwrap();
    assert_eq!((rec.key.clone(), rec.size), (a.clone(), 5));
    Store::put(&s, &b, b"xy", PutMode::Overwrite).await.unwrap();
    let e = Store::put(&s, &a, b"other", PutMode::CreateOnly).await.unwrap_err();
    assert!(matches!(e, StoreError::Exists { .. }), "{e}");
    assert_eq!(Store::get(&s, &a).await.unwrap(), b"12345");
    assert_eq!(Store::head(&s, &a).await.unwrap().unwrap().size, 5);
    let u = UserId::new(&user).unwrap();
    let keys =
        |l: kompass::store::Listing| l.objects.into_iter().map(|o| o.key).collect::<Vec<_>>();
    assert_eq!(
        keys(Store::list(&s, Scope::Owner(Some(&u))).await.unwrap()),
        vec![b.clone(), a.clone()]
    );
    assert_eq!(
        keys(Store::list(&s, Scope::Type(Some(&u), DataType::Routes)).await.unwrap()),
        vec![a.clone()]
    );
    Store::delete(&s, &a).await.unwrap();
    Store::delete(&s, &a).await.unwrap();
    Store::delete(&s, &b).await.unwrap();
    assert!(Store::list(&s, Scope::Owner(Some(&u))).await.unwrap().objects.is_empty());
}
