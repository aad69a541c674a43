//! The server's own upload endpoint, used when S3 is disabled: the local twin of a presigned
//! PUT, with the same guarantees (expiry, exact size, exact SHA-256, the user's prefix).
//!
//! A grant is sealed with the server secret by the core's one token primitive
//! (`kompass_core::token::seal`) under its own context string (so an API token is never a
//! grant, nor a grant a token). The payload is `{"v":1,"key":KEY,"size":N,"sha256":HEX,"exp":UNIX}`. The
//! key was built from the token's user when the grant was issued; it is checked again here.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use http_body_util::BodyExt as _;
use kompass_core::inventory::Sha256Digest;
use kompass_core::key::{DataType, ObjectKey};
use kompass_core::token::{self, TokenError};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use thiserror::Error;

use super::{ApiError, Shared, unix_now};
use crate::manager::ManagerError;
use crate::store::local::{LocalError, PendingPut};

/// Domain separation for the grant MAC.
const CONTEXT: &[u8] = b"kompass-upload-grant.v1.";
/// The payload format version.
const VERSION: u8 = 1;
/// Longer grants are rejected before any decoding.
const MAX_GRANT_LEN: usize = 2048;

/// One granted upload: these exact bytes, to this key, until then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The object key (`users/{user}/{type}/{name}`).
    pub key: String,
    /// The exact size in bytes.
    pub size: u64,
    /// The exact SHA-256 of the bytes.
    pub sha256: [u8; 32],
    /// Unix seconds at which the grant stops being valid.
    pub expires_at: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Payload {
    v: u8,
    key: String,
    size: u64,
    sha256: String,
    exp: u64,
}

/// Why a grant was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GrantError {
    /// Not a grant of this format.
    #[error("the upload URL is malformed ({0}): ask for a new one with POST /api/presign")]
    Malformed(&'static str),
    /// The MAC does not match: altered, or signed with another secret.
    #[error(
        "the upload URL's signature does not match (altered, or issued by another server): ask for a new one with POST /api/presign"
    )]
    BadSignature,
    /// The grant was valid until `expired_at`.
    #[error("the upload URL expired at {}: ask for a new one with POST /api/presign", kompass_core::time::rfc3339_utc(*.expired_at))]
    Expired {
        /// When it expired, unix seconds.
        expired_at: u64,
    },
}

impl Grant {
    /// Signs the grant with `secret` (the server secret).
    pub fn sign(&self, secret: &[u8]) -> String {
        let payload = Payload {
            v: VERSION,
            key: self.key.clone(),
            size: self.size,
            sha256: hex::encode(self.sha256),
            exp: self.expires_at,
        };
        let json = serde_json::to_vec(&payload).expect("strings and integers serialise");
        token::seal(CONTEXT, &json, secret)
    }

    /// Verifies a signed grant at `now_unix`: the MAC (constant time), then the expiry.
    pub fn verify(signed: &str, secret: &[u8], now_unix: u64) -> Result<Grant, GrantError> {
        if signed.is_empty() || signed.len() > MAX_GRANT_LEN {
            return Err(GrantError::Malformed("empty or too long"));
        }
        let json = token::open(CONTEXT, signed, secret).map_err(|e| match e {
            TokenError::Malformed(why) => GrantError::Malformed(why),
            // The server secret is checked at start-up; a short one signs nothing here.
            TokenError::BadSignature | TokenError::WeakSecret { .. } => GrantError::BadSignature,
            TokenError::Expired { expired_at } => GrantError::Expired { expired_at },
        })?;
        let p: Payload = serde_json::from_slice(&json)
            .map_err(|_| GrantError::Malformed("payload is not JSON"))?;
        if p.v != VERSION {
            return Err(GrantError::Malformed("unsupported version"));
        }
        let sha =
            Sha256Digest::from_hex(&p.sha256).map_err(|_| GrantError::Malformed("bad digest"))?;
        if now_unix >= p.exp {
            return Err(GrantError::Expired { expired_at: p.exp });
        }
        Ok(Grant { key: p.key, size: p.size, sha256: sha.0, expires_at: p.exp })
    }
}

