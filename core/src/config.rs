//! Configuration: the environment (a key→value map) parsed into a validated [`Config`].
//!
//! Every problem is collected into one [`ConfigErrors`], so a single run lists them all.
//! Secrets are held in [`Secret`], whose `Debug` and `Display` print `<redacted>`, and
//! problems about secrets never echo the value.
//!
//! Decisions, documented here because operators rely on them:
//! - **Units.** `*_MB` is MiB (1024 × 1024 bytes) and `*_GB` is GiB (1024³ bytes), as in the
//!   original Python (`* 1024 * 1024`). Decimals are allowed (`S3_MAX_TOTAL_STORAGE_GB=4.5` is
//!   4,831,838,208 bytes); the byte count is rounded down. Zero, negative, `NaN`, `inf` and
//!   exponents are rejected.
//! - **Empty means unset.** Values are trimmed of surrounding whitespace, and an empty value
//!   takes the default (so `AWS_REGION=` in a `.env` template is harmless).
//! - **S3 off means S3 ignored.** With `S3_STORAGE_ENABLED` false or absent, the AWS variables
//!   are neither required nor validated (a stray one must not block local storage). With it
//!   true, the bucket, access key id and secret key are required. With it invalid, the AWS
//!   variables that are present are validated, none is required.
//! - **Limits** are validated whether or not S3 is on; `S3_MAX_FILE_SIZE_MB` is at most 5120
//!   (5 GiB, the largest single S3 PUT).
//! - **Keys.** `KOMPASS_PSEUDONYM_KEY` and `KOMPASS_SERVER_SECRET` are HMAC-SHA256 keys used
//!   as the bytes of the string; each must be at least 32 bytes (RFC 2104: no shorter than the
//!   hash output), e.g. `openssl rand -hex 32`.
//! - **Overrides** (such as `--data-dir`): insert them into the map before parsing, so they
//!   are validated like everything else.

pub mod dotenv;
mod problem;
mod secret;
mod values;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::BuildHasher;

use serde::Serialize;

use crate::quota::{ByteSize, GIB, Limits, MIB};

pub use dotenv::{DotenvError, DotenvProblem, DotenvProblemKind, merge_env, parse_dotenv};
pub use problem::{ConfigErrors, ConfigProblem, ProblemKind};
pub use secret::{REDACTED, Secret};
pub use values::{Endpoint, Scheme};

/// The environment variable names (a contract: the spec's names plus ours).
pub mod vars {
    /// `true` to store in S3 (default `false`: local storage).
    pub const S3_STORAGE_ENABLED: &str = "S3_STORAGE_ENABLED";
    /// The bucket; required with S3.
    pub const AWS_S3_BUCKET: &str = "AWS_S3_BUCKET";
    /// The access key id; required with S3.
    pub const AWS_ACCESS_KEY_ID: &str = "AWS_ACCESS_KEY_ID";
    /// The secret access key (secret); required with S3.
    pub const AWS_SECRET_ACCESS_KEY: &str = "AWS_SECRET_ACCESS_KEY";
    /// A session token for temporary credentials (secret, optional).
    pub const AWS_SESSION_TOKEN: &str = "AWS_SESSION_TOKEN";
    /// The region (default `us-east-1`).
    pub const AWS_REGION: &str = "AWS_REGION";
    /// An S3-compatible endpoint, `http(s)://host[:port]` (optional; path-style addressing).
    pub const AWS_ENDPOINT_URL: &str = "AWS_ENDPOINT_URL";
    /// Per-file limit in MiB (default 50).
    pub const S3_MAX_FILE_SIZE_MB: &str = "S3_MAX_FILE_SIZE_MB";
    /// Per-user quota in MiB (default 100).
    pub const S3_MAX_USER_STORAGE_MB: &str = "S3_MAX_USER_STORAGE_MB";
    /// Cleanup threshold in percent, 1..=100 (default 70).
    pub const S3_CLEANUP_THRESHOLD_PERCENT: &str = "S3_CLEANUP_THRESHOLD_PERCENT";
    /// Whether FIFO cleanup runs automatically (default `true`).
    pub const S3_AUTO_CLEANUP_ENABLED: &str = "S3_AUTO_CLEANUP_ENABLED";
    /// Files kept per user and data type by cleanup (default 5).
    pub const S3_MIN_FILES_TO_KEEP: &str = "S3_MIN_FILES_TO_KEEP";
    /// Bucket limit in GiB (default 4.5).
    pub const S3_MAX_TOTAL_STORAGE_GB: &str = "S3_MAX_TOTAL_STORAGE_GB";
    /// Local storage directory (default `saved_routes`).
    pub const DATA_DIRECTORY: &str = "DATA_DIRECTORY";
    /// HMAC key for user pseudonyms (secret; needed to save rider data).
    pub const KOMPASS_PSEUDONYM_KEY: &str = "KOMPASS_PSEUDONYM_KEY";
    /// Id of the pseudonym key, stored with pseudonyms so keys can rotate (default `k1`).
    pub const KOMPASS_PSEUDONYM_KEY_ID: &str = "KOMPASS_PSEUDONYM_KEY_ID";
    /// Key that signs API tokens for `kompass serve` (secret; optional).
    pub const KOMPASS_SERVER_SECRET: &str = "KOMPASS_SERVER_SECRET";

