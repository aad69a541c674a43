//! Config from an environment map: defaults, bad values, problems reported together, redaction.

use std::collections::{BTreeMap, HashMap};

use kompass_core::config::{
    Addressing, Config, ConfigErrors, DotenvError, ProblemKind, REDACTED, Scheme, SecretState,
    merge_env, parse_dotenv, unrecognized_variables, vars,
};
use kompass_core::quota::{GIB, Limits, MIB};

const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const SESSION_TOKEN: &str = "FwoGZXIvYXdzEXAMPLEsessionTOKENvalue";
const PSEUDONYM_KEY: &str = "pseudonym-key-0123456789abcdef0123456789";
const SERVER_SECRET: &str = "server-secret-fedcba9876543210fedcba9876";

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn s3_env() -> BTreeMap<String, String> {
    env(&[
        (vars::S3_STORAGE_ENABLED, "true"),
        (vars::AWS_S3_BUCKET, "kompass-data"),
        (vars::AWS_ACCESS_KEY_ID, "AKIAIOSFODNN7EXAMPLE"),
        (vars::AWS_SECRET_ACCESS_KEY, SECRET_KEY),
    ])
}

fn ok(map: &BTreeMap<String, String>) -> Config {
    Config::from_env_map(map).unwrap_or_else(|e| panic!("{e}"))
}

fn errors(map: &BTreeMap<String, String>) -> ConfigErrors {
    match Config::from_env_map(map) {
        Ok(c) => panic!("accepted: {c:?}"),
        Err(e) => e,
    }
}

/// The single problem reported for `var` when it is set to `value` (on top of `base`).
fn problem_for(base: &BTreeMap<String, String>, var: &str, value: &str) -> ProblemKind {
    let mut map = base.clone();
    map.insert(var.to_string(), value.to_string());
    let errs = errors(&map);
    assert_eq!(errs.problems.len(), 1, "{var}={value:?}: {errs}");
    assert_eq!(errs.problems[0].variable, var);
    errs.problems[0].kind.clone()
}

#[test]
fn empty_environment_gives_every_default() {
    let c = ok(&BTreeMap::new());
    assert!(c.s3.is_none());
    assert!(!c.s3_enabled());
    assert_eq!(c.limits.max_file_bytes, 50 * 1024 * 1024);
    assert_eq!(c.limits.max_user_bytes, 100 * 1024 * 1024);
    assert_eq!(c.limits.max_bucket_bytes, 4_831_838_208); // 4.5 × 1024³
    assert_eq!(c.limits.cleanup_threshold_percent, 70);
    assert_eq!(c.cleanup_threshold_percent(), 70);
    assert_eq!(c.limits, Limits::default());
    assert!(c.auto_cleanup);
    assert_eq!(c.min_files_to_keep, 5);
    assert_eq!(c.data_directory, "saved_routes");
    assert_eq!(c.pseudonym_key_id, "k1");
    assert!(c.pseudonym_key().is_err());
    assert!(c.server_secret().is_err());
}

#[test]
fn s3_defaults_region_and_virtual_hosted_addressing() {
    let c = ok(&s3_env());
    let s3 = c.s3.as_ref().expect("s3 enabled");
    assert_eq!(s3.bucket, "kompass-data");
    assert_eq!(s3.region, "us-east-1");
    assert!(s3.endpoint.is_none());
    assert_eq!(s3.addressing(), Addressing::VirtualHosted);
    assert_eq!(s3.credentials.access_key_id, "AKIAIOSFODNN7EXAMPLE");
    assert_eq!(s3.credentials.secret_access_key.expose(), SECRET_KEY);
    assert!(s3.credentials.session_token.is_none());
}