fn forbidden(e: GrantError) -> ApiError {
    let code = match e {
        GrantError::Expired { .. } => "grant_expired",
        _ => "grant_invalid",
    };
    ApiError::new(StatusCode::FORBIDDEN, code, e.to_string())
}

/// `PUT /api/upload/{grant}`: stores the body under the granted key when it is exactly the
/// granted bytes; the save runs admission (limits, quota, cleanup) again. The body is never
/// held in memory: it streams into a temp file in the key's folder (at most the granted size),
/// which only a passed admission renames into place.
pub async fn upload(
    State(app): State<Shared>,
    Path(signed): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    let grant = Grant::verify(&signed, app.secret(), unix_now()).map_err(forbidden)?;
    // Only user data is ever granted; a key outside `users/{user}/` means a forged payload.
    let key = ObjectKey::from_s3_key(&grant.key)
        .ok()
        .filter(|k| k.owner().is_some())
        .ok_or_else(|| forbidden(GrantError::Malformed("not a user key")))?;
    // Rider data is stored only by the server's rider route (a grant for it is never
    // issued; this refuses one forged or issued before that rule).
    if key.data_type() == DataType::Fitness {
        return Err(ApiError::bad_request(
            "rider_route",
            kompass_core::scrub::policy::USE_RIDER_ROUTE,
        ));
    }

    let length = headers
        .get(header::CONTENT_LENGTH)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::LENGTH_REQUIRED,
                "length_required",
                format!(
                    "send Content-Length: {} (the granted size); chunked uploads are not accepted",
                    grant.size
                ),
            )
        })?
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .ok_or_else(|| ApiError::bad_request("size_mismatch", "Content-Length is not a number"))?;
    if length != grant.size {
        return Err(ApiError::bad_request(
            "size_mismatch",
            format!(
                "the body is {length} bytes but the upload URL was granted for exactly {}: presign the bytes you send",
                grant.size
            ),
        ));
    }
    if let Some(claimed) = headers.get("x-amz-checksum-sha256") {
        let claimed = claimed.to_str().ok().and_then(|v| Sha256Digest::from_base64(v.trim()).ok());
        if claimed.map(|d| d.0) != Some(grant.sha256) {
            return Err(ApiError::bad_request(
                "checksum_mismatch",
                "x-amz-checksum-sha256 differs from the granted SHA-256: send the header the presign answer gave",
            ));
        }
    }
    // A grant over today's file size limit is refused before a byte is written.
    app.manager.check_file_size(grant.size)?;
    // The body goes straight into a temp file in the key's folder, bounded by the granted
    // size; it becomes visible only after admission, by a rename.
    let put = app.manager.local().begin_put(&key).map_err(write_failed)?;
    let (written, digest) = receive(body, grant.size, put).await?;
    // Durable (the writing thread's fsync) before admission is asked: the admission lock is
    // never held over a disk flush, and no async worker blocks on one.
    let put = match written.await {
        Ok((put, Ok(()))) => put,
        Ok((_, Err(e))) => return Err(write_failed(e)),
        Err(_) => return Err(write_failed(writer_stopped())),
    };
    if digest != grant.sha256 {
        // `put` goes here, with its temp file, before the answer.
        return Err(ApiError::bad_request(
            "sha256_mismatch",
            "the body's SHA-256 differs from the granted one: upload exactly the bytes that were presigned",
        ));
    }
    let _admission = app.admission.lock().await;
    let saved = app.manager.save_written(put).await.map_err(|e| match e {
        ManagerError::Local(e) => write_failed(e),
        e => ApiError::from(e),
    })?;
    Ok((StatusCode::CREATED, axum::Json(saved)))
}

/// The body is copied out of hyper's frames into chunks of this size, which the writing thread
/// writes and hands back. Why: a frame kept alive while it waits in a queue makes hyper take a
/// fresh receive buffer for the next read, and fresh memory costs page faults (zeroing) on
/// every read and `madvise` when it is freed: ~15% of the server's CPU per upload, measured.
/// Dropped at once, a frame lets hyper read the next one into the same, warm buffer. 256 KiB
/// rather than 1 MiB: the writing thread copies a chunk while it is still in the CPU's cache
/// (server CPU per 32 MiB upload ~10% lower, measured alternating the two).
const CHUNK: usize = 256 << 10;
/// Chunks one upload may have in flight between the receiving task and the writing thread.
const CHUNKS: usize = 24;
/// Idle chunks kept for the next upload, so its chunks are warm memory too (8 MiB at most).
const SPARE_CHUNKS: usize = 32;

