//! Object keys from untrusted text: S3 keys (listings, journal lines), local path segments
//! (directory scans) and the CLI's user / type / name, plus SHA-256 digests. Whatever parses
//! must round-trip exactly and stay inside its prefix: no empty, `.` or `..` segment, no
//! separator, NUL, control character or look-alike slash in any part.
#![no_main]

use kompass_core::inventory::Sha256Digest;
use kompass_core::key::{FileName, ObjectKey, UserId};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(k) = ObjectKey::from_s3_key(&text) {
        assert_eq!(k.s3_key(), text, "an S3 key round-trips exactly");
        check(&k);
    }
    // Up to three parts separated by 0xFF (never in UTF-8): [user,] type, name.
    let parts: Vec<String> =
        data.split(|b| *b == 0xFF).map(|p| String::from_utf8_lossy(p).into_owned()).collect();
    let key = match parts.as_slice() {
        [dt, name] => ObjectKey::parse_parts(None, dt, name),
        [user, dt, name, ..] => ObjectKey::parse_parts(Some(user), dt, name),
        [one] => ObjectKey::parse_parts(None, "routes", one),
        [] => return,
    };
    if let Ok(k) = key {
        check(&k);
        assert_eq!(ObjectKey::from_s3_key(&k.s3_key()).as_ref(), Ok(&k));
    }
    let segments: Vec<&str> = parts.iter().map(String::as_str).collect();
    if let Ok(k) = ObjectKey::from_local_segments(&segments) {
        assert_eq!(k.local_segments(), segments, "local segments round-trip exactly");
        check(&k);
    }
    for p in &parts {
        if let Ok(u) = UserId::new(p) {
            assert_eq!(u.as_str(), p);
            segment_ok(u.as_str());
            assert!(u.as_str().len() <= 128);
        }
        if let Ok(n) = FileName::new(p) {
            assert_eq!(n.as_str(), p);
            segment_ok(n.as_str());
            assert!(n.as_str().len() <= 255);
        }
    }
    if let Ok(d) = Sha256Digest::from_hex(&text) {
        assert_eq!(d.to_hex(), text.to_ascii_lowercase());
    }
    if let Ok(d) = Sha256Digest::from_base64(&text) {
        assert_eq!(Sha256Digest::from_base64(&d.to_base64()), Ok(d));
    }
});

fn check(k: &ObjectKey) {
    let segs = k.local_segments();
    assert!(segs.len() == 2 || segs.len() == 3);
    for s in &segs {
        segment_ok(s);
    }
    assert_eq!(k.local_rel_path(), segs.join("/"));
    assert_eq!(ObjectKey::from_local_segments(&segs).as_ref(), Ok(k));
    let s3 = k.s3_key();
    match k.owner() {
        Some(u) => assert!(s3.starts_with(&format!("users/{u}/{}/", k.data_type()))),
        None => {
            assert!(s3.starts_with(&format!("{}/", k.data_type())) && !s3.starts_with("users/"))
        }
    }
    let levels = if k.owner().is_some() { 3 } else { 1 };
    assert_eq!(s3.matches('/').count(), levels, "no part adds a level");
}

/// One path segment that cannot step out of its directory or hide what it is.
fn segment_ok(s: &str) {
    assert!(!s.is_empty() && s != "." && s != "..", "segment {s:?}");
    for c in s.chars() {
        assert!(
            !matches!(
                c,
                '/' | '\\' | '\0' | '\u{2215}' | '\u{2044}' | '\u{FF0F}' | '\u{29F8}' | '\u{FF3C}'
            ) && !c.is_control(),
            "segment {s:?} holds {c:?}"
        );
    }
    assert!(!s.starts_with(' ') && !s.ends_with(' ') && !s.ends_with('.'), "segment {s:?}");
}