#[test]
fn every_variable_is_read() {
    let mut map = s3_env();
    map.extend(env(&[
        (vars::AWS_SESSION_TOKEN, SESSION_TOKEN),
        (vars::AWS_REGION, "eu-central-1"),
        (vars::AWS_ENDPOINT_URL, "http://127.0.0.1:8333"),
        (vars::S3_MAX_FILE_SIZE_MB, "0.5"),
        (vars::S3_MAX_USER_STORAGE_MB, "250"),
        (vars::S3_CLEANUP_THRESHOLD_PERCENT, "60"),
        (vars::S3_AUTO_CLEANUP_ENABLED, "no"),
        (vars::S3_MIN_FILES_TO_KEEP, "0"),
        (vars::S3_MAX_TOTAL_STORAGE_GB, "1.25"),
        (vars::DATA_DIRECTORY, "/var/lib/kompass"),
        (vars::KOMPASS_PSEUDONYM_KEY, PSEUDONYM_KEY),
        (vars::KOMPASS_PSEUDONYM_KEY_ID, "2025-rotation_b"),
        (vars::KOMPASS_SERVER_SECRET, SERVER_SECRET),
    ]));
    assert_eq!(map.len(), vars::ALL.len());
    let c = ok(&map);
    let s3 = c.s3.as_ref().unwrap();
    assert_eq!(s3.region, "eu-central-1");
    let ep = s3.endpoint.as_ref().unwrap();
    assert_eq!((ep.scheme(), ep.host(), ep.port()), (Scheme::Http, "127.0.0.1", Some(8333)));
    assert_eq!(s3.addressing(), Addressing::PathStyle);
    assert_eq!(s3.credentials.session_token.as_ref().unwrap().expose(), SESSION_TOKEN);
    assert_eq!(c.limits.max_file_bytes, MIB / 2);
    assert_eq!(c.limits.max_user_bytes, 250 * MIB);
    assert_eq!(c.limits.cleanup_threshold_percent, 60);
    assert!(!c.auto_cleanup);
    assert_eq!(c.min_files_to_keep, 0);
    assert_eq!(c.limits.max_bucket_bytes, GIB + GIB / 4);
    assert_eq!(c.data_directory, "/var/lib/kompass");
    let key = c.pseudonym_key().unwrap();
    assert_eq!(key.id, "2025-rotation_b");
    assert_eq!(key.key.expose(), PSEUDONYM_KEY);
    assert_eq!(c.server_secret().unwrap().expose(), SERVER_SECRET);
}

#[test]
fn booleans_accept_the_documented_spellings() {
    for (v, expected) in
        [("TRUE", true), ("Yes", true), ("1", true), ("False", false), ("NO", false), ("0", false)]
    {
        let mut map = s3_env();
        map.insert(vars::S3_STORAGE_ENABLED.into(), v.into());
        map.insert(vars::S3_AUTO_CLEANUP_ENABLED.into(), v.into());
        let c = ok(&map);
        assert_eq!(c.s3_enabled(), expected, "{v}");
        assert_eq!(c.auto_cleanup, expected, "{v}");
    }
}

#[test]
fn values_are_trimmed_and_empty_means_default() {
    let c = ok(&env(&[
        (vars::S3_STORAGE_ENABLED, ""),
        (vars::S3_MAX_FILE_SIZE_MB, "  20 \n"),
        (vars::AWS_REGION, "   "),
        (vars::DATA_DIRECTORY, ""),
        (vars::KOMPASS_PSEUDONYM_KEY, ""),
    ]));
    assert!(!c.s3_enabled());
    assert_eq!(c.limits.max_file_bytes, 20 * MIB);
    assert_eq!(c.data_directory, "saved_routes");
    assert!(c.pseudonym_key().is_err());
    let mut map = s3_env();
    map.insert(vars::AWS_REGION.into(), " ".into());
    assert_eq!(ok(&map).s3.unwrap().region, "us-east-1");
}

#[test]
fn s3_disabled_ignores_aws_variables_even_malformed_ones() {
    let c = ok(&env(&[
        (vars::S3_STORAGE_ENABLED, "false"),
        (vars::AWS_S3_BUCKET, "Not A Bucket"),
        (vars::AWS_ENDPOINT_URL, "nonsense"),
        (vars::AWS_REGION, "bad region"),
    ]));
    assert!(c.s3.is_none());
}

#[test]
fn s3_enabled_requires_bucket_and_both_keys_each_reported() {
    let errs = errors(&env(&[(vars::S3_STORAGE_ENABLED, "true")]));
    let vars_reported: Vec<_> = errs.problems.iter().map(|p| p.variable).collect();
    assert_eq!(
        vars_reported,
        [vars::AWS_S3_BUCKET, vars::AWS_ACCESS_KEY_ID, vars::AWS_SECRET_ACCESS_KEY]
    );
    for p in &errs.problems {
        assert!(matches!(p.kind, ProblemKind::Missing { .. }), "{p}");
        assert!(p.value.is_none());
        assert!(p.fix.contains("S3_STORAGE_ENABLED=false"), "{p}");
    }
    let msg = errs.to_string();
    assert!(msg.contains("AWS_S3_BUCKET is not set, and S3_STORAGE_ENABLED is true"), "{msg}");

    for missing in [vars::AWS_S3_BUCKET, vars::AWS_ACCESS_KEY_ID, vars::AWS_SECRET_ACCESS_KEY] {
        let mut map = s3_env();
        map.remove(missing);
        let errs = errors(&map);
        assert_eq!(errs.problems.len(), 1, "{errs}");
        assert_eq!(errs.problems[0].variable, missing);
    }
}

