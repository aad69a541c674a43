//! A corpus of bad input through the `kompass` CLI: path traversal and look-alike names, bad
//! user ids and types, broken encodings, malformed, huge and wrongly typed JSON, bad numbers,
//! bad configuration, and a tampered data directory.
//!
//! For every case: the exit status is the documented one (2 bad input or configuration, 3
//! refused by a limit, 4 not found; 1 only where the environment itself is broken), never 101
//! (a panic) nor a signal, with a message on stderr; no file appears outside the data
//! directory; and, for the cases run with S3, nothing appears in the bucket outside the
//! prefixes of the few odd-but-valid names, which must succeed and land exactly where the
//! layout says.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::support;
use crate::support::S3Env;
use crate::support::reliability::{kompass, sha, show, store, token};

/// One run of the CLI and what it must do.
#[derive(Debug, Clone)]
struct Case {
    /// What is tried (for messages).
    what: String,
    /// Arguments after `--data-dir DIR`.
    args: Vec<OsString>,
    /// Standard input.
    stdin: Vec<u8>,
    /// Extra environment variables.
    env: Vec<(OsString, OsString)>,
    /// Files written into the case's directory first (relative path, content).
    files: Vec<(String, Vec<u8>)>,
    /// A symbolic link made in the case's directory first (link path, target).
    symlink: Option<(String, PathBuf)>,
    /// Accepted exit statuses.
    codes: &'static [i32],
    /// With the S3 test server configured.
    s3: bool,
    /// For a valid case: the object key it must create (S3) or the data path (local).
    creates: Option<String>,
    /// Its expectation holds only with S3 configured (S3 settings, `presign` past the key).
    needs_s3: bool,
    /// Close the read end of stdout before the command writes.
    closed_stdout: bool,
}

const BAD: &[i32] = &[2];
const REFUSED: &[i32] = &[3];
const NOT_FOUND: &[i32] = &[4];
/// A broken environment (not the input): a plain failure is honest too.
const ENVIRONMENT: &[i32] = &[1, 2];
const OK: &[i32] = &[0];

impl Case {
    fn new(what: impl Into<String>, args: &[&str]) -> Self {
        Case {
            what: what.into(),
            args: args.iter().map(OsString::from).collect(),
            stdin: Vec::new(),
            env: Vec::new(),
            files: Vec::new(),
            symlink: None,
            codes: BAD,
            s3: false,
            creates: None,
            needs_s3: false,
            closed_stdout: false,
        }
    }
    fn os_args(what: impl Into<String>, args: Vec<OsString>) -> Self {
        Case { args, ..Case::new(what, &[]) }
    }
    fn codes(mut self, codes: &'static [i32]) -> Self {
        self.codes = codes;
        self
    }
    fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = bytes.into();
        self
    }
    fn env(mut self, k: impl Into<OsString>, v: impl Into<OsString>) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }
    fn file(mut self, rel: &str, bytes: impl Into<Vec<u8>>) -> Self {
        self.files.push((rel.to_owned(), bytes.into()));
        self
    }
    fn needs_s3(mut self) -> Self {
        self.s3 = true;
        self.needs_s3 = true;
        self
    }
    fn s3(mut self) -> Self {
        self.s3 = true;
        self
    }
}

/// Names that must be refused wherever a file name is taken. `{t}` is the run's token.
fn bad_names(t: &str) -> Vec<String> {
    let mut v: Vec<String> = [
        "",
        ".",
        "..",
        "../x.json",
        "x/..",
        "../../../../../../../../tmp/kompass-escape-{t}",
        "/tmp/kompass-escape-{t}",
        "a/b.json",
        "a\\b.json",
        "..\\..\\kompass-escape-{t}",
        "C:\\kompass-escape-{t}",
        "C:kompass-escape-{t}",
        "a:b",
        "a*b",
        "a?b",
        "a<b",
        "a>b",
        "a|b",
        "a\"b",
        " lead.json",
        "trail.json ",
        ".hidden",
        "dot.",
        "CON",
        "nul.json",
        "COM1.txt",
        "lpt9",
        "Aux.tar.gz",
        "a\u{1}b",
        "a\u{7f}b",
        "a\nb",
        "a\rb",
        "a\tb",
        "a\u{1b}[31mred",
        "a\u{200B}b",
        "a\u{202E}nosj.exe",
        "a\u{FEFF}b",
        "a\u{2028}b",
        "a\u{2215}b",
        "a\u{FF0F}b",
        "a\u{2044}b",
        "a\u{29F8}b",
        "a\u{FF3C}b",
        "a\u{2216}b",
        "a\u{00AD}b",
    ]
    .iter()
    .map(|s| s.replace("{t}", t))
    .collect();
    v.push("a".repeat(256));
    v.push("é".repeat(128) + ".j"); // 258 bytes in UTF-8
    v.push(format!("{}/../../kompass-escape-{t}", "x".repeat(10)));
    v
}