static SPARE: std::sync::Mutex<Vec<Vec<u8>>> = std::sync::Mutex::new(Vec::new());

fn take_chunk() -> Vec<u8> {
    let spare = SPARE.lock().unwrap_or_else(|e| e.into_inner()).pop();
    spare.unwrap_or_else(|| Vec::with_capacity(CHUNK))
}

fn give_back(mut chunk: Vec<u8>) {
    chunk.clear();
    let mut spare = SPARE.lock().unwrap_or_else(|e| e.into_inner());
    if spare.len() < SPARE_CHUNKS && chunk.capacity() >= CHUNK {
        spare.push(chunk);
    }
}

/// Where the writing thread hands the upload back: once every byte is written and fsynced
/// (or on the error that stopped it).
type Written = tokio::sync::oneshot::Receiver<(PendingPut, Result<(), LocalError>)>;

/// Streams exactly `size` bytes of body into `put`, hashing each frame as it arrives: the
/// bytes are written on a blocking thread while this task hashes them and receives the next,
/// so receiving, hashing and writing overlap. A body longer than `size` is cut off at the
/// first frame past it; shorter or interrupted (the client went away), it is refused. On
/// any error `put` is dropped here, which removes its temp file before the answer goes out.
/// Received in full, the body's digest is returned at once, with where the writing thread
/// will hand `put` back once its fsync is done.
async fn receive(
    mut body: Body,
    size: u64,
    mut put: PendingPut,
) -> Result<(Written, [u8; 32]), ApiError> {
    let size_error = |detail: String| {
        ApiError::bad_request(
            "size_mismatch",
            format!("could not read exactly {size} bytes of body: {detail}"),
        )
    };
    let (full_tx, mut full_rx) = tokio::sync::mpsc::channel::<Vec<u8>>(CHUNKS);
    let (free_tx, mut free_rx) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
    let (done_tx, done) = tokio::sync::oneshot::channel();
    tokio::task::spawn_blocking(move || {
        let mut written = Ok(());
        while let Some(mut chunk) = full_rx.blocking_recv() {
            written = put.write(&chunk);
            chunk.clear();
            // The receiving task no longer takes chunks back: kept for the next upload.
            if let Err(back) = free_tx.send(chunk) {
                give_back(back.0);
            }
            if written.is_err() {
                break;
            }
        }
        // Complete: make it durable here, off the async threads and before the rename; the
        // page cache is given back after the upload is handed on.
        let mut pages = None;
        if written.is_ok() && put.len() == size {
            match put.sync_keep_cache() {
                Ok(p) => pages = Some(p),
                Err(e) => written = Err(e),
            }
        }
        // Nobody waits any more (the request was dropped): `put` goes, with its temp file.
        let _ = done_tx.send((put, written));
        if let Some(pages) = pages {
            pages.release();
        }
    });
    let mut hasher = Sha256::new();
    let mut received: u64 = 0;
    let mut chunk = take_chunk();
    let mut chunks = 1;
    // The writer stopped on an error (reported below).
    let mut stopped = false;
    let streamed = 'body: loop {
        let Some(frame) = body.frame().await else { break Ok(()) };
        let data = match frame {
            Ok(frame) => match frame.into_data() {
                Ok(data) => data,
                Err(_) => continue,
            },
            Err(e) => break Err(size_error(e.to_string())),
        };
        received += data.len() as u64;
        if received > size {
            break Err(size_error("the body is longer".into()));
        }
        hasher.update(&data);
        let mut rest: &[u8] = &data;
        while !rest.is_empty() {
            let n = rest.len().min(CHUNK - chunk.len());
            chunk.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            if chunk.len() == CHUNK {
                let next = match free_rx.try_recv() {
                    Ok(c) => c,
                    Err(_) if chunks < CHUNKS => {
                        chunks += 1;
                        take_chunk()
                    }
                    Err(_) => match free_rx.recv().await {
                        Some(c) => c,
                        None => {
                            stopped = true;
                            break 'body Ok(());
                        }
                    },
                };
                if full_tx.send(std::mem::replace(&mut chunk, next)).await.is_err() {
                    stopped = true;
                    break 'body Ok(());
                }
            }
        }
    };
    let mut sent_all = received == size && !stopped;
    if streamed.is_ok() && !chunk.is_empty() {
        sent_all &= full_tx.send(std::mem::take(&mut chunk)).await.is_ok();
    }
    drop(full_tx);
    give_back(chunk);
    while let Ok(c) = free_rx.try_recv() {
        give_back(c);
    }
    drop(free_rx);
    if streamed.is_ok() && sent_all {
        return Ok((done, hasher.finalize().into()));
    }
    // Cut short: wait for the writing thread, so the temp file is gone before the answer, and
    // tell what stopped it.
    let Ok((put, written)) = done.await else {
        return Err(write_failed(writer_stopped()));
    };
    streamed?;
    written.map_err(write_failed)?;
    Err(ApiError::bad_request(
        "size_mismatch",
        format!("received {} bytes, granted {size}", put.len()),
    ))
}