#[test]
fn invalid_switch_validates_present_aws_values_without_requiring_any() {
    let errs = errors(&env(&[
        (vars::S3_STORAGE_ENABLED, "ture"),
        (vars::AWS_ENDPOINT_URL, "localhost:9000"),
    ]));
    let reported: Vec<_> = errs.problems.iter().map(|p| p.variable).collect();
    assert_eq!(reported, [vars::S3_STORAGE_ENABLED, vars::AWS_ENDPOINT_URL]);
    assert_eq!(errs.problems[0].kind, ProblemKind::NotBool);
    assert_eq!(errs.problems[0].value.as_deref(), Some("ture"));
}

#[test]
fn bad_values_for_each_variable() {
    let base = s3_env();
    let not_bool = [(vars::S3_STORAGE_ENABLED, "enabled"), (vars::S3_AUTO_CLEANUP_ENABLED, "on")];
    for (var, v) in not_bool {
        assert_eq!(problem_for(&base, var, v), ProblemKind::NotBool, "{var}={v}");
    }
    for var in
        [vars::S3_MAX_FILE_SIZE_MB, vars::S3_MAX_USER_STORAGE_MB, vars::S3_MAX_TOTAL_STORAGE_GB]
    {
        for v in ["abc", "NaN", "inf", "1e3", "50MB"] {
            assert_eq!(problem_for(&base, var, v), ProblemKind::NotNumber, "{var}={v}");
        }
        for v in ["0", "-1", "-0.5", "0.0"] {
            assert_eq!(problem_for(&base, var, v), ProblemKind::NotPositive, "{var}={v}");
        }
    }
    assert!(matches!(
        problem_for(&base, vars::S3_MAX_FILE_SIZE_MB, "5121"),
        ProblemKind::OutOfRange { .. }
    ));
    assert!(matches!(
        problem_for(&base, vars::S3_MAX_TOTAL_STORAGE_GB, "99999999999"),
        ProblemKind::OutOfRange { .. }
    ));
    let pct = ProblemKind::OutOfRange { min: "1".into(), max: "100".into() };
    for v in ["0", "101", "-5", "1000"] {
        assert_eq!(problem_for(&base, vars::S3_CLEANUP_THRESHOLD_PERCENT, v), pct, "{v}");
    }
    assert_eq!(
        problem_for(&base, vars::S3_CLEANUP_THRESHOLD_PERCENT, "70.5"),
        ProblemKind::NotWholeNumber
    );
    assert_eq!(
        problem_for(&base, vars::S3_CLEANUP_THRESHOLD_PERCENT, "seventy"),
        ProblemKind::NotNumber
    );
    assert_eq!(problem_for(&base, vars::S3_MIN_FILES_TO_KEEP, "2.5"), ProblemKind::NotWholeNumber);
    assert!(matches!(
        problem_for(&base, vars::S3_MIN_FILES_TO_KEEP, "-1"),
        ProblemKind::OutOfRange { .. }
    ));
    assert!(matches!(
        problem_for(&base, vars::S3_MIN_FILES_TO_KEEP, "5000000000"),
        ProblemKind::OutOfRange { .. }
    ));
    assert_eq!(problem_for(&base, vars::S3_MIN_FILES_TO_KEEP, "five"), ProblemKind::NotNumber);
    for v in ["My_Bucket", "ab", "-bucket", "192.168.0.1"] {
        assert!(
            matches!(problem_for(&base, vars::AWS_S3_BUCKET, v), ProblemKind::Malformed { .. }),
            "{v}"
        );
    }
    assert!(matches!(
        problem_for(&base, vars::AWS_ACCESS_KEY_ID, "AKIA EXAMPLE"),
        ProblemKind::Malformed { .. }
    ));
    let mut map = base.clone();
    map.insert(vars::AWS_ACCESS_KEY_ID.into(), "AKIA EXAMPLE".into());
    let errs = errors(&map);
    assert!(errs.problems[0].value.is_none());
    assert!(!errs.to_string().contains("AKIA EXAMPLE"), "{errs}");
    assert!(matches!(
        problem_for(&base, vars::AWS_REGION, "us east 1"),
        ProblemKind::Malformed { .. }
    ));
    for v in
        ["localhost:9000", "ftp://x", "http://host/path", "http://u:p@host", "http://host:99999"]
    {
        assert!(
            matches!(problem_for(&base, vars::AWS_ENDPOINT_URL, v), ProblemKind::Malformed { .. }),
            "{v}"
        );
    }
    assert!(matches!(
        problem_for(&base, vars::DATA_DIRECTORY, "dir\u{0}x"),
        ProblemKind::Malformed { .. }
    ));
    for v in ["has space", "k:1", &"k".repeat(33)] {
        assert!(
            matches!(
                problem_for(&base, vars::KOMPASS_PSEUDONYM_KEY_ID, v),
                ProblemKind::Malformed { .. }
            ),
            "{v}"
        );
    }
    for var in [vars::KOMPASS_PSEUDONYM_KEY, vars::KOMPASS_SERVER_SECRET] {
        assert_eq!(
            problem_for(&base, var, "short-key"),
            ProblemKind::TooShort { min: 32, actual: 9 },
            "{var}"
        );
        let mut map = base.clone();
        map.insert(var.into(), "x".repeat(32));
        ok(&map);
    }
}

