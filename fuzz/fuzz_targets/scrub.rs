//! The PII scrubber on arbitrary bytes (keyed and keyless). Beyond "no panic", every output
//! must be a JSON object that scrubs to itself, carries the anonymization block, holds no
//! identifying key at any depth, and only strings that cannot be free text: timestamps,
//! pseudonyms, enumeration words and the anonymization block's own values.
#![no_main]

use kompass_core::scrub::{POLICY, PseudonymKey, PseudonymRule, scrub, scrub_incoming, scrub_keyless};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// Keys that must never be in a scrubbed document (`athlete` only at the top level): the
/// core's policy, not a copy of it.
const FORBIDDEN: &[&str] = POLICY.forbidden_keys;

const KEY_ID: &str = "fz1";

fuzz_target!(|data: &[u8]| {
    let key = PseudonymKey::new(KEY_ID, b"fuzzing-secret-0123456789abcdef").unwrap();
    let keyed = scrub(data, &key);
    let keyless = scrub_keyless(data);
    assert_eq!(
        keyed.is_ok(),
        keyless.is_ok(),
        "keyed and keyless disagree on whether this is rider data"
    );
    for (out, with_key) in [(keyed, true), (keyless, false)] {
        let Ok(s) = out else { continue };
        assert_eq!(s.report.removed_count, s.report.removed.len());
        assert_eq!(s.report.output_bytes, s.document.len());
        let doc: Value = serde_json::from_str(&s.document).expect("the scrubbed document is JSON");
        let obj = doc.as_object().expect("the scrubbed document is an object");
        let anon =
            obj.get("anonymization").and_then(Value::as_object).expect("an anonymization block");
        assert_eq!(anon.get("pii_removed"), Some(&Value::Bool(true)));
        check(&doc, 0, with_key);
        // Scrubbing a scrubbed document changes nothing.
        let again = if with_key {
            scrub(s.document.as_bytes(), &key)
        } else {
            scrub_keyless(s.document.as_bytes())
        }
        .expect("a scrubbed document scrubs again");
        assert_eq!(again.document, s.document, "scrubbing is idempotent");
    }
    // The server's scrub of data from outside: the user's pseudonym and no other, and a
    // document that the stored-data scrub (the audit) leaves as it is.
    if let Ok(s) = scrub_incoming(data, &key, "fuzz-user") {
        let doc: Value = serde_json::from_str(&s.document).expect("the scrubbed document is JSON");
        check(&doc, 0, true);
        let mine = key.user_pseudonym("fuzz-user");
        assert_eq!(s.report.user_hash.as_deref(), Some(mine.as_str()));
        let again = scrub(s.document.as_bytes(), &key).expect("a scrubbed document scrubs again");
        assert_eq!(again.document, s.document, "the audit leaves server-stored data as it is");
    }
});

fn check(v: &Value, depth: usize, with_key: bool) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                let top_athlete = depth == 0 && k == "athlete";
                assert!(
                    top_athlete || !FORBIDDEN.contains(&k.as_str()),
                    "identifying key {k:?} kept"
                );
                if depth == 0 && k == "anonymization" {
                    continue;
                }
                check(child, depth + 1, with_key);
            }
        }
        Value::Array(items) => items.iter().for_each(|i| check(i, depth + 1, with_key)),
        Value::String(s) => assert!(
            harmless(s, with_key),
            "a string that may be free text or an id was kept: {s:?}"
        ),
        _ => {}
    }
}

/// A UTC timestamp, a pseudonym of our key, or an enumeration word (letters and `_`).
fn harmless(s: &str, with_key: bool) -> bool {
    let b = s.as_bytes();
    let timestamp = b.len() >= 20
        && b.last() == Some(&b'Z')
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[10] == b'T';
    // The policy's rule: a pseudonym only under the configured key id, none without a key.
    let pseudonym = with_key && PseudonymRule::KeepUnder(KEY_ID).keeps(s);
    let word =
        !s.is_empty() && s.len() <= 40 && s.bytes().all(|c| c.is_ascii_alphabetic() || c == b'_');
    timestamp || pseudonym || word
}
