//! Names that could escape their prefix are refused with the problem named; valid keys
//! round-trip between the S3 layout and the local layout.

use kompass_core::key::{DataType, FileName, ObjectKey, Part, Problem, UserId};

/// A bad name and a predicate on the problem it must be refused with.
type Case = (String, fn(&Problem) -> bool);

fn bad_names() -> Vec<Case> {
    let mut cases: Vec<Case> = vec![
        (String::new(), |p| *p == Problem::Empty),
        (".".into(), |p| *p == Problem::DotSegment),
        ("..".into(), |p| *p == Problem::DotSegment),
        ("x".repeat(256), |p| matches!(p, Problem::TooLong { .. })),
        ("é".repeat(128), |p| matches!(p, Problem::TooLong { bytes: 256, .. })),
        ("CON".into(), |p| *p == Problem::ReservedName),
        ("nul.json".into(), |p| *p == Problem::ReservedName),
        ("com1".into(), |p| *p == Problem::ReservedName),
        ("LPT9.txt".into(), |p| *p == Problem::ReservedName),
        ("aux".into(), |p| *p == Problem::ReservedName),
    ];
    let sep = |p: &Problem| matches!(p, Problem::Separator(_));
    for s in [
        "../etc/passwd",
        "..\\..\\boot.ini",
        "/etc/passwd",
        "/",
        "\\",
        "a/b",
        "a\\b",
        "..%2f/x",
        "./a",
        "a/..",
        "C:\\Windows",
        "\\\\server\\share",
        "//double",
        "users/bob/routes/x.json",
        "foo/",
        "/foo",
        "..//..//x",
        "a/./b",
        "/root/.ssh/id_rsa",
        "~/../../x",
        "%2e%2e/x",
        "....//....//x",
        "\\?\\C:\\x",
        "file:///etc/passwd",
        "saved_routes/../x",
        "a\\..\\b",
    ] {
        cases.push((s.into(), sep));
    }
    let look = |p: &Problem| matches!(p, Problem::LookalikeSlash(_));
    for c in [
        '\u{2215}', '\u{FF0F}', '\u{2044}', '\u{29F8}', '\u{FF3C}', '\u{2216}', '\u{FE68}',
        '\u{29F9}', '\u{29F5}', '\u{2571}',
    ] {
        cases.push((format!("a{c}b"), look));
        cases.push((format!("..{c}..{c}etc"), look));
    }
    let ctl = |p: &Problem| matches!(p, Problem::Control(_));
    for c in [
        '\0', '\u{1}', '\t', '\n', '\r', '\u{1b}', '\u{7f}', '\u{85}', '\u{9f}', '\u{200B}',
        '\u{200E}', '\u{202E}', '\u{2066}', '\u{FEFF}', '\u{2028}', '\u{AD}',
    ] {
        cases.push((format!("ride{c}.json"), ctl));
        cases.push((format!("{c}x"), ctl));
    }
    let edge = |p: &Problem| matches!(p, Problem::LeadingOrTrailing(_));
    for s in [
        ".hidden",
        "trailing.",
        " lead",
        "trail ",
        "...",
        ". x",
        "x .",
        "\u{3000}wide",
        "nbsp\u{a0}",
        "..x",
        "x..",
    ] {
        cases.push((s.into(), edge));
    }
    let forb = |p: &Problem| matches!(p, Problem::Forbidden(_));
    for s in ["a:b", "C:", "what?", "star*", "<tag>", "pipe|x", "quote\"x", "x>y"] {
        cases.push((s.into(), forb));
    }
    cases
}

#[test]
fn at_least_100_bad_file_names_are_refused_with_the_problem_named() {
    let cases = bad_names();
    assert!(cases.len() >= 100, "only {} cases", cases.len());
    for (name, expected) in &cases {
        let err = FileName::new(name).expect_err(name);
        assert_eq!(err.part, Part::FileName);
        assert!(expected(&err.problem), "{name:?}: unexpected problem {:?}", err.problem);
        // The message names the part and what is wrong, and shows no raw control character.
        let msg = err.to_string();
        assert!(msg.starts_with("invalid file name "), "{msg}");
        assert!(!msg.chars().any(|c| c.is_control()), "{msg:?}");
    }
}