    /// Every variable read, in documented order.
    pub const ALL: [&str; 17] = [
        S3_STORAGE_ENABLED,
        AWS_S3_BUCKET,
        AWS_ACCESS_KEY_ID,
        AWS_SECRET_ACCESS_KEY,
        AWS_SESSION_TOKEN,
        AWS_REGION,
        AWS_ENDPOINT_URL,
        S3_MAX_FILE_SIZE_MB,
        S3_MAX_USER_STORAGE_MB,
        S3_CLEANUP_THRESHOLD_PERCENT,
        S3_AUTO_CLEANUP_ENABLED,
        S3_MIN_FILES_TO_KEEP,
        S3_MAX_TOTAL_STORAGE_GB,
        DATA_DIRECTORY,
        KOMPASS_PSEUDONYM_KEY,
        KOMPASS_PSEUDONYM_KEY_ID,
        KOMPASS_SERVER_SECRET,
    ];
}

use vars::*;

/// The monthly request budget's variables (read beside [`vars::ALL`]).
pub mod budget_vars {
    /// `off` for a paid account: requests are counted but never refused (default `on`).
    pub const KOMPASS_REQUEST_BUDGET: &str = "KOMPASS_REQUEST_BUDGET";
    /// PUT-class requests (PUT, COPY, POST, LIST) a month (default 2000, the free tier).
    pub const KOMPASS_PUT_BUDGET: &str = "KOMPASS_PUT_BUDGET";
    /// GET-class requests (GET, HEAD) a month (default 20000, the free tier).
    pub const KOMPASS_GET_BUDGET: &str = "KOMPASS_GET_BUDGET";
    /// Every budget variable.
    pub const ALL: [&str; 3] = [KOMPASS_REQUEST_BUDGET, KOMPASS_PUT_BUDGET, KOMPASS_GET_BUDGET];
}

/// Default region.
pub const DEFAULT_REGION: &str = "us-east-1";
/// Default local storage directory.
pub const DEFAULT_DATA_DIRECTORY: &str = "saved_routes";
/// Default pseudonym key id.
pub const DEFAULT_PSEUDONYM_KEY_ID: &str = "k1";
/// Default for `S3_AUTO_CLEANUP_ENABLED`.
pub const DEFAULT_AUTO_CLEANUP: bool = true;
/// Default for `S3_MIN_FILES_TO_KEEP`.
pub const DEFAULT_MIN_FILES_TO_KEEP: u32 = 5;
/// Shortest accepted HMAC key (pseudonym key, server secret), in bytes.
pub const MIN_KEY_BYTES: usize = 32;
/// Largest accepted `S3_MAX_FILE_SIZE_MB`: 5 GiB, the largest single S3 PUT.
pub const MAX_FILE_SIZE_MB: f64 = 5120.0;
/// Largest accepted `S3_MAX_USER_STORAGE_MB` (1 PiB; a guard against typos and overflow).
const MAX_USER_STORAGE_MB: f64 = 1_073_741_824.0;
/// Largest accepted `S3_MAX_TOTAL_STORAGE_GB` (1 PiB).
const MAX_TOTAL_STORAGE_GB: f64 = 1_048_576.0;
/// Longest accepted pseudonym key id.
const MAX_KEY_ID_LEN: usize = 32;

