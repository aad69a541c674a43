//! How a request travels to S3: the HTTP client, SigV4 header signing with kompass-core's
//! signer (re-signed on every attempt), bounded retries with jittered backoff, deadlines, and
//! the request counters the free-tier ledger reads. The operations (`super`) build requests and
//! read answers; they never touch the client.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use kompass_core::presign::{SignableRequest, sign_request};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode, Url};

use super::error::{Context, Op, classify, parse_error_body};
use super::retry::{Backoff, retriable_status};
use super::{S3Error, S3Options, S3Store, header_str};

/// The HTTP client every request of a store goes through.
pub(super) fn client(opts: &S3Options) -> Result<reqwest::Client, S3Error> {
    reqwest::Client::builder()
        .timeout(opts.timeout)
        .connect_timeout(opts.connect_timeout)
        // A redirect would go to another host with this host's signature: report it instead.
        .redirect(reqwest::redirect::Policy::none())
        // AWS closes idle connections after about 20 s; reusing one then costs a retry.
        .pool_idle_timeout(Duration::from_secs(15))
        .user_agent(concat!("kompass/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| S3Error::Client(error_chain(&e)))
}

/// Requests sent so far, by class, for the free-tier ledger. Every attempt counts, retries
/// included: AWS bills each one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestCounts {
    /// PUT object requests.
    pub put: u64,
    /// ListObjectsV2 requests (billed as PUT-class).
    pub list: u64,
    /// GET object requests.
    pub get: u64,
    /// HEAD object requests (billed as GET-class).
    pub head: u64,
    /// DELETE requests (free on AWS, counted apart).
    pub delete: u64,
}

impl RequestCounts {
    /// PUT-class requests (PUT, COPY, POST, LIST): 2,000 a month on the free tier.
    pub fn put_class(&self) -> u64 {
        self.put + self.list
    }

    /// GET-class requests (GET, HEAD): 20,000 a month on the free tier.
    pub fn get_class(&self) -> u64 {
        self.get + self.head
    }
}

#[derive(Debug, Default)]
pub(super) struct Counters {
    put: AtomicU64,
    list: AtomicU64,
    get: AtomicU64,
    head: AtomicU64,
    delete: AtomicU64,
    /// Final outcomes (after retries) by operation and outcome, for `/metrics`.
    pub(super) outcomes:
        std::sync::Mutex<std::collections::BTreeMap<(&'static str, &'static str), u64>>,
}

/// How many requests of one operation ended one way (after any retries).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestOutcome {
    /// `PUT`, `GET`, `HEAD`, `DELETE` or `LIST`.
    pub op: &'static str,
    /// `ok`, `not_found`, `client_error`, `server_error`, `timeout`, `unreachable` or `error`.
    pub outcome: &'static str,
    /// How many.
    pub count: u64,
}

impl Counters {
    fn count(&self, op: Op) {
        let counter = match op {
            Op::Put => &self.put,
            Op::List => &self.list,
            Op::Get => &self.get,
            Op::Head => &self.head,
            Op::Delete => &self.delete,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn outcome(&self, op: Op, outcome: &'static str) {
        let mut m = self.outcomes.lock().unwrap_or_else(|e| e.into_inner());
        *m.entry((op.name(), outcome)).or_default() += 1;
    }

    pub(super) fn snapshot(&self) -> RequestCounts {
        RequestCounts {
            put: self.put.load(Ordering::Relaxed),
            list: self.list.load(Ordering::Relaxed),
            get: self.get.load(Ordering::Relaxed),
            head: self.head.load(Ordering::Relaxed),
            delete: self.delete.load(Ordering::Relaxed),
        }
    }
}

/// One request to send, re-signed on every attempt.
pub(super) struct Request<'a> {
    pub(super) op: Op,
    pub(super) method: Method,
    pub(super) url: Url,
    pub(super) key: Option<&'a str>,
    /// Headers to sign and send (beyond those the signer adds).
    pub(super) headers: Vec<(String, String)>,
    pub(super) body: Bytes,
    pub(super) payload_sha256_hex: String,
}

/// The final answer to a request (after any retries).
pub(super) struct Response {
    pub(super) status: StatusCode,
    pub(super) headers: HeaderMap,
    pub(super) body: Bytes,
    pub(super) attempts: u32,
}

enum AttemptError {
    /// Worth another attempt: no answer, or a broken one.
    Transport(reqwest::Error),
    /// Another attempt would fail the same way.
    Fatal(S3Error),
}

impl S3Store {
    /// Sends `req`, retrying transient failures with backoff; returns the final answer
    /// (success or not) or the transport failure of the last attempt.
    pub(super) async fn execute(&self, req: &Request<'_>) -> Result<Response, S3Error> {
        let extra = Duration::from_secs(req.body.len() as u64 >> 20);
        let deadline = self.inner.opts.deadline + extra;
        match tokio::time::timeout(deadline, self.execute_attempts(req, extra)).await {
            Ok(r) => r,
            Err(_) => {
                self.inner.counters.outcome(req.op, "timeout");
                Err(S3Error::Deadline {
                    op: req.op.name(),
                    endpoint: self.inner.endpoint.clone(),
                    deadline,
                })
            }
        }
    }

