//! Scrub tests over the generated corpus, hand-written shapes and property tests.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use proptest::prelude::*;
use serde_json::{Value, json};

use super::allow::{self, Leaf, Node};
use super::*;

fn key() -> PseudonymKey {
    PseudonymKey::new("k1", b"test-secret-0123456789").unwrap()
}

fn scrub_value(input: &Value) -> Scrubbed {
    scrub(input.to_string().as_bytes(), &key()).unwrap()
}

/// Every string a scrubbed document may contain: enumeration values, UTC timestamps,
/// pseudonyms and the anonymization block's own values.
fn is_allowed_string(s: &str) -> bool {
    static ENUMS: OnceLock<BTreeSet<&'static str>> = OnceLock::new();
    let enums = ENUMS.get_or_init(|| {
        let fields = allow::all_objects().into_iter().flat_map(|(_, o)| o.fields);
        fields
            .filter_map(|f| match f.node {
                Node::Leaf(Leaf::Enum(values)) => Some(values.iter().copied()),
                _ => None,
            })
            .flatten()
            .collect()
    });
    enums.contains(s)
        || Leaf::UtcTimestamp.accepts(&format!("\"{s}\""))
        || PseudonymRule::KeepUnder("k1").keeps(s)
        || [SCRUB_VERSION, "k1", "hmac-sha256"].contains(&s)
}

/// Every key a scrubbed document may contain.
fn allowed_keys() -> &'static BTreeSet<String> {
    static KEYS: OnceLock<BTreeSet<String>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut keys: BTreeSet<String> = allow::all_objects()
            .into_iter()
            .flat_map(|(_, o)| o.fields)
            .map(|f| f.out_key.trim_matches(|c| c == '"' || c == ':').to_owned())
            .collect();
        keys.extend(
            ["anonymization", "pii_removed", "version", "key_id", "pseudonym"].map(String::from),
        );
        keys
    })
}

fn walk<'a>(
    v: &'a Value,
    strings: &mut Vec<&'a str>,
    keys: &mut Vec<&'a str>,
    numbers: &mut Vec<String>,
) {
    match v {
        Value::String(s) => strings.push(s),
        Value::Number(n) => numbers.push(n.to_string()),
        Value::Array(items) => items.iter().for_each(|i| walk(i, strings, keys, numbers)),
        Value::Object(map) => {
            for (k, v) in map {
                keys.push(k);
                walk(v, strings, keys, numbers);
            }
        }
        _ => {}
    }
}

/// Asserts the fail-closed invariants of an output: valid JSON, only allowed keys and strings.
fn assert_only_allowed(out: &Scrubbed) {
    let value: Value = serde_json::from_str(&out.document).expect("output is JSON");
    let (mut strings, mut keys, mut numbers) = (Vec::new(), Vec::new(), Vec::new());
    walk(&value, &mut strings, &mut keys, &mut numbers);
    let allowed = allowed_keys();
    for k in keys {
        assert!(allowed.contains(k), "key {k:?} survived in {}", out.document);
    }
    for s in strings {
        assert!(is_allowed_string(s), "string {s:?} survived in {}", out.document);
    }
    assert_eq!(value["anonymization"]["pii_removed"], json!(true));
    assert_eq!(out.report.removed_count, out.report.removed.len());
    assert_eq!(out.report.output_bytes, out.document.len());
}

/// Resolves an RFC 6901 pointer (`Value::pointer` does, but it is worth checking escapes).
fn resolves(input: &Value, pointer: &str) -> bool {
    input.pointer(pointer).is_some()
}

// ---- the generated corpus ----

#[test]
fn generated_corpus_keeps_no_pii() {
    for seed in [1, 2, 3] {
        let raw = corpus::generate(12, seed);
        let input: Value = serde_json::from_str(&raw).unwrap();
        let out = scrub(raw.as_bytes(), &key()).unwrap();
        assert_only_allowed(&out);

        // No free text of the input survives, anywhere (as a substring, too).
        let (mut strings, mut keys, mut numbers) = (Vec::new(), Vec::new(), Vec::new());
        walk(&input, &mut strings, &mut keys, &mut numbers);
        for s in strings.iter().filter(|s| !is_allowed_string(s) && s.len() >= 4) {
            let encoded = serde_json::to_string(s).unwrap();
            assert!(!out.document.contains(&encoded[1..encoded.len() - 1]), "{s:?} survived");
        }
        // No GPS coordinate survives (they have 6 decimals, unlike any kept metric).
        let mut coords = Vec::new();
        for a in input["activities"].as_array().unwrap() {
            coords.extend(a["start_latlng"].as_array().unwrap().iter().map(Value::to_string));
            coords.extend(a["end_latlng"].as_array().unwrap().iter().map(Value::to_string));
        }
        for c in coords.iter().filter(|c| c.split('.').nth(1).is_some_and(|d| d.len() >= 5)) {
            assert!(!out.document.contains(c.as_str()), "coordinate {c} survived");
        }
        // The raw athlete id and activity ids appear nowhere.
        let athlete_id = input["basic_info"]["id"].to_string();
        assert!(!out.document.contains(&athlete_id));
        for a in input["activities"].as_array().unwrap() {
            assert!(!out.document.contains(&a["id"].to_string()));
        }
    }
}