#[test]
fn bad_values_are_echoed_with_the_variable_and_a_fix() {
    let errs = errors(&env(&[(vars::S3_MAX_FILE_SIZE_MB, "fifty")]));
    let p = &errs.problems[0];
    assert_eq!(p.value.as_deref(), Some("fifty"));
    let msg = p.to_string();
    assert!(msg.starts_with("S3_MAX_FILE_SIZE_MB=\"fifty\" is not a number: "), "{msg}");
    assert!(msg.contains("MiB"), "{msg}");
}

#[test]
fn every_problem_is_reported_at_once_in_documented_order() {
    let map = env(&[
        (vars::KOMPASS_SERVER_SECRET, "tiny"),
        (vars::S3_STORAGE_ENABLED, "true"),
        (vars::AWS_ENDPOINT_URL, "ftp://nope"),
        (vars::S3_MAX_FILE_SIZE_MB, "-3"),
        (vars::S3_MAX_USER_STORAGE_MB, "lots"),
        (vars::S3_CLEANUP_THRESHOLD_PERCENT, "150"),
        (vars::S3_AUTO_CLEANUP_ENABLED, "maybe"),
        (vars::S3_MIN_FILES_TO_KEEP, "1.5"),
        (vars::S3_MAX_TOTAL_STORAGE_GB, "NaN"),
        (vars::KOMPASS_PSEUDONYM_KEY, "short"),
        (vars::KOMPASS_PSEUDONYM_KEY_ID, "bad id"),
    ]);
    let errs = errors(&map);
    let reported: Vec<_> = errs.problems.iter().map(|p| p.variable).collect();
    assert_eq!(
        reported,
        [
            vars::AWS_S3_BUCKET,
            vars::AWS_ACCESS_KEY_ID,
            vars::AWS_SECRET_ACCESS_KEY,
            vars::AWS_ENDPOINT_URL,
            vars::S3_MAX_FILE_SIZE_MB,
            vars::S3_MAX_USER_STORAGE_MB,
            vars::S3_CLEANUP_THRESHOLD_PERCENT,
            vars::S3_AUTO_CLEANUP_ENABLED,
            vars::S3_MIN_FILES_TO_KEEP,
            vars::S3_MAX_TOTAL_STORAGE_GB,
            vars::KOMPASS_PSEUDONYM_KEY,
            vars::KOMPASS_PSEUDONYM_KEY_ID,
            vars::KOMPASS_SERVER_SECRET,
        ]
    );
    let msg = errs.to_string();
    assert!(msg.starts_with("the configuration has 13 problems:"), "{msg}");
    assert_eq!(msg.lines().count(), 14);
    let json = serde_json::to_value(&errs).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 13);
    assert_eq!(json[4]["variable"], "S3_MAX_FILE_SIZE_MB");
    assert_eq!(json[4]["value"], "-3");
    assert_eq!(json[4]["kind"], "not_positive");
    assert!(json[4]["fix"].as_str().unwrap().contains("MiB"));
}