/// User ids that must be refused.
fn bad_users(t: &str) -> Vec<String> {
    let mut v: Vec<String> = [
        ".",
        "..",
        "../u{t}",
        "u{t}/../..",
        "a/b",
        "a\\b",
        "ü{t}",
        "a b",
        "a\tb",
        "a\nb",
        "a:b",
        "a*b",
        "%2e%2e",
        "a%2fb",
        "CON",
        "nul",
        ".u{t}",
        "u{t}.",
        "u{t}\u{202E}",
        "u{t}\u{200B}",
        "u{t}\u{FF0F}x",
        "users/u{t}",
        "u{t}#",
        "u{t}?x=1",
        "u{t}&",
    ]
    .iter()
    .map(|s| s.replace("{t}", t))
    .collect();
    v.push("u".repeat(129));
    v
}

/// Data types that must be refused.
const BAD_TYPES: &[&str] = &[
    "",
    "route",
    "Routes",
    "ROUTES",
    "routes/",
    "routes/../fitness",
    "../routes",
    "users",
    "fitness ",
    " routes",
    "training-data",
    "model",
    "routes\u{200B}",
    "ルート",
];

/// Names that are odd but valid: saved exactly under the layout's key, nowhere else.
fn odd_valid_names(t: &str) -> Vec<String> {
    [
        "café-{t}.json",
        "ride 1 {t}.json",
        "%2e%2e%2f{t}",
        "%2F..%2F{t}",
        "a..b-{t}.json",
        "日本語-{t}.json",
        "🚴-{t}.json",
        "$(touch pwned-{t})",
        "`touch pwned-{t}`",
        ";rm -rf ~;{t}",
        "{t}&x=1",
        "{t}#frag",
        "{t}+plus",
        "{t}'quote",
        "{t}~tilde=1",
    ]
    .iter()
    .map(|s| s.replace("{t}", t))
    .collect()
}

fn os(s: &str) -> OsString {
    OsString::from(s)
}