#[test]
fn generated_corpus_keeps_every_metric_exactly() {
    let raw = corpus::generate(20, 42);
    let input: Value = serde_json::from_str(&raw).unwrap();
    let out = scrub_value(&input).to_value().unwrap();
    // Whole blocks whose every field is allowed come through unchanged.
    for block in ["stats", "zones", "fitness_metrics", "power_analysis", "training_load"] {
        assert_eq!(out[block], input[block], "{block} changed");
    }
    for field in POLICY.athlete_kept {
        assert_eq!(out["basic_info"][field], input["basic_info"][field], "{field}");
    }
    // Account metadata is not training data (the policy keeps only the traits above).
    assert!(input["basic_info"].get("measurement_preference").is_some());
    assert!(out["basic_info"].get("measurement_preference").is_none());
    let metrics = [
        "average_watts",
        "max_watts",
        "weighted_average_watts",
        "device_watts",
        "kilojoules",
        "average_heartrate",
        "max_heartrate",
        "has_heartrate",
        "average_speed",
        "max_speed",
        "average_cadence",
        "distance",
        "moving_time",
        "elapsed_time",
        "total_elevation_gain",
        "elev_high",
        "elev_low",
        "suffer_score",
        "type",
        "sport_type",
        "start_date",
        "achievement_count",
        "kudos_count",
        "trainer",
        "commute",
        "manual",
        "zones",
    ];
    let (ins, outs) =
        (input["activities"].as_array().unwrap(), out["activities"].as_array().unwrap());
    assert_eq!(ins.len(), outs.len());
    for (a, b) in ins.iter().zip(outs) {
        for m in metrics {
            assert_eq!(a.get(m), b.get(m), "{m}");
        }
    }
}

#[test]
fn streams_keep_performance_series_and_lose_location() {
    let raw = corpus::generate(2, 9);
    let input: Value = serde_json::from_str(&raw).unwrap();
    let out = scrub_value(&input).to_value().unwrap();
    // Activity 0: streams keyed by type.
    let (ins, outs) = (&input["activities"][0]["streams"], &out["activities"][0]["streams"]);
    let kept: BTreeSet<_> = outs.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        kept,
        BTreeSet::from([
            "cadence",
            "distance",
            "heartrate",
            "moving",
            "time",
            "velocity_smooth",
            "watts"
        ])
    );
    for ty in &kept {
        assert_eq!(outs[ty], ins[ty], "{ty}");
    }
    // Activity 1: a list of streams, each naming its type.
    let (ins, outs) = (&input["activities"][1]["streams"], &out["activities"][1]["streams"]);
    let by_type = |list: &Value| -> Vec<(String, Value)> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|s| (s["type"].as_str().unwrap().to_owned(), s.clone()))
            .collect()
    };
    let kept = by_type(outs);
    assert_eq!(kept.len(), 7);
    for (ty, stream) in kept {
        assert!(allow::STREAM_TYPES.contains(&ty.as_str()), "{ty}");
        let original = by_type(ins).into_iter().find(|(t, _)| *t == ty).unwrap().1;
        assert_eq!(stream, original, "{ty}");
    }
}

#[test]
fn report_lists_removed_paths_that_exist_in_the_input_in_a_stable_order() {
    let raw = corpus::generate(4, 5);
    let input: Value = serde_json::from_str(&raw).unwrap();
    let a = scrub(raw.as_bytes(), &key()).unwrap();
    let b = scrub(raw.as_bytes(), &key()).unwrap();
    assert_eq!(a, b, "deterministic");
    for path in &a.report.removed {
        assert!(resolves(&input, path), "{path} is not a path of the input");
    }
    for expected in [
        "/basic_info/firstname",
        "/basic_info/email",
        "/basic_info/city",
        "/basic_info/bikes",
        "/activities/0/name",
        "/activities/0/start_latlng",
        "/activities/0/map",
        "/activities/0/streams/latlng",
        "/activities/0/streams/altitude",
        "/activities/0/athlete",
        "/activities/0/timezone",
        "/activities/0/start_date_local",
        "/activities/0/photos",
        "/activities/0/segment_efforts",
        "/activities/0/gear",
        "/activities/3/device_name",
        "/fetch_timestamp",
    ] {
        assert!(a.report.removed.iter().any(|p| p == expected), "{expected} not reported");
    }
    // The list-form streams of activity 1 lose latlng, altitude, temp and grade_smooth.
    let list = input["activities"][1]["streams"].as_array().unwrap();
    for (i, s) in list.iter().enumerate() {
        let removed = a.report.removed.contains(&format!("/activities/1/streams/{i}"));
        let location =
            ["latlng", "altitude", "temp", "grade_smooth"].contains(&s["type"].as_str().unwrap());
        assert_eq!(removed, location, "stream {}", s["type"]);
    }
    // Document order: basic_info comes after activities in the generated (sorted) export.
    let first_activity =
        a.report.removed.iter().position(|p| p.starts_with("/activities/")).unwrap();
    let first_athlete =
        a.report.removed.iter().position(|p| p.starts_with("/basic_info/")).unwrap();
    assert!(first_activity < first_athlete);
    assert_eq!(a.report.activities_kept, 4);
    assert_eq!(a.report.removed_count, a.report.removed.len());
}