/// A key→value source of environment variables.
pub trait EnvSource {
    /// The value of `name`, if present.
    fn var(&self, name: &str) -> Option<&str>;
}

impl EnvSource for BTreeMap<String, String> {
    fn var(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

impl<S: BuildHasher> EnvSource for HashMap<String, String, S> {
    fn var(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

/// How requests name the bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Addressing {
    /// `https://endpoint/bucket/key`: used with `AWS_ENDPOINT_URL` (S3-compatible servers).
    PathStyle,
    /// `https://bucket.s3.region.amazonaws.com/key`: AWS itself.
    VirtualHosted,
}

/// S3 credentials. The secret key and session token are [`Secret`]s.
#[derive(Debug, Clone)]
pub struct S3Credentials {
    /// `AWS_ACCESS_KEY_ID`.
    pub access_key_id: String,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: Secret,
    /// `AWS_SESSION_TOKEN`, for temporary credentials.
    pub session_token: Option<Secret>,
}

/// Everything needed to reach the bucket; present only when S3 is enabled.
#[derive(Debug, Clone)]
pub struct S3Config {
    /// `AWS_S3_BUCKET`, a valid bucket name.
    pub bucket: String,
    /// `AWS_REGION`.
    pub region: String,
    /// `AWS_ENDPOINT_URL`, for S3-compatible servers.
    pub endpoint: Option<Endpoint>,
    /// The credentials.
    pub credentials: S3Credentials,
}

impl S3Config {
    /// The bucket's address, for requests and signatures.
    pub fn target(&self) -> Result<crate::presign::S3Target, crate::presign::TargetError> {
        crate::presign::S3Target::new(
            self.endpoint.as_ref().map(|e| e.url()),
            &self.region,
            &self.bucket,
        )
    }

    /// The credentials in the form the signer takes.
    pub fn signing_credentials(&self) -> crate::presign::Credentials {
        let c = &self.credentials;
        let creds =
            crate::presign::Credentials::new(&c.access_key_id, c.secret_access_key.expose());
        match &c.session_token {
            Some(t) => creds.with_session_token(t.expose()),
            None => creds,
        }
    }

    /// Path-style with a custom endpoint, virtual-hosted on AWS.
    pub fn addressing(&self) -> Addressing {
        if self.endpoint.is_some() { Addressing::PathStyle } else { Addressing::VirtualHosted }
    }
}

/// The pseudonym key with its id, for keyed user pseudonyms.
#[derive(Debug, Clone, Copy)]
pub struct PseudonymKey<'a> {
    /// The key id (`KOMPASS_PSEUDONYM_KEY_ID`), recorded with each pseudonym.
    pub id: &'a str,
    /// The HMAC key (`KOMPASS_PSEUDONYM_KEY`).
    pub key: &'a Secret,
}

/// A secret that an operation needs is not configured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{variable} is not set: {needed_for}. Set it to at least {MIN_KEY_BYTES} random bytes (e.g. the output of `openssl rand -hex 32`) in the environment or in .env"
)]
pub struct MissingSecret {
    /// The variable to set.
    pub variable: &'static str,
    /// What cannot be done without it.
    pub needed_for: &'static str,
}

/// A validated configuration.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// S3 settings; `None` when S3 storage is disabled (local storage only).
    pub s3: Option<S3Config>,
    /// File, user and bucket limits in bytes, and the cleanup threshold.
    pub limits: Limits,
    /// `S3_AUTO_CLEANUP_ENABLED`.
    pub auto_cleanup: bool,
    /// `S3_MIN_FILES_TO_KEEP`, per user and data type.
    pub min_files_to_keep: u32,
    /// `DATA_DIRECTORY`.
    pub data_directory: String,
    /// `KOMPASS_PSEUDONYM_KEY_ID`.
    pub pseudonym_key_id: String,
    pseudonym_key: Option<Secret>,
    server_secret: Option<Secret>,
    /// The monthly request budget admission enforces (`KOMPASS_PUT_BUDGET`,
    /// `KOMPASS_GET_BUDGET`); `None` when `KOMPASS_REQUEST_BUDGET=off` (a paid account).
    pub request_budget: Option<crate::quota::RequestBudget>,
}