fn corpus(t: &str, home: &Path) -> Vec<Case> {
    let mut cases = Vec::new();
    let user = format!("bi-{t}");

    // Names: every command that takes one.
    for name in bad_names(t) {
        let shown = name.escape_debug().to_string();
        cases.push(
            Case::new(
                format!("save --name {shown:.80}"),
                &["save", "--user", &user, "--type", "routes", "--name", &name, "-"],
            )
            .stdin("{}")
            .s3(),
        );
        cases.push(
            Case::new(
                format!("load --name {shown:.80}"),
                &["load", "--user", &user, "--type", "routes", "--name", &name],
            )
            .s3(),
        );
        cases.push(
            Case::new(
                format!("delete --name {shown:.80}"),
                &["delete", "--user", &user, "--type", "routes", "--name", &name],
            )
            .s3(),
        );
        cases.push(
            Case::new(
                format!("presign --name {shown:.80}"),
                &[
                    "presign",
                    "--user",
                    &user,
                    "--type",
                    "routes",
                    "--name",
                    &name,
                    "--size",
                    "2",
                    "--sha256",
                    &"0".repeat(64),
                ],
            )
            .s3(),
        );
        cases.push(
            Case::new(
                format!("global save --name {shown:.80}"),
                &["save", "--type", "models", "--name", &name, "-"],
            )
            .stdin("x")
            .s3(),
        );
    }
    // User ids.
    for u in bad_users(t) {
        let shown = u.escape_debug().to_string();
        cases.push(
            Case::new(
                format!("save --user {shown:.80}"),
                &["save", "--user", &u, "--type", "routes", "--name", "a.json", "-"],
            )
            .stdin("{}")
            .s3(),
        );
        cases.push(
            Case::new(
                format!("list --user {shown:.80}"),
                &["list", "--user", &u, "--type", "routes"],
            )
            .s3(),
        );
        cases.push(
            Case::new(
                format!("migrate --user {shown:.80}"),
                &["migrate", "--user", &u, "--dry-run"],
            )
            .s3(),
        );
        cases.push(
            Case::new(format!("token --user {shown:.80}"), &["token", "--user", &u])
                .env("KOMPASS_SERVER_SECRET", "0123456789abcdef0123456789abcdef"),
        );
    }
    // Data types, and types in the wrong scope.
    for dt in BAD_TYPES {
        cases.push(
            Case::new(
                format!("save --type {dt:?}"),
                &["save", "--user", &user, "--type", dt, "--name", "a.json", "-"],
            )
            .stdin("{}")
            .s3(),
        );
        cases.push(
            Case::new(format!("list --type {dt:?}"), &["list", "--user", &user, "--type", dt]).s3(),
        );
    }
    cases.push(
        Case::new(
            "fitness without a user",
            &["save", "--type", "fitness", "--name", "a.json", "-"],
        )
        .stdin("{}")
        .s3(),
    );
    cases.push(
        Case::new(
            "models with a user",
            &["save", "--user", &user, "--type", "models", "--name", "a.bin", "-"],
        )
        .stdin("x")
        .s3(),
    );
    cases.push(
        Case::new(
            "training_data with a user",
            &["list", "--user", &user, "--type", "training_data"],
        )
        .s3(),
    );

    // Encodings: arguments that are not UTF-8.
    for (flag, which) in [("--name", 6), ("--user", 2), ("--type", 4)] {
        let mut args: Vec<OsString> =
            ["save", "--user", &user, "--type", "routes", "--name", "a.json", "-"]
                .iter()
                .map(|s| os(s))
                .collect();
        args[which] = OsString::from_vec(b"a\xff\xfe/../b".to_vec());
        cases.push(Case::os_args(format!("{flag} not UTF-8"), args).stdin("{}").s3());
        let mut overlong: Vec<OsString> =
            ["save", "--user", &user, "--type", "routes", "--name", "a.json", "-"]
                .iter()
                .map(|s| os(s))
                .collect();
        overlong[which] = OsString::from_vec(b"a\xc0\xaf\xc0\xafb".to_vec()); // overlong "/"
        cases.push(
            Case::os_args(format!("{flag} with overlong UTF-8 slashes"), overlong).stdin("{}").s3(),
        );
    }
    cases.push(Case::os_args(
        "a file argument that is not UTF-8 and missing",
        vec![os("scrub"), OsString::from_vec(b"/nonexistent/\xff".to_vec())],
    ));

    // Rider data and scrub: not JSON, not UTF-8, not a document, unreadable.
    let rider_key = ("KOMPASS_PSEUDONYM_KEY", "0123456789abcdef0123456789abcdef");
    let bad_json: Vec<(&str, Vec<u8>)> = vec![
        ("empty", b"".to_vec()),
        ("whitespace", b"  \n\t ".to_vec()),
        ("truncated", b"{\"athlete\": {\"id\": 1".to_vec()),
        ("trailing garbage", b"{} x".to_vec()),
        ("two documents", b"{}{}".to_vec()),
        ("NaN", b"{\"stats\": {\"x\": NaN}}".to_vec()),
        ("Infinity", b"[{\"distance\": Infinity}]".to_vec()),
        ("single quotes", b"{'athlete': {}}".to_vec()),
        ("comments", b"// c\n{}".to_vec()),
        ("a string", b"\"athlete\"".to_vec()),
        ("a number", b"42".to_vec()),
        ("null", b"null".to_vec()),
        ("true", b"true".to_vec()),
        ("latin-1 bytes", b"{\"name\": \"Jos\xe9\"}".to_vec()),
        ("UTF-16 with BOM", b"\xff\xfe{\x00}\x00".to_vec()),
        ("lone surrogate escape is fine, raw one is not", b"{\"a\": \"\xed\xa0\x80\"}".to_vec()),
        ("NUL byte", b"{\"a\":\x00}".to_vec()),
        ("unterminated string", b"{\"a\": \"abc".to_vec()),
        ("huge number exponent", b"{\"stats\": {\"x\": 1e999999999}".to_vec()),
        ("deep unclosed", "[".repeat(200_000).into_bytes()),
        ("huge truncated", {
            let mut v = b"{\"activities\": [".to_vec();
            v.extend(std::iter::repeat_n(b"{\"distance\": 1.5},".as_slice(), 400_000).flatten());
            v
        }),
    ];
    for (what, body) in &bad_json {
        cases.push(Case::new(format!("scrub {what}"), &["scrub", "-"]).stdin(body.clone()));
        cases.push(
            Case::new(
                format!("scrub --report {what} (file)"),
                &["--json", "scrub", "--report", "in.json"],
            )
            .file("in.json", body.clone()),
        );
        cases.push(
            Case::new(format!("rider save {what}"), &["rider", "save", "--user", &user, "in.json"])
                .file("in.json", body.clone())
                .env(rider_key.0, rider_key.1)
                .s3(),
        );
    }
    cases.push(
        Case::new(
            "rider save without a pseudonym key",
            &["rider", "save", "--user", &user, "in.json"],
        )
        .file("in.json", "{}")
        .s3(),
    );
    cases.push(
        Case::new(
            "rider save with a short pseudonym key",
            &["rider", "save", "--user", &user, "in.json"],
        )
        .file("in.json", "{}")
        .env("KOMPASS_PSEUDONYM_KEY", "short")
        .s3(),
    );
    cases.push(
        Case::new(
            "rider save of a missing file",
            &["rider", "save", "--user", &user, "missing.json"],
        )
        .env(rider_key.0, rider_key.1),
    );
    cases.push(
        Case::new("rider save of a directory", &["rider", "save", "--user", &user, "."])
            .env(rider_key.0, rider_key.1),
    );
    cases.push(Case::new(
        "save of a missing file",
        &["save", "--user", &user, "--type", "routes", "--name", "a.json", "missing.json"],
    ));
    cases.push(Case::new(
        "save of a directory",
        &["save", "--user", &user, "--type", "routes", "--name", "a.json", "."],
    ));
    cases.push(
        Case::new("scrub of /dev/null-like empty file", &["scrub", "empty.json"])
            .file("empty.json", ""),
    );
    cases.push(
        Case::new(
            "rider load with a traversal name",
            &["rider", "load", "--user", &user, "--name", "../../x"],
        )
        .s3(),
    );

    // Sizes and limits.
    cases.push(
        Case::new(
            "save over the file size limit (stdin)",
            &["save", "--user", &user, "--type", "routes", "--name", "big.json", "-"],
        )
        .stdin(vec![b'x'; 1024 * 1024 + 1])
        .env("S3_MAX_FILE_SIZE_MB", "1")
        .codes(REFUSED)
        .s3(),
    );
    cases.push(
        Case::new(
            "save of 51 MB at the default 50 MB limit",
            &["save", "--user", &user, "--type", "routes", "--name", "big2.json", "-"],
        )
        .stdin(vec![b'y'; 51 * 1024 * 1024])
        .codes(REFUSED)
        .s3(),
    );
    cases.push(
        Case::new(
            "presign over the file size limit",
            &[
                "presign",
                "--user",
                &user,
                "--type",
                "routes",
                "--name",
                "a.json",
                "--size",
                "52428801",
                "--sha256",
                &"a".repeat(64),
            ],
        )
        .codes(REFUSED)
        .s3(),
    );
    let presign = |what: &str, size: &str, sha: &str, expires: &str| {
        Case::new(
            format!("presign {what}"),
            &[
                "presign",
                "--user",
                &user,
                "--type",
                "routes",
                "--name",
                "a.json",
                "--size",
                size,
                "--sha256",
                sha,
                "--expires",
                expires,
            ],
        )
        .s3()
    };
    let good_sha = "a".repeat(64);
    for (what, size, sha, expires) in [
        ("negative size", "-1", good_sha.as_str(), "60"),
        ("size with exponent", "1e3", &good_sha, "60"),
        ("size overflowing u64", "99999999999999999999999", &good_sha, "60"),
        ("size not a number", "ten", &good_sha, "60"),
        ("sha256 not hex", "2", "zz", "60"),
        ("sha256 63 digits", "2", &"a".repeat(63), "60"),
        ("sha256 65 digits", "2", &"a".repeat(65), "60"),
        ("sha256 with spaces", "2", &format!(" {}", "a".repeat(63)), "60"),
        ("expires 0", "2", &good_sha, "0"),
        ("expires over 7 days", "2", &good_sha, "604801"),
        ("expires u64::MAX", "2", &good_sha, "18446744073709551615"),
        ("expires negative", "2", &good_sha, "-5"),
    ] {
        cases.push(presign(what, size, sha, expires).needs_s3());
    }
    cases.push(
        Case::new("migrate --concurrency 0", &["migrate", "--concurrency", "0", "--dry-run"]).s3(),
    );
    cases.push(
        Case::new(
            "migrate --concurrency 100000",
            &["migrate", "--concurrency", "100000", "--dry-run"],
        )
        .s3(),
    );
    cases.push(Case::new("migrate --concurrency -1", &["migrate", "--concurrency", "-1"]).s3());
    cases.push(
        Case::new("token --expires 0", &["token", "--user", &user, "--expires", "0"])
            .env("KOMPASS_SERVER_SECRET", "0123456789abcdef0123456789abcdef"),
    );
    cases.push(Case::new("token without a server secret", &["token", "--user", &user]));
    cases.push(
        Case::new("token with a short server secret", &["token", "--user", &user])
            .env("KOMPASS_SERVER_SECRET", "short"),
    );

    // Not found.
    cases.push(
        Case::new(
            "load of a missing file",
            &["load", "--user", &user, "--type", "routes", "--name", "missing.json"],
        )
        .codes(NOT_FOUND)
        .s3(),
    );
    cases.push(
        Case::new(
            "delete of a missing file",
            &["delete", "--user", &user, "--type", "routes", "--name", "missing.json"],
        )
        .codes(NOT_FOUND)
        .s3(),
    );
    cases.push(
        Case::new("rider load with no data", &["rider", "load", "--user", &user])
            .codes(NOT_FOUND)
            .env(rider_key.0, rider_key.1)
            .s3(),
    );

    // The command line itself.
    for (what, args) in [
        ("no command", vec![]),
        ("unknown command", vec!["upload"]),
        ("unknown flag", vec!["list", "--user", "u", "--type", "routes", "--recursive"]),
        ("missing --type", vec!["list", "--user", "u"]),
        ("missing --name", vec!["save", "--type", "routes", "-"]),
        ("flag without value", vec!["save", "--user"]),
        ("--json=maybe", vec!["--json=maybe", "status"]),
        ("two files", vec!["save", "--type", "routes", "--name", "a", "f1", "f2"]),
    ] {
        cases.push(Case::new(format!("cli: {what}"), &args));
    }

    // Configuration.
    for (var, value) in [
        ("S3_MAX_FILE_SIZE_MB", "abc"),
        ("S3_MAX_FILE_SIZE_MB", "-1"),
        ("S3_MAX_FILE_SIZE_MB", "NaN"),
        ("S3_MAX_FILE_SIZE_MB", "1e3"),
        ("S3_MAX_FILE_SIZE_MB", "99999999"),
        ("S3_MAX_FILE_SIZE_MB", "0"),
        ("S3_MAX_USER_STORAGE_MB", "inf"),
        ("S3_MAX_TOTAL_STORAGE_GB", "4,5"),
        ("S3_CLEANUP_THRESHOLD_PERCENT", "0"),
        ("S3_CLEANUP_THRESHOLD_PERCENT", "101"),
        ("S3_CLEANUP_THRESHOLD_PERCENT", "70%"),
        ("S3_MIN_FILES_TO_KEEP", "-1"),
        ("S3_MIN_FILES_TO_KEEP", "five"),
        ("S3_AUTO_CLEANUP_ENABLED", "maybe"),
        ("S3_STORAGE_ENABLED", "yes please"),
        ("AWS_ENDPOINT_URL", "ftp://127.0.0.1:1"),
        ("AWS_ENDPOINT_URL", "not a url"),
        ("AWS_ENDPOINT_URL", "http://"),
        ("AWS_ENDPOINT_URL", "http://user:pass@127.0.0.1:1"),
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:1/path?q=1"),
        ("AWS_S3_BUCKET", "../etc"),
        ("AWS_S3_BUCKET", "Bad_Bucket"),
        ("AWS_S3_BUCKET", ""),
        ("AWS_REGION", "us east 1"),
        ("AWS_REGION", "us-east-1/../x"),
    ] {
        {
            let case = Case::new(
                format!("config {var}={value:?}"),
                &["--json", "list", "--user", &user, "--type", "routes"],
            )
            .env(var, value);
            // AWS_* settings are only read with S3 enabled.
            cases.push(if var.starts_with("AWS_") { case.needs_s3() } else { case.s3() });
        }
    }
    cases.push(
        Case::os_args("config AWS_REGION not UTF-8", ["status"].iter().map(|s| os(s)).collect())
            .env("AWS_REGION", OsString::from_vec(b"us-\xffeast".to_vec()))
            .s3(),
    );
    cases.push(
        Case::new("a non-UTF-8 variable of another program is ignored", &["scrub", "-"])
            .stdin("{}")
            .env("SOME_OTHER_TOOL", OsString::from_vec(b"\xff\xfe".to_vec()))
            .codes(OK),
    );
    cases.push(
        Case::new(".env with a malformed line", &["status"])
            .file(".env", "S3_STORAGE_ENABLED=false\nthis is not an assignment\n"),
    );
    cases.push(
        Case::new(".env not UTF-8", &["status"])
            .file(".env", b"DATA_DIRECTORY=\xff\xfe\n".to_vec()),
    );
    cases.push(
        Case::new(".env with a bad value", &["status"]).file(".env", "S3_MIN_FILES_TO_KEEP=lots\n"),
    );
    cases.push(
        Case::new(".env unterminated quote", &["status"]).file(".env", "AWS_REGION=\"us-east-1\n"),
    );
    cases.push(
        Case::new(
            "rider save of non-JSON standard input",
            &["rider", "save", "--user", &user, "-"],
        )
        .stdin("not json")
        .env(rider_key.0, rider_key.1),
    );

    // A tampered data directory (the environment, not the input).
    let outside = home.join("outside");
    let mut linked = Case::new(
        "save through a symlinked user folder",
        &["save", "--user", &user, "--type", "routes", "--name", "a.json", "-"],
    )
    .stdin("{}")
    .codes(ENVIRONMENT);
    linked.symlink = Some((format!("data/routes/{user}"), outside.clone()));
    cases.push(linked);
    let mut linked_type = Case::new(
        "save through a symlinked type folder",
        &["save", "--type", "models", "--name", "m.bin", "-"],
    )
    .stdin("x")
    .codes(ENVIRONMENT);
    linked_type.symlink = Some(("data/models".to_owned(), outside.clone()));
    cases.push(linked_type);
    let mut linked_file = Case::new(
        "save over a symlinked file",
        &["save", "--user", &user, "--type", "routes", "--name", "l.json", "-"],
    )
    .stdin("{}")
    .codes(ENVIRONMENT);
    linked_file.symlink = Some((format!("data/routes/{user}/l.json"), outside.join("target.json")));
    cases.push(linked_file);
    let mut linked_state = Case::new(
        "a symlinked state directory",
        &["save", "--user", &user, "--type", "routes", "--name", "s.json", "-"],
    )
    .stdin("{}")
    .codes(&[0, 1, 2]);
    linked_state.symlink = Some(("data/.kompass".to_owned(), outside.clone()));
    cases.push(linked_state);
    cases.push(
        Case::new(
            "the data directory is a file",
            &["save", "--user", &user, "--type", "routes", "--name", "a.json", "-"],
        )
        .stdin("{}")
        .file("data", "not a directory")
        .codes(ENVIRONMENT),
    );
    // A reader that went away: a quiet end or a plain failure with a message, never a panic.
    let mut closed =
        Case::new("stdout closed before the JSON is written", &["--json", "scrub", "-"])
            .stdin("{}")
            .codes(&[0, 1]);
    closed.closed_stdout = true;
    cases.push(closed);
    let mut closed_list = Case::new(
        "stdout closed for a listing",
        &["--json", "list", "--user", &user, "--type", "routes"],
    )
    .codes(&[0, 1])
    .s3();
    closed_list.closed_stdout = true;
    cases.push(closed_list);

    // Odd but valid names: saved exactly under the layout's key.
    for name in odd_valid_names(t) {
        let mut c = Case::new(
            format!("odd but valid name {name:?}"),
            &["--json", "save", "--user", &user, "--type", "routes", "--name", &name, "-"],
        )
        .stdin(format!("{{\"name\": {:?}}}", name))
        .codes(OK)
        .s3();
        c.creates = Some(format!("users/{user}/routes/{name}"));
        cases.push(c);
    }
    let mut long = Case::new(
        "a 255-byte name (local)",
        &["--json", "save", "--user", &user, "--type", "routes", "--name", &"n".repeat(255), "-"],
    )
    .stdin("{}")
    .codes(OK);
    long.creates = Some(format!("routes/{user}/{}", "n".repeat(255)));
    cases.push(long);
    cases
}