#[test]
fn pseudonyms_replace_ids_are_stable_and_depend_on_the_key() {
    let raw = corpus::generate(3, 11);
    let input: Value = serde_json::from_str(&raw).unwrap();
    let out = scrub(raw.as_bytes(), &key()).unwrap();
    let doc = out.to_value().unwrap();
    let athlete_id = input["basic_info"]["id"].as_u64().unwrap();
    let expected = key().athlete_pseudonym(athlete_id);
    assert_eq!(doc["basic_info"]["user_hash"], json!(expected));
    assert_eq!(out.report.user_hash.as_deref(), Some(expected.as_str()));
    for (a, b) in
        input["activities"].as_array().unwrap().iter().zip(doc["activities"].as_array().unwrap())
    {
        assert_eq!(b["activity_hash"], json!(key().activity_pseudonym(a["id"].as_u64().unwrap())));
        assert!(b.get("id").is_none() && b.get("athlete").is_none());
    }
    let other = PseudonymKey::new("k2", b"another-secret-0123456789").unwrap();
    let rotated = scrub(raw.as_bytes(), &other).unwrap().to_value().unwrap();
    assert_ne!(rotated["basic_info"]["user_hash"], doc["basic_info"]["user_hash"]);
    assert!(rotated["basic_info"]["user_hash"].as_str().unwrap().starts_with("k2:"));
    assert_eq!(rotated["anonymization"]["key_id"], json!("k2"));
}

#[test]
fn scrubbing_a_scrubbed_document_changes_nothing() {
    let raw = corpus::generate(6, 13);
    let once = scrub(raw.as_bytes(), &key()).unwrap();
    let twice = scrub(once.document.as_bytes(), &key()).unwrap();
    assert_eq!(twice.document, once.document);
    assert_eq!(twice.report.removed, vec!["/anonymization".to_owned()]);
    assert_eq!(twice.report.user_hash, once.report.user_hash);
}

// ---- pseudonyms from outside (the policy's pseudonym rule) ----

/// The SHA-256 of the athlete id 12345678, unkeyed: what the design forbids, since Strava ids are
/// sequential and such a hash is reversed by enumeration.
const UNKEYED_HASH: &str = "ef797c8118f02dfb649607dd5d3f8c7623048c9c063d532cc95c5ed7a898a64f";

fn smuggled() -> Value {
    json!({
        "basic_info": {
            "user_hash": format!("Jane.Doe_SW1A-2AA_born-1984-02-03:{UNKEYED_HASH}"),
            "sex": "F",
            "measurement_preference": "meters",
            "date_preference": "%m/%d/%Y"
        },
        "activities": [
            {"activity_hash": format!("Home-51.5007N-0.1246W:{UNKEYED_HASH}"), "distance": 1000.0},
            {"activity_hash": format!("k1:{UNKEYED_HASH}"), "distance": 2.0}
        ]
    })
}

#[test]
fn free_text_in_a_key_id_is_dropped_and_reported_under_the_configured_key() {
    let out = scrub_value(&smuggled());
    let doc = out.to_value().unwrap();
    assert!(doc["basic_info"].get("user_hash").is_none(), "{doc}");
    assert!(doc["activities"][0].get("activity_hash").is_none(), "{doc}");
    assert!(!out.document.contains("Jane") && !out.document.contains("Home-51"));
    for p in [
        "/basic_info/user_hash",
        "/basic_info/measurement_preference",
        "/basic_info/date_preference",
        "/activities/0/activity_hash",
    ] {
        assert!(out.report.removed.iter().any(|r| r == p), "{p} not reported");
    }
    assert_eq!(out.report.user_hash, None);
    assert_eq!(doc["anonymization"]["key_id"], json!("k1"));
    // Under the configured key id the pseudonym is indistinguishable from ours: kept, so
    // that scrubbing our own output changes nothing (the incoming scrub drops it, below).
    assert_eq!(doc["activities"][1]["activity_hash"], json!(format!("k1:{UNKEYED_HASH}")));
}

#[test]
fn keyless_scrubs_drop_every_pseudonym_even_our_own() {
    let out = scrub_keyless(smuggled().to_string().as_bytes()).unwrap();
    let doc = out.to_value().unwrap();
    assert!(!out.document.contains(UNKEYED_HASH), "{}", out.document);
    assert!(out.report.removed.iter().any(|r| r == "/activities/1/activity_hash"));
    let keyed = scrub(corpus::generate(2, 5).as_bytes(), &key()).unwrap();
    let again = scrub_keyless(keyed.document.as_bytes()).unwrap();
    assert!(again.report.removed.iter().any(|r| r == "/basic_info/user_hash"));
    assert!(!again.document.contains("k1:"), "{}", again.document);
    assert_eq!(doc["anonymization"]["key_id"], Value::Null);
}

#[test]
fn the_incoming_scrub_binds_the_user_hash_to_the_user_and_drops_every_pseudonym() {
    let k = key();
    let out = scrub_incoming(smuggled().to_string().as_bytes(), &k, "alice").unwrap();
    let doc = out.to_value().unwrap();
    let expected = k.user_pseudonym("alice");
    assert_eq!(doc["basic_info"]["user_hash"], json!(expected));
    assert_eq!(out.report.user_hash.as_deref(), Some(expected.as_str()));
    assert!(!out.document.contains(UNKEYED_HASH), "{}", out.document);
    assert!(out.report.removed.iter().any(|r| r == "/activities/1/activity_hash"));
    // A raw athlete id in the body is a claim the server cannot tie to the token: dropped.
    let raw = corpus::generate(2, 9);
    let out = scrub_incoming(raw.as_bytes(), &k, "alice").unwrap();
    let doc = out.to_value().unwrap();
    assert_eq!(doc["basic_info"]["user_hash"], json!(expected));
    assert!(out.report.removed.iter().any(|r| r == "/basic_info/id"));
    assert!(doc["activities"][0]["activity_hash"].as_str().unwrap().starts_with("k1:"));
    // What the server stored is a fixed point of the stored-data scrub (the audit).
    assert_eq!(scrub(out.document.as_bytes(), &k).unwrap().document, out.document);
    // No athlete block: the user_hash gets one; a bare activity array too.
    for input in [r#"{"stats":{}}"#, r#"[{"distance":1}]"#] {
        let out = scrub_incoming(input.as_bytes(), &k, "bob").unwrap();
        let doc = out.to_value().unwrap();
        assert_eq!(doc["athlete"]["user_hash"], json!(k.user_pseudonym("bob")), "{input}");
        assert_eq!(scrub(out.document.as_bytes(), &k).unwrap().document, out.document);
    }
}