    async fn execute_attempts(
        &self,
        req: &Request<'_>,
        extra: Duration,
    ) -> Result<Response, S3Error> {
        let opts = &self.inner.opts;
        let mut backoff = Backoff::new(opts.retry_base_delay, opts.retry_max_delay);
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let outcome = self.attempt(req, extra).await;
            let retriable = match &outcome {
                Ok((status, _, body)) if !status.is_success() => {
                    let code = if *status == StatusCode::CONFLICT {
                        parse_error_body(body).code
                    } else {
                        None
                    };
                    retriable_status(status.as_u16(), code.as_deref())
                }
                Ok(_) => false,
                Err(AttemptError::Transport(_)) => true,
                Err(AttemptError::Fatal(_)) => false,
            };
            if !retriable || attempts > opts.max_retries {
                let label = match &outcome {
                    Ok((status, _, _)) if status.is_success() => "ok",
                    Ok((status, _, _)) if *status == StatusCode::NOT_FOUND => "not_found",
                    Ok((status, _, _)) if status.is_client_error() => "client_error",
                    Ok(_) => "server_error",
                    Err(AttemptError::Transport(e)) if e.is_timeout() => "timeout",
                    Err(AttemptError::Transport(_)) => "unreachable",
                    Err(AttemptError::Fatal(_)) => "error",
                };
                self.inner.counters.outcome(req.op, label);
                return match outcome {
                    Ok((status, headers, body)) => Ok(Response { status, headers, body, attempts }),
                    Err(AttemptError::Transport(e)) => Err(self.transport_error(&e, attempts)),
                    Err(AttemptError::Fatal(e)) => Err(e),
                };
            }
            tracing::debug!(
                op = ?req.op,
                attempt = attempts,
                "S3 request failed transiently; retrying"
            );
            tokio::time::sleep(backoff.delay(attempts - 1)).await;
        }
    }

    /// One signed attempt, reading the whole answer.
    async fn attempt(
        &self,
        req: &Request<'_>,
        extra: Duration,
    ) -> Result<(StatusCode, HeaderMap, Bytes), AttemptError> {
        let signed = sign_request(
            &SignableRequest {
                method: req.method.as_str(),
                url: req.url.as_str(),
                headers: &req.headers,
                payload_sha256_hex: Some(&req.payload_sha256_hex),
            },
            &self.inner.creds,
            &self.inner.target.region,
            crate::clock::now().to_system_time(),
        )
        .map_err(|e| AttemptError::Fatal(e.into()))?;
        // Counted before sending: a request that fails on the way may still be billed.
        self.inner.counters.count(req.op);
        let mut builder = self
            .inner
            .client
            .request(req.method.clone(), req.url.clone())
            .timeout(self.inner.opts.timeout + extra);
        for (name, value) in req.headers.iter().chain(&signed) {
            builder = builder.header(name, value);
        }
        if req.method == Method::PUT {
            builder = builder.body(req.body.clone());
        }
        let resp = builder.send().await.map_err(AttemptError::Transport)?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.map_err(AttemptError::Transport)?;
        Ok((status, headers, body))
    }

    fn transport_error(&self, e: &reqwest::Error, attempts: u32) -> S3Error {
        let endpoint = self.inner.endpoint.clone();
        if e.is_timeout() && !e.is_connect() {
            S3Error::Timeout { endpoint, timeout: self.inner.opts.timeout, attempts }
        } else {
            S3Error::Unreachable { endpoint, detail: error_chain(e), attempts }
        }
    }

    /// The error for a non-success answer, with any echo of the secret removed.
    pub(super) fn error_for(&self, req: &Request<'_>, resp: &Response) -> S3Error {
        let mut body = parse_error_body(&resp.body);
        let secret = &self.inner.creds.secret_access_key;
        if let Some(message) = &mut body.message
            && !secret.is_empty()
            && message.contains(secret.as_str())
        {
            *message = message.replace(secret.as_str(), "**");
        }
        classify(
            resp.status.as_u16(),
            &body,
            header_str(&resp.headers, "x-amz-bucket-region"),
            resp.attempts,
            Context {
                op: req.op,
                bucket: &self.inner.target.bucket,
                key: req.key,
                endpoint: &self.inner.endpoint,
            },
        )
    }
}

/// The causes of a transport error, most specific last; the top level (which repeats the
/// URL) is left out.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        source = cause.source();
    }
    if parts.is_empty() { e.to_string() } else { parts.join(": ") }
}