/// Collects problems while parsing.
#[derive(Default)]
struct Problems(Vec<ConfigProblem>);

impl Problems {
    fn push(
        &mut self,
        variable: &'static str,
        value: Option<&str>,
        kind: ProblemKind,
        fix: impl Into<String>,
    ) {
        self.0.push(ConfigProblem {
            variable,
            value: value.map(str::to_owned),
            kind,
            fix: fix.into(),
        });
    }
}

/// Reads trimmed, non-empty values.
struct Reader<F> {
    lookup: F,
}

impl<F: Fn(&str) -> Option<String>> Reader<F> {
    fn get(&self, name: &str) -> Option<String> {
        (self.lookup)(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
    }
}

impl Config {
    /// Parses a map of environment variables (e.g. [`merge_env`] of `.env` and the process
    /// environment), reporting every problem at once.
    pub fn from_env_map<E: EnvSource + ?Sized>(env: &E) -> Result<Config, ConfigErrors> {
        Config::from_lookup(|name| env.var(name).map(str::to_owned))
    }

    /// Parses from a lookup function (e.g. `|k| std::env::var(k).ok()` on the native side).
    pub fn from_lookup<F: Fn(&str) -> Option<String>>(lookup: F) -> Result<Config, ConfigErrors> {
        let r = Reader { lookup };
        let mut p = Problems::default();

        let enabled = match r.get(S3_STORAGE_ENABLED) {
            None => Some(false),
            Some(v) => match values::parse_bool(&v) {
                Ok(b) => Some(b),
                Err(kind) => {
                    p.push(
                        S3_STORAGE_ENABLED,
                        Some(&v),
                        kind,
                        "set it to true (store in S3) or false (store locally); yes/no and 1/0 work too",
                    );
                    None
                }
            },
        };
        let s3 = match enabled {
            Some(false) => None,
            Some(true) => read_s3(&r, &mut p, true),
            None => read_s3(&r, &mut p, false),
        };

        let max_file_bytes = read_size(
            &r,
            &mut p,
            S3_MAX_FILE_SIZE_MB,
            MIB,
            MAX_FILE_SIZE_MB,
            crate::quota::DEFAULT_MAX_FILE_BYTES,
            "set it to the largest file to accept, in MiB (e.g. 50 or 0.5); at most 5120, the largest single S3 upload",
        );
        let max_user_bytes = read_size(
            &r,
            &mut p,
            S3_MAX_USER_STORAGE_MB,
            MIB,
            MAX_USER_STORAGE_MB,
            crate::quota::DEFAULT_MAX_USER_BYTES,
            "set it to the storage quota per user, in MiB (e.g. 100)",
        );
        let max_bucket_bytes = read_size(
            &r,
            &mut p,
            S3_MAX_TOTAL_STORAGE_GB,
            GIB,
            MAX_TOTAL_STORAGE_GB,
            crate::quota::DEFAULT_MAX_BUCKET_BYTES,
            "set it to the bucket limit, in GiB (e.g. 4.5, 90% of the 5 GB free tier)",
        );
        let threshold = match r.get(S3_CLEANUP_THRESHOLD_PERCENT) {
            None => crate::quota::DEFAULT_CLEANUP_THRESHOLD_PERCENT,
            Some(v) => values::parse_whole(&v, 1, 100).map(|n| n as u8).unwrap_or_else(|kind| {
                p.push(
                    S3_CLEANUP_THRESHOLD_PERCENT,
                    Some(&v),
                    kind,
                    "set it to the usage percentage that starts cleanup, a whole number from 1 to 100 (e.g. 70)",
                );
                crate::quota::DEFAULT_CLEANUP_THRESHOLD_PERCENT
            }),
        };
        let auto_cleanup = match r.get(S3_AUTO_CLEANUP_ENABLED) {
            None => DEFAULT_AUTO_CLEANUP,
            Some(v) => values::parse_bool(&v).unwrap_or_else(|kind| {
                p.push(
                    S3_AUTO_CLEANUP_ENABLED,
                    Some(&v),
                    kind,
                    "set it to true or false (yes/no and 1/0 work too)",
                );
                DEFAULT_AUTO_CLEANUP
            }),
        };
        let min_files_to_keep = match r.get(S3_MIN_FILES_TO_KEEP) {
            None => DEFAULT_MIN_FILES_TO_KEEP,
            Some(v) => values::parse_whole(&v, 0, u64::from(u32::MAX)).map(|n| n as u32).unwrap_or_else(|kind| {
                p.push(
                    S3_MIN_FILES_TO_KEEP,
                    Some(&v),
                    kind,
                    "set it to how many files cleanup keeps per user and data type, a whole number (e.g. 5)",
                );
                DEFAULT_MIN_FILES_TO_KEEP
            }),
        };

        let data_directory = match r.get(DATA_DIRECTORY) {
            None => DEFAULT_DATA_DIRECTORY.to_string(),
            Some(v) if v.chars().any(char::is_control) => {
                p.push(
                    DATA_DIRECTORY,
                    Some(&v),
                    ProblemKind::Malformed { reason: "it contains control characters".into() },
                    "set it to a directory path without control characters (e.g. saved_routes)",
                );
                v
            }
            Some(v) => v,
        };

        let pseudonym_key = read_key(&r, &mut p, KOMPASS_PSEUDONYM_KEY);
        let pseudonym_key_id = match r.get(KOMPASS_PSEUDONYM_KEY_ID) {
            None => DEFAULT_PSEUDONYM_KEY_ID.to_string(),
            Some(v) => {
                let ok = v.len() <= MAX_KEY_ID_LEN
                    && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                if !ok {
                    p.push(
                        KOMPASS_PSEUDONYM_KEY_ID,
                        Some(&v),
                        ProblemKind::Malformed {
                            reason: format!("key ids are 1 to {MAX_KEY_ID_LEN} letters, digits, '-' or '_'"),
                        },
                        "set it to a short name for the current key, e.g. k1, and change it when the key changes",
                    );
                }
                v
            }
        };
        let server_secret = read_key(&r, &mut p, KOMPASS_SERVER_SECRET);
        let request_budget = read_budget(&r, &mut p);

        if !p.0.is_empty() {
            return Err(ConfigErrors { problems: sort_documented(p.0) });
        }
        Ok(Config {
            s3,
            limits: Limits {
                max_file_bytes,
                max_user_bytes,
                max_bucket_bytes,
                cleanup_threshold_percent: threshold,
            },
            auto_cleanup,
            min_files_to_keep,
            data_directory,
            pseudonym_key_id,
            pseudonym_key,
            server_secret,
            request_budget,
        })
    }