#[test]
fn the_policy_states_what_each_path_does_with_rider_data() {
    use policy::{RiderHandling as H, RiderPath as P};
    assert_eq!(POLICY.handling(P::HttpPresign), H::Refuse);
    assert_eq!(POLICY.handling(P::Edge), H::Refuse);
    assert_eq!(POLICY.handling(P::LocalUpload), H::Refuse);
    assert_eq!(POLICY.handling(P::HttpRider), H::ScrubIncoming);
    assert_eq!(POLICY.handling(P::Page), H::ScrubKeylessThenServer);
    assert_eq!(POLICY.handling(P::CliRiderSave), H::ScrubWithKey);
    assert_eq!(POLICY.handling(P::CliSave), H::StoreIfScrubbed);
    assert_eq!(POLICY.handling(P::AuditFix), H::ScrubWithKey);
    assert_eq!(POLICY.handling(P::Migrate), H::MoveAsStored);
    assert_eq!(POLICY.version, SCRUB_VERSION);
}

#[test]
fn a_generic_fitness_save_accepts_only_a_fixed_point_of_the_keyed_scrub() {
    let k = key();
    let raw = json!({
        "athlete": {"id": 123456, "firstname": "Jane", "lastname": "Doe", "city": "London", "weight": 61.5},
        "activities": [{"id": 987, "name": "Morning ride", "start_latlng": [51.5, -0.12], "distance": 1000.5}],
    })
    .to_string();
    // A raw export: refused, and the error repeats nothing of it.
    let err = check_scrubbed(raw.as_bytes(), &k).unwrap_err();
    assert!(
        matches!(err, NotScrubbed::WouldChange { removed_count, .. } if removed_count >= 5),
        "{err:?}"
    );
    let msg = err.to_string();
    for pii in ["Jane", "Doe", "London", "51.5", "123456"] {
        assert!(!msg.contains(pii), "{msg}");
    }
    assert!(msg.contains("kompass rider save"), "{msg}");
    // What the keyed scrub wrote: accepted.
    let scrubbed = scrub(raw.as_bytes(), &k).unwrap().document;
    assert_eq!(check_scrubbed(scrubbed.as_bytes(), &k), Ok(()));
    // The same document scrubbed under another key: refused (its pseudonyms are foreign).
    let other = PseudonymKey::new("k2", b"another-secret-0123456789").unwrap();
    let foreign = scrub(raw.as_bytes(), &other).unwrap().document;
    assert!(check_scrubbed(foreign.as_bytes(), &k).is_err());
    // A pseudonym-shaped value under another key id smuggled into our own scrubbed form.
    let smuggled = scrubbed.replacen("\"k1:", "\"Jane.Doe_SW1A:", 1);
    assert_ne!(smuggled, scrubbed);
    assert!(matches!(
        check_scrubbed(smuggled.as_bytes(), &k),
        Err(NotScrubbed::WouldChange { removed_count, .. }) if removed_count >= 1
    ));
    // Scrubbed content, not in the scrubber's compact form: refused, though nothing is removed.
    let spaced = scrubbed.replacen(',', ", ", 1);
    assert!(matches!(
        check_scrubbed(spaced.as_bytes(), &k),
        Err(NotScrubbed::WouldChange { removed_count: 0, .. })
    ));
    // Not rider data at all.
    assert!(matches!(check_scrubbed(b"not json", &k), Err(NotScrubbed::Unscrubbable(_))));
    assert!(matches!(check_scrubbed(b"{}", &k), Err(NotScrubbed::WouldChange { .. })));
}

// ---- hand-written shapes ----

#[test]
fn values_of_the_wrong_shape_are_removed_never_passed_through() {
    let input = r#"{
        "basic_info": {"id": "not-a-number", "weight": "75 kg", "sex": "Male", "ftp": [250]},
        "stats": "John's stats",
        "zones": [1, 2],
        "activities": [
            "Secret Ride",
            null,
            {"distance": "25 km", "type": "John's Ride", "start_date": "2024-05-01T08:30:00+02:00",
             "trainer": "yes", "moving_time": {"v": 1}, "average_watts": 200,
             "streams": {"watts": {"data": [100, "Main St", {"lat": 1}, 120, true]}}}
        ]
    }"#;
    let out = scrub(input.as_bytes(), &key()).unwrap();
    assert_only_allowed(&out);
    assert_eq!(
        out.to_value().unwrap(),
        json!({
            "basic_info": {},
            "activities": [{"average_watts": 200, "streams": {"watts": {"data": [100, null, null, 120, null]}}}],
            "anonymization": {"pii_removed": true, "version": SCRUB_VERSION, "key_id": "k1", "pseudonym": "hmac-sha256"},
        })
    );
    let removed: Vec<&str> = out.report.removed.iter().map(String::as_str).collect();
    assert_eq!(
        removed,
        [
            "/basic_info/id",
            "/basic_info/weight",
            "/basic_info/sex",
            "/basic_info/ftp",
            "/stats",
            "/zones",
            "/activities/0",
            "/activities/1",
            "/activities/2/distance",
            "/activities/2/type",
            "/activities/2/start_date",
            "/activities/2/trainer",
            "/activities/2/moving_time",
            "/activities/2/streams/watts/data/1",
            "/activities/2/streams/watts/data/2",
            "/activities/2/streams/watts/data/4",
        ]
    );
    assert_eq!((out.report.activities_kept, out.report.activities_removed), (1, 2));
    assert_eq!(out.report.user_hash, None);
}