#[test]
fn missing_secrets_give_clear_errors() {
    let c = ok(&BTreeMap::new());
    let e = c.pseudonym_key().unwrap_err();
    assert_eq!(e.variable, "KOMPASS_PSEUDONYM_KEY");
    let msg = e.to_string();
    assert!(
        msg.starts_with("KOMPASS_PSEUDONYM_KEY is not set: rider data cannot be saved"),
        "{msg}"
    );
    assert!(msg.contains("openssl rand -hex 32"), "{msg}");
    let e = c.server_secret().unwrap_err();
    assert_eq!(e.variable, "KOMPASS_SERVER_SECRET");
    assert!(e.to_string().contains("kompass serve"));
}

/// A configuration holding every secret, and a ConfigErrors whose problems concern secrets.
fn with_all_secrets() -> (Config, ConfigErrors) {
    let mut map = s3_env();
    map.extend(env(&[
        (vars::AWS_SESSION_TOKEN, SESSION_TOKEN),
        (vars::KOMPASS_PSEUDONYM_KEY, PSEUDONYM_KEY),
        (vars::KOMPASS_SERVER_SECRET, SERVER_SECRET),
    ]));
    let config = ok(&map);
    let short = "tiny-secret-value";
    let mut bad = map.clone();
    bad.insert(vars::KOMPASS_PSEUDONYM_KEY.into(), short.into());
    bad.insert(vars::KOMPASS_SERVER_SECRET.into(), short.into());
    bad.insert(vars::S3_MAX_FILE_SIZE_MB.into(), "x".into()); // a non-secret problem alongside
    let errs = errors(&bad);
    assert_eq!(errs.problems.len(), 3, "{errs}");
    (config, errs)
}

#[test]
fn secrets_never_appear_in_debug_display_or_json() {
    let (config, errs) = with_all_secrets();
    let outputs = [
        format!("{config:?}"),
        format!("{config:#?}"),
        format!("{config}"),
        format!("{}", config.redacted_view()),
        format!("{:?}", config.redacted_view()),
        serde_json::to_string(&config.redacted_view()).unwrap(),
        format!("{errs}"),
        format!("{errs:?}"),
        serde_json::to_string(&errs).unwrap(),
        format!("{:?}", config.pseudonym_key().unwrap()),
    ];
    for out in &outputs {
        for secret in [SECRET_KEY, SESSION_TOKEN, PSEUDONYM_KEY, SERVER_SECRET, "tiny-secret-value"]
        {
            assert!(!out.contains(secret), "secret leaked into: {out}");
        }
    }
    assert!(outputs[0].contains(REDACTED), "{}", outputs[0]);
    // The non-secret parts are still there.
    assert!(outputs[0].contains("kompass-data"));
    assert!(outputs[7].contains("KOMPASS_PSEUDONYM_KEY"));
}

#[test]
fn redacted_view_shows_secrets_as_set_or_unset() {
    let (config, _) = with_all_secrets();
    let view = config.redacted_view();
    assert_eq!(view.secret_access_key, SecretState::Set);
    assert_eq!(view.session_token, SecretState::Set);
    assert_eq!(view.pseudonym_key, SecretState::Set);
    assert_eq!(view.server_secret, SecretState::Set);
    assert_eq!(view.access_key_id.as_deref(), Some("****MPLE"));
    let json = serde_json::to_value(&view).unwrap();
    assert_eq!(json["s3_storage_enabled"], true);
    assert_eq!(json["bucket"], "kompass-data");
    assert_eq!(json["region"], "us-east-1");
    assert_eq!(json["addressing"], "virtual_hosted");
    assert_eq!(json["secret_access_key"], "set");
    assert_eq!(json["pseudonym_key"], "set");
    assert_eq!(json["max_total_storage_bytes"], 4_831_838_208u64);
    assert_eq!(json["cleanup_threshold_percent"], 70);

    let local = ok(&BTreeMap::new()).redacted_view();
    let json = serde_json::to_value(&local).unwrap();
    assert_eq!(json["s3_storage_enabled"], false);
    assert_eq!(json["bucket"], serde_json::Value::Null);
    assert_eq!(json["secret_access_key"], "unset");
    assert_eq!(json["server_secret"], "unset");
    assert_eq!(json["data_directory"], "saved_routes");

    let text = config.to_string();
    assert!(text.contains("AWS_SECRET_ACCESS_KEY         set"), "{text}");
    assert!(text.contains("S3_MAX_FILE_SIZE_MB           50 MiB (52428800 bytes)"), "{text}");
    assert_eq!(text.lines().count(), vars::ALL.len());
}