    /// Whether S3 storage is enabled (and fully configured).
    pub fn s3_enabled(&self) -> bool {
        self.s3.is_some()
    }

    /// The cleanup threshold in percent.
    pub fn cleanup_threshold_percent(&self) -> u8 {
        self.limits.cleanup_threshold_percent
    }

    /// The key for user pseudonyms; saving rider data must fail with this error without it.
    pub fn pseudonym_key(&self) -> Result<PseudonymKey<'_>, MissingSecret> {
        match &self.pseudonym_key {
            Some(key) => Ok(PseudonymKey { id: &self.pseudonym_key_id, key }),
            None => Err(MissingSecret {
                variable: KOMPASS_PSEUDONYM_KEY,
                needed_for: "rider data cannot be saved without the key that pseudonymises athlete ids (a plain hash of a sequential id is reversible)",
            }),
        }
    }

    /// The key that signs API tokens; `kompass serve` and `kompass token` need it.
    pub fn server_secret(&self) -> Result<&Secret, MissingSecret> {
        self.server_secret.as_ref().ok_or(MissingSecret {
            variable: KOMPASS_SERVER_SECRET,
            needed_for: "API tokens for `kompass serve` and the edge presigner cannot be signed or checked without it",
        })
    }

    /// The configuration with secrets shown only as set/unset, for `kompass config`.
    pub fn redacted_view(&self) -> RedactedConfig {
        let s3 = self.s3.as_ref();
        RedactedConfig {
            s3_storage_enabled: s3.is_some(),
            bucket: s3.map(|s| s.bucket.clone()),
            region: s3.map(|s| s.region.clone()),
            endpoint_url: s3.and_then(|s| s.endpoint.as_ref().map(Endpoint::url)),
            addressing: s3.map(S3Config::addressing),
            access_key_id: s3.map(|s| mask_access_key_id(&s.credentials.access_key_id)),
            secret_access_key: SecretState::of(s3.map(|s| &s.credentials.secret_access_key)),
            session_token: SecretState::of(s3.and_then(|s| s.credentials.session_token.as_ref())),
            max_file_size_bytes: self.limits.max_file_bytes,
            max_user_storage_bytes: self.limits.max_user_bytes,
            max_total_storage_bytes: self.limits.max_bucket_bytes,
            cleanup_threshold_percent: self.limits.cleanup_threshold_percent,
            auto_cleanup_enabled: self.auto_cleanup,
            min_files_to_keep: self.min_files_to_keep,
            data_directory: self.data_directory.clone(),
            pseudonym_key: SecretState::of(self.pseudonym_key.as_ref()),
            pseudonym_key_id: self.pseudonym_key_id.clone(),
            server_secret: SecretState::of(self.server_secret.as_ref()),
        }
    }
}