#[test]
fn null_is_kept_where_a_value_is_allowed() {
    let out = scrub_value(
        &json!({"stats": null, "basic_info": {"ftp": null, "sex": null}, "activities": [{"workout_type": null}]}),
    );
    let doc = out.to_value().unwrap();
    assert_eq!(doc["stats"], Value::Null);
    assert_eq!(doc["basic_info"], json!({"ftp": null, "sex": null}));
    assert_eq!(doc["activities"], json!([{"workout_type": null}]));
    assert!(out.report.removed.is_empty());
}

#[test]
fn repeated_keys_keep_the_first_accepted_value_once() {
    let raw = br#"{"activities":[{"distance":"x","distance":1,"distance":2,"id":5,"activity_hash":"k9:0000000000000000000000000000000000000000000000000000000000000000"}]}"#;
    let out = scrub(raw, &key()).unwrap();
    let expected = format!(
        r#"{{"activities":[{{"distance":1,"activity_hash":"{}"}}],"anonymization""#,
        key().activity_pseudonym(5)
    );
    assert!(out.document.starts_with(&expected), "{}", out.document);
    assert_eq!(
        out.report.removed,
        ["/activities/0/distance", "/activities/0/distance", "/activities/0/activity_hash"]
    );
}

#[test]
fn numbers_are_copied_byte_for_byte() {
    let raw = br#"{"activities":[{"distance":25000.000000000000000001,"average_watts":2E2,"max_watts":-0.0,"kilojoules":1e-7}]}"#;
    let out = scrub(raw, &key()).unwrap();
    assert!(
        out.document.starts_with(r#"{"activities":[{"distance":25000.000000000000000001,"average_watts":2E2,"max_watts":-0.0,"kilojoules":1e-7}]"#),
        "{}",
        out.document
    );
}

#[test]
fn key_names_with_pointer_metacharacters_are_escaped_in_the_report() {
    let out = scrub(br#"{"a/b":1,"c~d":{"x":1},"e\u0041":2}"#, &key()).unwrap();
    assert_eq!(out.report.removed, ["/a~1b", "/c~0d", "/eA"]);
    let input: Value = serde_json::from_str(r#"{"a/b":1,"c~d":{"x":1},"eA":2}"#).unwrap();
    assert!(out.report.removed.iter().all(|p| resolves(&input, p)));
}

#[test]
fn escaped_spellings_of_allowed_keys_are_recognised_and_written_plainly() {
    let out = scrub(br#"{"activities":[{"dist\u0061nce":5}]}"#, &key()).unwrap();
    assert!(out.document.starts_with(r#"{"activities":[{"distance":5}]"#), "{}", out.document);
}

#[test]
fn a_bare_array_of_activities_is_wrapped() {
    let out = scrub(br#"[{"name":"Secret","distance":1},{"distance":2}]"#, &key()).unwrap();
    assert_eq!(
        out.to_value().unwrap(),
        json!({"activities": [{"distance": 1}, {"distance": 2}], "anonymization": {"pii_removed": true, "version": SCRUB_VERSION, "key_id": "k1", "pseudonym": "hmac-sha256"}})
    );
    assert_eq!(out.report.removed, ["/0/name"]);
    assert_eq!(out.report.activities_kept, 2);
}

#[test]
fn an_empty_document_gets_only_the_anonymization_block() {
    let out = scrub(b"  {}  ", &key()).unwrap();
    assert_eq!(
        out.document,
        format!(
            r#"{{"anonymization":{{"pii_removed":true,"version":"{SCRUB_VERSION}","key_id":"k1","pseudonym":"hmac-sha256"}}}}"#
        )
    );
    let bom = scrub(b"\xEF\xBB\xBF{}", &key()).unwrap();
    assert_eq!(bom.document, out.document);
}

#[test]
fn input_that_is_not_a_json_document_is_an_error() {
    let err = |input: &[u8]| scrub(input, &key()).unwrap_err();
    assert!(matches!(err(b""), ScrubError::NotJson { .. }));
    assert!(matches!(err(b"{\"a\":"), ScrubError::NotJson { .. }));
    assert!(matches!(err(b"{} {}"), ScrubError::NotJson { .. }));
    assert!(
        matches!(err(b"{\"map\": {\"x\": [1,]}}"), ScrubError::NotJson { .. }),
        "errors in dropped subtrees count"
    );
    assert_eq!(err(b"\"John Doe\""), ScrubError::NotADocument { found: "string" });
    assert_eq!(err(b"123456789"), ScrubError::NotADocument { found: "number" });
    assert_eq!(err(b"null"), ScrubError::NotADocument { found: "null" });
    assert_eq!(err(b"{\"a\":\"\xff\"}"), ScrubError::NotUtf8 { offset: 6 });
    let nan = err(b"{\"stats\": {\n  \"biggest_ride_distance\": NaN}}");
    assert!(nan.to_string().contains("NaN and Infinity are not JSON"), "{nan}");
    assert!(matches!(nan, ScrubError::NotJson { line: 2, .. }));
    let plain = err(b"{\"a\": nope}");
    assert!(!plain.to_string().contains("NaN"), "{plain}");
    assert!(plain.to_string().contains("not valid JSON"), "{plain}");
    // The message never contains the input's content.
    let secret = err(b"{\"firstname\": \"Johnathan\"");
    assert!(!secret.to_string().contains("Johnathan"), "{secret}");
}

#[test]
fn deep_nesting_in_dropped_subtrees_is_skipped_without_recursion() {
    let depth = 10_000;
    let raw =
        format!("{{\"map\":{}1{}, \"activities\": []}}", "[".repeat(depth), "]".repeat(depth));
    let out = scrub(raw.as_bytes(), &key()).unwrap();
    assert_eq!(out.report.removed, ["/map"]);
}

// ---- property tests ----

/// A JSON value with PII-like content that must never survive, whatever its position.
fn canary_value() -> impl Strategy<Value = Value> {
    let text = "[a-zA-Z ]{0,8}".prop_map(|s| json!(format!("CANARY {s}")));
    prop_oneof![
        text.clone(),
        text.clone().prop_map(|t| json!({"email": t})),
        text.clone().prop_map(|t| json!([t, {"deep": [t]}])),
        text.prop_map(|t| json!({"type": t, "data": [t]})),
    ]
}

/// Keys to insert: unknown ones, and allowed names given a canary of the wrong shape.
fn canary_key() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z_]{1,12}".prop_map(|k| format!("canary_{k}")),
        prop::sample::select(KNOWN_KEYS.to_vec()).prop_map(String::from),
    ]
}

/// Paths (as pointer segments) to every object and array in `v`.
fn containers(v: &Value, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match v {
        Value::Object(map) => {
            out.push(path.clone());
            for (k, child) in map {
                path.push(k.clone());
                containers(child, path, out);
                path.pop();
            }
        }
        Value::Array(items) => {
            out.push(path.clone());
            for (i, child) in items.iter().enumerate() {
                path.push(i.to_string());
                containers(child, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

fn pointer(segments: &[String]) -> String {
    segments.iter().map(|s| format!("/{}", s.replace('~', "~0").replace('/', "~1"))).collect()
}

/// Whether one pointer is the other or an ancestor of it.
fn related(a: &str, b: &str) -> bool {
    let prefix = |p: &str, q: &str| q == p || q.starts_with(&format!("{p}/"));
    prefix(a, b) || prefix(b, a)
}

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let names = prop::sample::select(vec![
        "activities",
        "basic_info",
        "athlete",
        "stats",
        "zones",
        "streams",
        "data",
        "type",
        "id",
        "distance",
        "watts",
        "moving",
        "heart_rate",
        "power",
        "zones",
        "min",
        "max",
        "start_date",
        "sex",
        "name",
        "map",
        "latlng",
        "user_hash",
        "all_ride_totals",
        "fitness_metrics",
        "x",
    ]);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        prop::sample::select(vec![
            "Ride",
            "watts",
            "M",
            "2024-01-01T00:00:00Z",
            "moving",
            "power",
            "John"
        ])
        .prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(6, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((names.clone(), inner), 0..6).prop_map(|members| Value::Object(
                members.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
            )),
        ]
    })
}

/// The containers of `doc` that a scrub keeps (not at or under a removed path).
fn kept_containers(doc: &Value) -> Vec<Vec<String>> {
    let baseline = scrub_value(doc);
    let mut all = Vec::new();
    containers(doc, &mut Vec::new(), &mut all);
    all.retain(|p| {
        let p = pointer(p);
        !baseline.report.removed.iter().any(|r| p == *r || p.starts_with(&format!("{r}/")))
    });
    all
}

/// Inserts `canary` into the container at `target` (under `key` in an object, at
/// `position % (len + 1)` in an array) and returns the pointer of the inserted value.
fn insert(doc: &mut Value, target: &[String], key: &str, canary: Value, position: usize) -> String {
    let mut inserted = target.to_vec();
    match doc.pointer_mut(&pointer(target)).unwrap() {
        Value::Object(map) => {
            map.insert(key.to_owned(), canary);
            inserted.push(key.to_owned());
        }
        Value::Array(items) => {
            let at = position % (items.len() + 1);
            items.insert(at, canary);
            inserted.push(at.to_string());
        }
        _ => unreachable!("targets are containers"),
    }
    pointer(&inserted)
}

/// Scrubs `doc` and checks that no canary survived and that the insertion was reported.
fn assert_canary_removed(doc: &Value, inserted: &str) {
    let out = scrub_value(doc);
    assert!(!out.document.contains("CANARY"), "canary at {inserted} survived: {}", out.document);
    assert!(!out.document.contains("canary_"), "canary key at {inserted} survived");
    assert!(
        out.report.removed.iter().any(|p| related(p, inserted)),
        "{inserted} not reported: {:?}",
        out.report.removed
    );
    assert_only_allowed(&out);
}

const KNOWN_KEYS: &[&str] = &[
    "name",
    "distance",
    "type",
    "sport_type",
    "start_date",
    "id",
    "user_hash",
    "activity_hash",
    "sex",
    "weight",
    "ftp",
    "measurement_preference",
    "data",
    "streams",
    "zones",
    "activities",
    "basic_info",
    "stats",
    "watts",
    "moving",
    "heart_rate",
    "distribution_buckets",
    "min",
    "resolution",
    "series_type",
    "custom_zones",
    "trend_direction",
    "anonymization",
];

fn canaries() -> Vec<Value> {
    let t = json!("CANARY John Doe");
    vec![
        t.clone(),
        json!({"email": t}),
        json!([t, {"deep": [t]}]),
        json!({"type": t, "data": [t]}),
        json!([[t]]),
    ]
}

/// Every known key, with every canary shape, in every container a scrub keeps.
#[test]
fn pii_inserted_into_any_kept_container_never_survives() {
    // The kept skeleton of a corpus (its scrub), with series cut short: small and fast to
    // scrub thousands of times, yet every kind of container a scrub keeps is in it.
    fn shorten(v: &mut Value) {
        match v {
            Value::Array(items) => {
                items.truncate(3);
                items.iter_mut().for_each(shorten);
            }
            Value::Object(map) => map.values_mut().for_each(shorten),
            _ => {}
        }
    }
    let mut doc = scrub(corpus::generate(2, 21).as_bytes(), &key()).unwrap().to_value().unwrap();
    shorten(&mut doc);
    let kept = kept_containers(&doc);
    assert!(kept.len() > 60, "only {} kept containers", kept.len());
    for target in &kept {
        // In an object: each allowed key already there (given a value of the wrong shape),
        // plus an unknown key and the classic identifiers. An array takes no key: each shape
        // goes in at a few positions instead.
        let keys: Vec<&str> = match doc.pointer(&pointer(target)).unwrap() {
            Value::Object(map) => {
                map.keys().map(String::as_str).chain(["canary_unknown", "name", "id"]).collect()
            }
            _ => vec!["", "", ""],
        };
        for (k, key) in keys.into_iter().enumerate() {
            for canary in canaries() {
                let mut doc = doc.clone();
                let inserted = insert(&mut doc, target, key, canary, k * 7);
                assert_canary_removed(&doc, &inserted);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// An unknown field (or a known one of the wrong shape) with PII-like content, inserted at
    /// a random depth and position of a realistic export (half the time into a container the
    /// scrub keeps), never survives, and the report names it or an ancestor.
    #[test]
    fn inserted_pii_never_survives(
        seed in any::<u64>(),
        activities in 1usize..4,
        only_kept in any::<bool>(),
        pick in any::<prop::sample::Index>(),
        position in any::<usize>(),
        key_name in canary_key(),
        canary in canary_value(),
    ) {
        let mut doc: Value = serde_json::from_str(&corpus::generate(activities, seed)).unwrap();
        let targets = if only_kept {
            kept_containers(&doc)
        } else {
            let mut all = Vec::new();
            containers(&doc, &mut Vec::new(), &mut all);
            all
        };
        let target = pick.get(&targets).clone();
        let inserted = insert(&mut doc, &target, &key_name, canary, position);
        assert_canary_removed(&doc, &inserted);
    }

    /// Whatever the input, the output holds only allowed keys and strings, and is stable.
    #[test]
    fn arbitrary_documents_fail_closed(doc in arbitrary_json()) {
        match scrub(doc.to_string().as_bytes(), &key()) {
            Ok(out) => {
                prop_assert!(doc.is_object() || doc.is_array());
                assert_only_allowed(&out);
                for path in &out.report.removed {
                    prop_assert!(resolves(&doc, path), "{path} not in input");
                }
                let again = scrub(out.document.as_bytes(), &key()).unwrap();
                prop_assert_eq!(again.document, out.document);
            }
            Err(e) => {
                let refused = matches!(e, ScrubError::NotADocument { .. });
                prop_assert!(refused && !doc.is_object() && !doc.is_array(), "{e}");
            }
        }
    }

    /// Any JSON number text within a double's range in a kept field or series comes out
    /// unchanged. One beyond it (`0.1E310`) is valid JSON text that serde_json cannot read
    /// back, so it is dropped like any value of the wrong shape (found by fuzzing).
    #[test]
    fn number_text_round_trips_exactly(
        number in r"-?(0|[1-9][0-9]{0,24})(\.[0-9]{1,24})?([eE][+-]?[0-9]{1,3})?",
    ) {
        let raw = format!(r#"{{"activities":[{{"average_watts":{number},"streams":{{"watts":{{"data":[{number},{number}]}}}}}}]}}"#);
        let out = scrub(raw.as_bytes(), &key()).unwrap();
        if number.parse::<f64>().is_ok_and(f64::is_finite) {
            let expected = format!(r#"{{"activities":[{{"average_watts":{number},"streams":{{"watts":{{"data":[{number},{number}]}}}}}}]"#);
            prop_assert!(out.document.starts_with(&expected), "{}", out.document);
        } else {
            let expected = r#"{"activities":[{"streams":{"watts":{"data":[null,null]}}}]"#;
            prop_assert!(out.document.starts_with(expected), "{}", out.document);
            prop_assert!(out.report.removed.iter().any(|p| p == "/activities/0/average_watts"), "{:?}", out.report.removed);
        }
        prop_assert!(out.to_value().is_ok(), "the document reads back: {}", out.document);
    }

    /// Arbitrary bytes never panic the scrubber, and an error never carries output.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(out) = scrub(&bytes, &key()) {
            assert_only_allowed(&out);
        }
    }
}

// ---- the byte-level scanner against the serde path ----

/// The scanner (filter::scan), where it does not give up, writes exactly what the serde path
/// writes (document, removed paths, counts, user hash) under every rule; where the serde path
/// refuses the input, the scanner gives up (the serde path then words the error). Returns
/// whether the scanner gave up anywhere.
fn scan_agrees_with_the_serde_path(input: &str) -> bool {
    let k = key();
    let subject = k.user_pseudonym("alice");
    let rules = [
        (Some(&k), PseudonymRule::KeepUnder("k1"), None),
        (None, PseudonymRule::DropAll, None),
        (Some(&k), PseudonymRule::DropAll, Some(subject.as_str())),
    ];
    let mut gave_up = false;
    for (key, rule, subject) in rules {
        for list in [true, false] {
            let reference = filter::run_serde(input, key, rule, subject, list);
            let Some((scan, root)) = filter::run_scan(input, key, rule, subject, list) else {
                gave_up = true;
                continue;
            };
            let Ok((serde, serde_root)) = reference else {
                panic!("the scanner accepted what serde_json refuses: {input:?}");
            };
            assert_eq!(root, serde_root, "{input:?}");
            assert_eq!(scan.out, serde.out, "{input:?}");
            assert_eq!(scan.removed, serde.removed, "{input:?}");
            assert_eq!(scan.removed_count, serde.removed_count, "{input:?}");
            assert_eq!(scan.user_hash, serde.user_hash, "{input:?}");
            assert_eq!(scan.activities_kept, serde.activities_kept, "{input:?}");
            assert_eq!(scan.activities_removed, serde.activities_removed, "{input:?}");
        }
    }
    gave_up
}

#[test]
fn the_scanner_writes_the_serde_paths_output_for_the_corpus_without_giving_up() {
    for (n, seed) in [(1, 1), (3, 7), (40, 42)] {
        let doc = corpus::generate(n, seed);
        assert!(!scan_agrees_with_the_serde_path(&doc), "gave up on corpus {n}/{seed}");
        let pretty =
            serde_json::to_string_pretty(&serde_json::from_str::<Value>(&doc).unwrap()).unwrap();
        assert!(!scan_agrees_with_the_serde_path(&pretty), "gave up on pretty corpus {n}");
    }
}

#[test]
fn the_scanner_gives_up_where_serde_json_decodes_or_converts() {
    let odd = [
        // Escaped keys, known and unknown; escaped and huge scalars where containers go.
        r#"{"activities":[{"i\u0064":1,"n\u0061me":"x"}]}"#,
        r#"{"activities":[{"streams":"\ud800"}]}"#,
        r#"{"activities":[{"streams":1e999}]}"#,
        r#"{"activities":[1e999]}"#,
        r#"{"stats":{"x\"y":1}}"#,
        r#"{"activities":[{"streams":[{"type":"watts","data":1e999}]}]}"#,
        r#"{"activities":[{"streams":[{"type":"watts","data":{"\ud800":1}}]}]}"#,
        // Invalid JSON of many kinds.
        r#"{"activities":[1,]}"#,
        r#"{"activities":[{"a":1,}]}"#,
        r#"{"activities":[01]}"#,
        r#"{"a":"\x"}"#,
        "{\"a\":\"\u{1}\"}",
        r#"{"a":tru}"#,
        r#"{"a":1} x"#,
        r#"{"a":[1.]}"#,
        r#"{"a":-}"#,
        r#"{"a":1e+}"#,
        r#"{"a":"\u12G4"}"#,
        r#"{"a" 1}"#,
        r#"{"a":1"#,
        "[",
        "",
        "  ",
        "\"just a string\"",
        "12",
    ];
    for input in odd {
        assert!(scan_agrees_with_the_serde_path(input), "the scanner took {input:?}");
    }
    // Forms that need no decoding are taken, not handed over.
    let plain = [
        r#"{"activities":[{"streams":"x","zones":true,"id":"12"},null,7,"s",[1,{"a":"\n"}]]}"#,
        r#"{"x":{"\u0041\n":["\ud800",1e999,-0.5E-3]},"activities":[]}"#,
        " \t\r\n[{\"average_watts\" : -0 , \"type\":\"Ride\"} ] \n",
    ];
    for input in plain {
        assert!(!scan_agrees_with_the_serde_path(input), "the scanner gave up on {input:?}");
    }
}

/// Bytes that change JSON's structure or a token, for mutating valid documents.
const MUTATIONS: &[u8] = b"{}[],:\"\\ \n0123456789-+.eEtrufalsn";

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Arbitrary JSON documents, compact and pretty.
    #[test]
    fn scan_agrees_on_arbitrary_documents(doc in arbitrary_json()) {
        scan_agrees_with_the_serde_path(&doc.to_string());
        scan_agrees_with_the_serde_path(&serde_json::to_string_pretty(&doc).unwrap());
    }

    /// A small export with a few bytes deleted, inserted or replaced: mostly invalid JSON and
    /// odd forms, where the scanner must give up exactly when it cannot match serde_json.
    #[test]
    fn scan_agrees_on_mutated_exports(
        seed in any::<u64>(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..3, prop::sample::select(MUTATIONS)), 1..4),
    ) {
        let mut doc = corpus::generate(1, seed).into_bytes();
        for (at, kind, byte) in edits {
            let i = at.index(doc.len() + 1);
            match kind {
                0 if i < doc.len() => { doc.remove(i); }
                1 => doc.insert(i, byte),
                _ if i < doc.len() => doc[i] = byte,
                _ => doc.push(byte),
            }
        }
        if let Ok(text) = std::str::from_utf8(&doc) {
            scan_agrees_with_the_serde_path(text);
        }
    }
}