#[test]
fn short_access_key_ids_are_hidden_entirely() {
    let mut map = s3_env();
    map.insert(vars::AWS_ACCESS_KEY_ID.into(), "admin".into());
    map.insert(vars::AWS_ENDPOINT_URL.into(), "http://localhost:8333".into());
    let view = ok(&map).redacted_view();
    assert_eq!(view.access_key_id.as_deref(), Some("****"));
    assert_eq!(view.endpoint_url.as_deref(), Some("http://localhost:8333"));
    assert_eq!(view.addressing, Some(Addressing::PathStyle));
}

#[test]
fn hashmap_and_lookup_sources_work() {
    let hm: HashMap<String, String> = s3_env().into_iter().collect();
    assert!(Config::from_env_map(&hm).unwrap().s3_enabled());
    let map = s3_env();
    let c = Config::from_lookup(|k| map.get(k).cloned()).unwrap();
    assert_eq!(c.s3.unwrap().bucket, "kompass-data");
}

#[test]
fn dotenv_file_merged_under_the_environment() {
    let file = "# kompass\nexport S3_STORAGE_ENABLED=true\nAWS_S3_BUCKET=from-file\nAWS_ACCESS_KEY_ID=AKIAFILE\nAWS_SECRET_ACCESS_KEY='s3cr3t $with #chars'\nS3_MAX_FILE_SIZE_MB=10 # small\n";
    let parsed = parse_dotenv(file).unwrap();
    let environment = vec![("AWS_S3_BUCKET".to_string(), "from-env".to_string())];
    let merged = merge_env(parsed, environment);
    let c = ok(&merged);
    let s3 = c.s3.unwrap();
    assert_eq!(s3.bucket, "from-env");
    assert_eq!(s3.credentials.secret_access_key.expose(), "s3cr3t $with #chars");
    assert_eq!(c.limits.max_file_bytes, 10 * MIB);

    let bad: DotenvError = parse_dotenv("AWS_SECRET_ACCESS_KEY=\"unclosed secret\n").unwrap_err();
    assert!(!bad.to_string().contains("unclosed secret"));
}

#[test]
fn likely_typos_are_flagged() {
    let names =
        ["S3_MAX_FILE_SIZE", "KOMPASS_PSEUDONYM", "S3_STORAGE_ENABLED", "AWS_PROFILE", "PATH"];
    assert_eq!(unrecognized_variables(names), ["S3_MAX_FILE_SIZE", "KOMPASS_PSEUDONYM"]);
}

#[test]
fn config_limits_feed_admission() {
    use kompass_core::quota::{CurrentUsage, Freeable, UploadRequest, Verdict, admit};
    let c = ok(&env(&[(vars::S3_MAX_FILE_SIZE_MB, "1")]));
    let v = admit(
        &UploadRequest::new(MIB + 1, Some("u")),
        &CurrentUsage::default(),
        &c.limits,
        &Freeable::NONE,
    );
    assert!(matches!(v, Verdict::Refuse(_)));
    let v = admit(
        &UploadRequest::new(MIB, Some("u")),
        &CurrentUsage::default(),
        &c.limits,
        &Freeable::NONE,
    );
    assert_eq!(v, Verdict::Admit);
}

#[test]
fn request_budget_defaults_to_the_free_tier_and_can_be_changed_or_switched_off() {
    use kompass_core::config::budget_vars;
    use kompass_core::quota::RequestBudget;
    assert_eq!(ok(&env(&[])).request_budget, Some(RequestBudget::FREE_TIER));
    let c = ok(&env(&[
        (budget_vars::KOMPASS_PUT_BUDGET, "50"),
        (budget_vars::KOMPASS_GET_BUDGET, "7"),
    ]));
    assert_eq!(c.request_budget, Some(RequestBudget { put_class: 50, get_class: 7 }));
    for off in ["off", "OFF", "false", "no", "0"] {
        assert_eq!(
            ok(&env(&[(budget_vars::KOMPASS_REQUEST_BUDGET, off)])).request_budget,
            None,
            "{off}"
        );
    }
    let e = errors(&env(&[(budget_vars::KOMPASS_PUT_BUDGET, "lots")]));
    assert!(e.to_string().contains("KOMPASS_PUT_BUDGET"), "{e}");
    let e = errors(&env(&[(budget_vars::KOMPASS_REQUEST_BUDGET, "maybe")]));
    assert!(e.to_string().contains("KOMPASS_REQUEST_BUDGET"), "{e}");
    // Not taken for typos of our variables.
    assert!(unrecognized_variables([budget_vars::KOMPASS_PUT_BUDGET]).is_empty());
}