impl fmt::Display for Config {
    /// The redacted view as text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.redacted_view(), f)
    }
}

/// Names among `names` that look like ours (`S3_…`, `KOMPASS_…`) but are not read: likely
/// typos, worth a warning in `kompass config`.
pub fn unrecognized_variables<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    names
        .into_iter()
        .filter(|n| {
            (n.starts_with("S3_") || n.starts_with("KOMPASS_"))
                && !vars::ALL.contains(n)
                && !budget_vars::ALL.contains(n)
        })
        .collect()
}

/// The request budget: the free tier's unless changed or switched off.
fn read_budget<F: Fn(&str) -> Option<String>>(
    r: &Reader<F>,
    p: &mut Problems,
) -> Option<crate::quota::RequestBudget> {
    use budget_vars::*;
    let free = crate::quota::RequestBudget::FREE_TIER;
    let on = match r.get(KOMPASS_REQUEST_BUDGET) {
        None => true,
        Some(v) if v.eq_ignore_ascii_case("off") => false,
        Some(v) if v.eq_ignore_ascii_case("on") => true,
        Some(v) => values::parse_bool(&v).unwrap_or_else(|kind| {
            p.push(
                KOMPASS_REQUEST_BUDGET,
                Some(&v),
                kind,
                "set it to off for a paid account (requests are counted, never refused) or on (the default)",
            );
            true
        }),
    };
    let mut count = |name: &'static str, default: u64| {
        match r.get(name) {
        None => default,
        Some(v) => values::parse_whole(&v, 0, u64::MAX).unwrap_or_else(|kind| {
            p.push(
                name,
                Some(&v),
                kind,
                "set it to a whole number of requests a month (the free tier: 2000 PUT-class, 20000 GET-class)",
            );
            default
        }),
    }
    };
    let budget = crate::quota::RequestBudget {
        put_class: count(KOMPASS_PUT_BUDGET, free.put_class),
        get_class: count(KOMPASS_GET_BUDGET, free.get_class),
    };
    on.then_some(budget)
}