/// Every file (not directory) below `dir`, as paths.
fn files(dir: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                stack.push(e.path());
            } else {
                out.insert(e.path());
            }
        }
    }
    out
}

/// Runs one case in its own directory; returns the problems found.
fn run_case(
    case: &Case,
    root: &Path,
    n: usize,
    env: Option<&S3Env>,
    outside: &Path,
) -> Vec<String> {
    let dir = root.join(format!("case-{n}"));
    std::fs::create_dir_all(&dir).unwrap();
    for (rel, body) in &case.files {
        std::fs::write(dir.join(rel), body).unwrap();
    }
    if let Some((link, target)) = &case.symlink {
        let link = dir.join(link);
        std::fs::create_dir_all(link.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(target, link).unwrap();
    }
    let before = files(&dir);
    let outside_before = files(outside);
    let mut cmd: Command = kompass(&dir, if case.s3 { env } else { None }, &[], &[]);
    cmd.args(&case.args).stdin(Stdio::piped()).stderr(Stdio::piped());
    for (k, v) in &case.env {
        cmd.env(k, v);
    }
    // A child's stdout whose reader is gone: a pipe whose read end we close at once.
    cmd.stdout(Stdio::piped());
    let mut child = cmd.spawn().expect("kompass starts");
    let stdout = child.stdout.take().unwrap();
    let reader = if case.closed_stdout {
        drop(stdout);
        None
    } else {
        Some(std::thread::spawn(move || {
            let mut s = stdout;
            let mut buf = Vec::new();
            std::io::Read::read_to_end(&mut s, &mut buf).unwrap();
            buf
        }))
    };
    {
        let mut stdin = child.stdin.take().unwrap();
        // The command may stop reading early (a refusal): a broken pipe here is fine.
        let _ = std::io::Write::write_all(&mut stdin, &case.stdin);
    }
    let out = child.wait_with_output().unwrap();
    let stdout = reader.map(|r| r.join().unwrap()).unwrap_or_default();
    let out = std::process::Output { stdout, ..out };

    let mut problems = Vec::new();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let code = out.status.code();
    match code {
        None => problems.push(format!("killed by a signal: {}", show(&out))),
        Some(101) => problems.push(format!("PANIC: {}", show(&out))),
        Some(c) if !case.codes.contains(&c) => {
            problems.push(format!("exit {c}, expected one of {:?}: {}", case.codes, show(&out)))
        }
        _ => {}
    }
    if stderr.contains("panicked") || stderr.contains("RUST_BACKTRACE") {
        problems.push(format!("a panic message: {stderr}"));
    }
    if code != Some(0) && !stderr.contains("error") {
        problems.push(format!("no error message on stderr: {}", show(&out)));
    }
    // Files: new ones only inside the data directory (and, for a failure, only kompass's state).
    let data = dir.join("data");
    for f in files(&dir).difference(&before) {
        let inside = f.starts_with(&data);
        let allowed = inside && (code == Some(0) || f.starts_with(data.join(".kompass")));
        if !allowed {
            problems.push(format!("created {} (exit {code:?})", f.display()));
        }
    }
    if let Some(rel) = &case.creates
        && !case.s3
        && !data.join(rel).is_file()
    {
        problems.push(format!("{rel} was not created in the data directory"));
    }
    for f in files(outside).difference(&outside_before) {
        problems.push(format!("wrote outside the data directory, through a link: {}", f.display()));
    }
    problems
}

#[test]
fn the_cli_refuses_bad_input_clearly_without_panics_or_escapes() {
    const TEST: &str = "the_cli_refuses_bad_input";
    let env = support::s3_env(TEST);
    let t = token();
    let root = tempfile::tempdir().unwrap();
    let outside = root.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let mut cases = corpus(&t, root.path());
    if env.is_none() {
        // Without S3 the S3 cases still run locally (validation comes before any backend),
        // except those whose expectation needs S3 configured.
        cases.retain(|c| !c.needs_s3);
        for c in &mut cases {
            if c.s3 && c.creates.is_some() {
                c.creates = None;
            }
        }
    }
    let total = cases.len();
    assert!(total >= 200, "the corpus has {total} cases; at least 200 are promised");
    let started = Instant::now();

    // Four at a time.
    let mut problems: Vec<String> = Vec::new();
    let chunks: Vec<Vec<(usize, Case)>> = {
        let mut c: Vec<Vec<(usize, Case)>> = vec![Vec::new(); 4];
        for (i, case) in cases.iter().cloned().enumerate() {
            c[i % 4].push((i, case));
        }
        c
    };
    std::thread::scope(|s| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                let (env, root, outside) = (env.clone(), root.path(), outside.as_path());
                s.spawn(move || {
                    let mut found = Vec::new();
                    for (i, case) in chunk {
                        for p in run_case(&case, root, i, env.as_ref(), outside) {
                            found.push(format!("case {i} ({}): {p}", case.what));
                        }
                    }
                    found
                })
            })
            .collect();
        for h in handles {
            problems.extend(h.join().unwrap());
        }
    });

    // Escapes by absolute or relative traversal: none of the targets exists.
    for p in [std::env::temp_dir(), PathBuf::from("/tmp"), root.path().to_path_buf()] {
        if let Ok(rd) = std::fs::read_dir(&p) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.contains(&format!("kompass-escape-{t}"))
                    || name.contains(&format!("pwned-{t}"))
                {
                    problems.push(format!("escape: {} exists", e.path().display()));
                }
            }
        }
    }

    // The bucket: keys of this run only where the odd-but-valid names say, each holding its body.
    let mut checked_keys = 0;
    if let Some(env) = &env {
        let expected: BTreeSet<String> =
            cases.iter().filter(|c| c.s3).filter_map(|c| c.creates.clone()).collect();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let s3 = store(env);
        let all = rt.block_on(s3.list("")).unwrap();
        for o in all.iter().filter(|o| o.key.contains(&t)) {
            checked_keys += 1;
            if !expected.contains(&o.key) {
                problems.push(format!("unexpected object in the bucket: {:?}", o.key));
            }
        }
        for key in &expected {
            let case = cases.iter().find(|c| c.creates.as_ref() == Some(key)).unwrap();
            match rt.block_on(s3.get(key)) {
                Ok(body) if sha(&body) == sha(&case.stdin) => {}
                Ok(_) => problems.push(format!("{key:?} holds other content")),
                Err(e) => problems.push(format!("{key:?} was not stored: {e}")),
            }
        }
    }

    assert!(
        problems.is_empty(),
        "{} problems in {total} cases:\n{}",
        problems.len(),
        problems.join("\n")
    );
    let rejected = cases.iter().filter(|c| !c.codes.contains(&0)).count();
    eprintln!(
        "RESULT bad-input CLI: {total} cases ({rejected} must be refused, {} valid or environment cases) in {:.0?}: 0 panics, 0 signals, every refusal with its exit status and a message, 0 files outside the data directory, 0 escapes; {checked_keys} keys of this run in the bucket, all expected and whole",
        total - rejected,
        started.elapsed()
    );
}