#[test]
fn the_same_bad_names_are_refused_as_user_ids() {
    for (name, _) in bad_names() {
        let err = UserId::new(&name).expect_err(&name);
        assert_eq!(err.part, Part::UserId, "{name:?}");
    }
}

#[test]
fn user_ids_use_a_narrow_alphabet() {
    for ok in ["12345678", "rider_42", "a.b-c@d", "k1-0f3a"] {
        assert!(UserId::new(ok).is_ok(), "{ok}");
    }
    for bad in ["jöhn", "a b", "a+b", "a%2fb", "a#b", "a&b", "😀"] {
        let e = UserId::new(bad).expect_err(bad);
        assert!(matches!(e.problem, Problem::Forbidden(_)), "{bad}: {e}");
    }
    let e = UserId::new(&"u".repeat(129)).unwrap_err();
    assert!(matches!(e.problem, Problem::TooLong { max: 128, .. }));
}

#[test]
fn unicode_file_names_that_are_safe_are_kept() {
    for ok in ["Tour de France étape 3.json", "東京ライド.json", "ride (1).json", "x", "a..b.json"]
    {
        assert_eq!(FileName::new(ok).unwrap().as_str(), ok);
    }
    assert!(FileName::new(&"x".repeat(255)).is_ok());
}

#[test]
fn s3_keys_outside_the_layouts_are_refused() {
    for bad in [
        "users/u1/routes",
        "users/u1/routes/a/b.json",
        "users//routes/a.json",
        "users/../routes/a.json",
        "routes/../../a.json",
        "routes",
        "users/u1",
        "/routes/a.json",
        "routes/a.json/",
        "photos/a.json",
        "users/u1/models/m.bin",
        "fitness/f.json",
        "users/u1/routes/\u{2215}x",
    ] {
        assert!(ObjectKey::from_s3_key(bad).is_err(), "{bad}");
    }
}

#[test]
fn every_valid_key_round_trips_between_s3_and_local() {
    let users = ["1", "rider_42", "a.b@c"];
    let names = ["a.json", "fitness_data_20240601_120000.json", "modèle v2.bin"];
    let mut n = 0;
    for dt in DataType::ALL {
        for name in names {
            for owner in std::iter::once(None).chain(users.iter().map(Some)) {
                let Ok(key) = ObjectKey::parse_parts(owner.copied(), dt.as_str(), name) else {
                    continue;
                };
                let s3 = key.s3_key();
                let local = key.local_rel_path();
                match owner {
                    Some(u) => {
                        assert_eq!(s3, format!("users/{u}/{dt}/{name}"));
                        assert_eq!(local, format!("{dt}/{u}/{name}"));
                    }
                    None => {
                        assert_eq!(s3, format!("{dt}/{name}"));
                        assert_eq!(local, format!("{dt}/{name}"));
                    }
                }
                assert_eq!(ObjectKey::from_s3_key(&s3).unwrap(), key);
                let segs: Vec<&str> = local.split('/').collect();
                assert_eq!(ObjectKey::from_local_segments(&segs).unwrap(), key);
                n += 1;
            }
        }
    }
    // routes: user+global, fitness: user, models/training_data: global.
    assert_eq!(n, 3 * (4 + 3 + 1 + 1));
}

#[test]
fn serde_validates_on_the_way_in() {
    let u: Result<UserId, _> = serde_json::from_str("\"../x\"");
    assert!(u.is_err());
    let f: FileName = serde_json::from_str("\"ok.json\"").unwrap();
    assert_eq!(f.as_str(), "ok.json");
    let t: DataType = serde_json::from_str("\"training_data\"").unwrap();
    assert_eq!(t, DataType::TrainingData);
}