fn read_s3<F: Fn(&str) -> Option<String>>(
    r: &Reader<F>,
    p: &mut Problems,
    required: bool,
) -> Option<S3Config> {
    const BECAUSE: &str = "S3_STORAGE_ENABLED is true";
    let missing = |p: &mut Problems, var: &'static str, fix: &str| {
        if required {
            p.push(
                var,
                None,
                ProblemKind::Missing { required_because: BECAUSE },
                format!("{fix}, or set S3_STORAGE_ENABLED=false to store locally"),
            );
        }
    };

    let bucket = match r.get(AWS_S3_BUCKET) {
        None => {
            missing(p, AWS_S3_BUCKET, "set it to the name of the bucket");
            None
        }
        Some(b) => match values::validate_bucket(&b) {
            Ok(()) => Some(b),
            Err(reason) => {
                p.push(
                    AWS_S3_BUCKET,
                    Some(&b),
                    ProblemKind::Malformed { reason },
                    "set it to an existing bucket's name (3-63 lowercase letters, digits, '.' and '-')",
                );
                None
            }
        },
    };
    let access_key_id = match r.get(AWS_ACCESS_KEY_ID) {
        None => {
            missing(p, AWS_ACCESS_KEY_ID, "set it to the access key id of the credentials");
            None
        }
        Some(k) if k.chars().any(|c| c.is_whitespace() || c.is_control()) => {
            // Not echoed: the redacted view masks the id too.
            p.push(
                AWS_ACCESS_KEY_ID,
                None,
                ProblemKind::Malformed {
                    reason: "it contains spaces or control characters".into(),
                },
                "copy the access key id again, without spaces",
            );
            None
        }
        Some(k) => Some(k),
    };
    let secret_access_key = match r.get(AWS_SECRET_ACCESS_KEY) {
        None => {
            missing(p, AWS_SECRET_ACCESS_KEY, "set it to the secret access key of the credentials");
            None
        }
        Some(s) => Some(Secret::new(s)),
    };
    let session_token = r.get(AWS_SESSION_TOKEN).map(Secret::new);
    let region = match r.get(AWS_REGION) {
        None => Some(DEFAULT_REGION.to_string()),
        Some(reg) => match values::validate_region(&reg) {
            Ok(()) => Some(reg),
            Err(reason) => {
                p.push(
                    AWS_REGION,
                    Some(&reg),
                    ProblemKind::Malformed { reason },
                    "set it to the bucket's region, e.g. us-east-1, or leave it unset for us-east-1",
                );
                None
            }
        },
    };
    let endpoint = match r.get(AWS_ENDPOINT_URL) {
        None => Some(None),
        Some(e) => match Endpoint::parse(&e) {
            Ok(ep) => Some(Some(ep)),
            Err(reason) => {
                p.push(
                    AWS_ENDPOINT_URL,
                    Some(&e),
                    ProblemKind::Malformed { reason },
                    "set it to the S3-compatible server as http(s)://host[:port], e.g. http://127.0.0.1:8333, or unset it for AWS",
                );
                None
            }
        },
    };

    Some(S3Config {
        bucket: bucket?,
        region: region?,
        endpoint: endpoint?,
        credentials: S3Credentials {
            access_key_id: access_key_id?,
            secret_access_key: secret_access_key?,
            session_token,
        },
    })
    .filter(|_| required)
}

fn read_size<F: Fn(&str) -> Option<String>>(
    r: &Reader<F>,
    p: &mut Problems,
    var: &'static str,
    unit: u64,
    max_units: f64,
    default: u64,
    fix: &str,
) -> u64 {
    match r.get(var) {
        None => default,
        Some(v) => values::parse_size(&v, unit, max_units).unwrap_or_else(|kind| {
            p.push(var, Some(&v), kind, fix);
            default
        }),
    }
}

/// Reads an optional HMAC key of at least [`MIN_KEY_BYTES`]; its value is never echoed.
fn read_key<F: Fn(&str) -> Option<String>>(
    r: &Reader<F>,
    p: &mut Problems,
    var: &'static str,
) -> Option<Secret> {
    let key = Secret::new(r.get(var)?);
    if key.len() < MIN_KEY_BYTES {
        p.push(
            var,
            None,
            ProblemKind::TooShort { min: MIN_KEY_BYTES, actual: key.len() },
            format!("set it to at least {MIN_KEY_BYTES} random bytes, e.g. the output of `openssl rand -hex 32`"),
        );
        return None;
    }
    Some(key)
}

/// Orders problems as the variables are documented (stable within a variable).
fn sort_documented(mut problems: Vec<ConfigProblem>) -> Vec<ConfigProblem> {
    problems.sort_by_key(|p| vars::ALL.iter().position(|v| *v == p.variable).unwrap_or(usize::MAX));
    problems
}

/// Shows the last four characters of a long access key id, as the AWS CLI does; short ids
/// (as on local test servers) are hidden entirely.
fn mask_access_key_id(id: &str) -> String {
    let n = id.chars().count();
    if n >= 16 {
        let tail: String = id.chars().skip(n - 4).collect();
        format!("****{tail}")
    } else {
        "****".to_string()
    }
}