/// The writing thread ended without handing the upload back (it panicked).
fn writer_stopped() -> LocalError {
    LocalError::Io {
        op: "write",
        path: std::path::PathBuf::from("(upload)"),
        source: std::io::Error::other("the upload's writing thread stopped"),
    }
}

/// A local write failure, told without the server's paths (they stay in the log).
fn write_failed(e: LocalError) -> ApiError {
    tracing::error!("an upload could not be written: {e}");
    match e {
        LocalError::DiskFull { .. } => ApiError::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "disk_full",
            "the server's disk is full: try the upload again later",
        ),
        // The detail says what is in the way, without where.
        LocalError::Conflict { detail, .. } => ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!("the upload cannot be stored under its name: {detail}"),
        ),
        _ => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "storage_error",
            "the server could not store the upload: try again later",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
    const NOW: u64 = 1_800_000_000;

    fn grant() -> Grant {
        Grant {
            key: "users/alice/fitness/a.json".into(),
            size: 12,
            sha256: [7; 32],
            expires_at: NOW + 60,
        }
    }

    #[test]
    fn round_trip_and_expiry() {
        let signed = grant().sign(SECRET);
        assert_eq!(Grant::verify(&signed, SECRET, NOW), Ok(grant()));
        assert_eq!(
            Grant::verify(&signed, SECRET, NOW + 60),
            Err(GrantError::Expired { expired_at: NOW + 60 })
        );
    }

    #[test]
    fn any_change_is_refused() {
        let signed = grant().sign(SECRET);
        assert_eq!(
            Grant::verify(&signed, b"fedcba9876543210fedcba9876543210", NOW),
            Err(GrantError::BadSignature)
        );
        let (payload, tag) = signed.split_once('.').unwrap();
        for forged in [
            Grant { key: "users/bob/fitness/a.json".into(), ..grant() },
            Grant { size: 13, ..grant() },
            Grant { sha256: [8; 32], ..grant() },
            Grant { expires_at: NOW + 6000, ..grant() },
        ] {
            let other = forged.sign(b"another secret, also 32 bytes...");
            let (forged_payload, _) = other.split_once('.').unwrap();
            assert_eq!(
                Grant::verify(&format!("{forged_payload}.{tag}"), SECRET, NOW),
                Err(GrantError::BadSignature)
            );
        }
        for i in 0..signed.len() {
            let mut altered = signed.clone().into_bytes();
            altered[i] = if altered[i] == b'A' { b'B' } else { b'A' };
            let altered = String::from_utf8(altered).unwrap();
            assert!(Grant::verify(&altered, SECRET, NOW).is_err(), "{altered}");
        }
        assert!(matches!(Grant::verify(payload, SECRET, NOW), Err(GrantError::Malformed(_))));
    }

    #[test]
    fn a_token_is_not_a_grant() {
        let token = kompass_core::token::mint("alice", NOW + 60, SECRET);
        assert_eq!(Grant::verify(&token, SECRET, NOW), Err(GrantError::BadSignature));
        let signed = grant().sign(SECRET);
        assert!(kompass_core::token::verify(&signed, SECRET, NOW).is_err());
    }
}