/// Whether a secret is configured; all that the redacted view reveals about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SecretState {
    /// Configured.
    Set,
    /// Not configured.
    Unset,
}

impl SecretState {
    fn of(secret: Option<&Secret>) -> Self {
        if secret.is_some() { SecretState::Set } else { SecretState::Unset }
    }
}

impl fmt::Display for SecretState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SecretState::Set => "set",
            SecretState::Unset => "unset",
        })
    }
}

/// The configuration safe to print or serialize (`kompass config --json`): secrets appear only
/// as `"set"` / `"unset"`, the access key id masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RedactedConfig {
    /// Whether S3 storage is enabled.
    pub s3_storage_enabled: bool,
    /// The bucket (S3 only).
    pub bucket: Option<String>,
    /// The region (S3 only).
    pub region: Option<String>,
    /// The custom endpoint, if any (S3 only).
    pub endpoint_url: Option<String>,
    /// `path_style` or `virtual_hosted` (S3 only).
    pub addressing: Option<Addressing>,
    /// The access key id, masked (S3 only).
    pub access_key_id: Option<String>,
    /// Whether the secret access key is set.
    pub secret_access_key: SecretState,
    /// Whether a session token is set.
    pub session_token: SecretState,
    /// Per-file limit in bytes.
    pub max_file_size_bytes: u64,
    /// Per-user quota in bytes.
    pub max_user_storage_bytes: u64,
    /// Bucket limit in bytes.
    pub max_total_storage_bytes: u64,
    /// Cleanup threshold in percent.
    pub cleanup_threshold_percent: u8,
    /// Whether cleanup runs automatically.
    pub auto_cleanup_enabled: bool,
    /// Files kept per user and data type.
    pub min_files_to_keep: u32,
    /// Local storage directory.
    pub data_directory: String,
    /// Whether the pseudonym key is set.
    pub pseudonym_key: SecretState,
    /// The pseudonym key id.
    pub pseudonym_key_id: String,
    /// Whether the server secret is set.
    pub server_secret: SecretState,
}

impl fmt::Display for RedactedConfig {
    /// One `VARIABLE  value` line per setting.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".to_string());
        let size = |b: u64| format!("{} ({b} bytes)", ByteSize(b));
        let addressing = match self.addressing {
            Some(Addressing::PathStyle) => " (path-style addressing)",
            _ => "",
        };
        let rows: [(&str, String); 17] = [
            (S3_STORAGE_ENABLED, self.s3_storage_enabled.to_string()),
            (AWS_S3_BUCKET, or_dash(&self.bucket)),
            (AWS_ACCESS_KEY_ID, or_dash(&self.access_key_id)),
            (AWS_SECRET_ACCESS_KEY, self.secret_access_key.to_string()),
            (AWS_SESSION_TOKEN, self.session_token.to_string()),
            (AWS_REGION, or_dash(&self.region)),
            (AWS_ENDPOINT_URL, format!("{}{addressing}", or_dash(&self.endpoint_url))),
            (S3_MAX_FILE_SIZE_MB, size(self.max_file_size_bytes)),
            (S3_MAX_USER_STORAGE_MB, size(self.max_user_storage_bytes)),
            (S3_CLEANUP_THRESHOLD_PERCENT, format!("{}%", self.cleanup_threshold_percent)),
            (S3_AUTO_CLEANUP_ENABLED, self.auto_cleanup_enabled.to_string()),
            (S3_MIN_FILES_TO_KEEP, self.min_files_to_keep.to_string()),
            (S3_MAX_TOTAL_STORAGE_GB, size(self.max_total_storage_bytes)),
            (DATA_DIRECTORY, self.data_directory.clone()),
            (KOMPASS_PSEUDONYM_KEY, self.pseudonym_key.to_string()),
            (KOMPASS_PSEUDONYM_KEY_ID, self.pseudonym_key_id.clone()),
            (KOMPASS_SERVER_SECRET, self.server_secret.to_string()),
        ];
        for (i, (name, value)) in rows.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{name:<30}{value}")?;
        }
        Ok(())
    }
}
