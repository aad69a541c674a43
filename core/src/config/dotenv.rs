//! `.env` files: parsing (pure; the native side reads the file) and merging with the environment.
//!
//! Accepted syntax, one assignment per line:
//! - `KEY=VALUE`, with optional spaces around `=` and an optional leading `export `;
//!   keys are `[A-Za-z_][A-Za-z0-9_]*`.
//! - Blank lines and lines starting with `#` are ignored.
//! - Unquoted values run to the end of the line; a `#` preceded by whitespace starts a comment
//!   (as in a shell, so `KEY=a#b` keeps `a#b` and `KEY=#b` is `#b`, while `KEY= #b` is empty);
//!   surrounding whitespace is trimmed.
//! - `'single quoted'` values are literal. `"double quoted"` values decode `\n`, `\r`, `\t`,
//!   `\\`, `\"`, `\'` and `\$`; any other backslash is kept as written. Quoted values may span
//!   lines. After the closing quote only whitespace and a comment may follow.
//! - No `${VAR}` interpolation: a `$` is literal, so a secret containing `$` survives intact.
//!
//! Error messages give line numbers but never echo the line: it may hold a secret.

use std::collections::BTreeMap;

/// What is wrong with one line of a `.env` file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DotenvProblemKind {
    /// The line is neither blank, a comment, nor `KEY=VALUE`.
    #[error("expected KEY=VALUE (or a # comment)")]
    MissingEquals,
    /// The name before `=` is not a valid variable name.
    #[error("the name before '=' must be letters, digits and '_', not starting with a digit")]
    InvalidKey,
    /// A quoted value has no closing quote before the end of the file.
    #[error("the value opened with {quote} is never closed; add the closing {quote}")]
    UnterminatedQuote {
        /// The opening quote character.
        quote: char,
    },
    /// Something other than a comment follows the closing quote.
    #[error("unexpected text after the closing quote; only a # comment may follow")]
    TrailingText,
}

/// One bad line of a `.env` file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {kind}")]
pub struct DotenvProblem {
    /// 1-based line number where the assignment starts.
    pub line: usize,
    /// What is wrong.
    pub kind: DotenvProblemKind,
}

/// Every bad line of a `.env` file, reported together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the .env file has {} bad line(s): {}", .problems.len(), list(.problems))]
pub struct DotenvError {
    /// The problems, in file order.
    pub problems: Vec<DotenvProblem>,
}

fn list(problems: &[DotenvProblem]) -> String {
    problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("; ")
}

/// Parses a `.env` file into assignments in file order (duplicates kept; the last one wins
/// in [`merge_env`]). Every bad line is reported at once.
pub fn parse_dotenv(input: &str) -> Result<Vec<(String, String)>, DotenvError> {
    let input = input.strip_prefix('\u{feff}').unwrap_or(input);
    let mut out = Vec::new();
    let mut problems = Vec::new();
    let mut pos = 0usize; // byte offset of the current line's start
    let mut line_no = 1usize;

    while pos < input.len() {
        let start_line = line_no;
        let line_end = input[pos..].find('\n').map_or(input.len(), |i| pos + i);
        let line = input[pos..line_end].trim_end_matches('\r');
        // Where the next line starts unless a multi-line quote moves it.
        let mut next = line_end + 1;
        let mut next_line_no = line_no + 1;

        let body = line.trim_start();
        if body.is_empty() || body.starts_with('#') {
            pos = next;
            line_no = next_line_no;
            continue;
        }
        let body = strip_export(body);
        let Some(eq) = body.find('=') else {
            problems
                .push(DotenvProblem { line: start_line, kind: DotenvProblemKind::MissingEquals });
            pos = next;
            line_no = next_line_no;
            continue;
        };
        let key = body[..eq].trim();
        if !is_valid_key(key) {
            problems.push(DotenvProblem { line: start_line, kind: DotenvProblemKind::InvalidKey });
            pos = next;
            line_no = next_line_no;
            continue;
        }
        let raw = &body[eq + 1..];
        let after = raw.trim_start_matches([' ', '\t']);
        let value = match after.chars().next() {
            Some(q @ ('"' | '\'')) => {
                // Absolute offset of the character after the opening quote.
                let open = offset_in(input, after) + 1;
                match scan_quoted(input, open, q) {
                    Some((value, close, newlines)) => {
                        // `close` is the offset just after the closing quote.
                        let rest_end = input[close..].find('\n').map_or(input.len(), |i| close + i);
                        let rest = input[close..rest_end].trim_end_matches('\r').trim();
                        next = rest_end + 1;
                        next_line_no = line_no + newlines + 1;
                        if !(rest.is_empty() || rest.starts_with('#')) {
                            problems.push(DotenvProblem {
                                line: start_line,
                                kind: DotenvProblemKind::TrailingText,
                            });
                            pos = next;
                            line_no = next_line_no;
                            continue;
                        }
                        value
                    }
                    None => {
                        problems.push(DotenvProblem {
                            line: start_line,
                            kind: DotenvProblemKind::UnterminatedQuote { quote: q },
                        });
                        break;
                    }
                }
            }
            _ => unquoted_value(raw),
        };
        out.push((key.to_string(), value));
        pos = next;
        line_no = next_line_no;
    }

    if problems.is_empty() { Ok(out) } else { Err(DotenvError { problems }) }
}

/// Byte offset of `sub` within `whole` (`sub` must be a subslice of `whole`).
fn offset_in(whole: &str, sub: &str) -> usize {
    sub.as_ptr() as usize - whole.as_ptr() as usize
}

/// Drops a leading `export` keyword (followed by at least one space or tab).
fn strip_export(body: &str) -> &str {
    match body.strip_prefix("export") {
        Some(rest) if rest.starts_with([' ', '\t']) => rest.trim_start(),
        _ => body,
    }
}

fn is_valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// An unquoted value: up to a `#` preceded by whitespace, trimmed.
fn unquoted_value(raw: &str) -> String {
    let mut prev_ws = false; // as in a shell, `KEY=#x` is the value `#x`
    let mut end = raw.len();
    for (i, c) in raw.char_indices() {
        if c == '#' && prev_ws {
            end = i;
            break;
        }
        prev_ws = c == ' ' || c == '\t';
    }
    raw[..end].trim().to_string()
}

/// Scans a quoted value starting at byte `from` (just after the opening quote). Returns the
/// decoded value, the offset just after the closing quote and how many newlines it spanned.
fn scan_quoted(input: &str, from: usize, quote: char) -> Option<(String, usize, usize)> {
    let mut value = String::new();
    let mut newlines = 0;
    let mut chars = input[from..].char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            c if c == quote => return Some((value, from + i + c.len_utf8(), newlines)),
            '\\' if quote == '"' => match chars.peek().map(|&(_, n)| n) {
                Some(n @ ('n' | 'r' | 't' | '\\' | '"' | '\'' | '$')) => {
                    chars.next();
                    value.push(match n {
                        'n' => '\n',
                        'r' => '\r',
                        't' => '\t',
                        other => other,
                    });
                }
                _ => value.push('\\'),
            },
            '\r' if matches!(chars.peek(), Some((_, '\n'))) => {} // CRLF inside quotes → LF
            '\n' => {
                newlines += 1;
                value.push('\n');
            }
            other => value.push(other),
        }
    }
    None
}

/// Merges `.env` assignments with the process environment; the environment wins, and among
/// duplicate `.env` keys the last wins.
pub fn merge_env<D, E>(dotenv: D, environment: E) -> BTreeMap<String, String>
where
    D: IntoIterator<Item = (String, String)>,
    E: IntoIterator<Item = (String, String)>,
{
    let mut merged: BTreeMap<String, String> = dotenv.into_iter().collect();
    merged.extend(environment);
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Vec<(String, String)> {
        parse_dotenv(s).unwrap_or_else(|e| panic!("{e}"))
    }

    fn kv(k: &str, v: &str) -> (String, String) {
        (k.to_string(), v.to_string())
    }

    #[test]
    fn plain_assignments_comments_and_blank_lines() {
        let got = parse("# header\n\nA=1\n  B = two words  \n\t# indented comment\nC=\n");
        assert_eq!(got, vec![kv("A", "1"), kv("B", "two words"), kv("C", "")]);
    }

    #[test]
    fn export_prefix_is_dropped_but_a_key_named_export_is_not() {
        let got = parse("export A=1\nexport\tB=2\nexportC=3\nexport=4\n");
        assert_eq!(got, vec![kv("A", "1"), kv("B", "2"), kv("exportC", "3"), kv("export", "4")]);
    }

    #[test]
    fn inline_comments_need_whitespace_before_the_hash() {
        let got = parse("A=value # comment\nB=a#b\nC= # only a comment\nD=#literal\n");
        assert_eq!(got, vec![kv("A", "value"), kv("B", "a#b"), kv("C", ""), kv("D", "#literal")]);
    }

    #[test]
    fn single_quotes_are_literal() {
        let got = parse(r#"A='a "b" \n $HOME # not a comment'"#);
        assert_eq!(got, vec![kv("A", r#"a "b" \n $HOME # not a comment"#)]);
    }

    #[test]
    fn double_quotes_decode_escapes_and_keep_unknown_ones() {
        let got = parse(r#"A="line1\nline2\t\"q\" \\ \$x \q" # comment"#);
        assert_eq!(got, vec![kv("A", "line1\nline2\t\"q\" \\ $x \\q")]);
    }

    #[test]
    fn quoted_values_keep_surrounding_spaces_and_may_be_empty() {
        let got = parse("A=\"  padded  \"\nB=''\nC=\"\"\n");
        assert_eq!(got, vec![kv("A", "  padded  "), kv("B", ""), kv("C", "")]);
    }

    #[test]
    fn quoted_values_may_span_lines_and_line_numbers_stay_right() {
        let input = "A=\"first\nsecond\"\nB='x\r\ny'\nbad line\n";
        let err = parse_dotenv(input).unwrap_err();
        assert_eq!(
            err.problems,
            vec![DotenvProblem { line: 5, kind: DotenvProblemKind::MissingEquals }]
        );
        let ok = parse("A=\"first\nsecond\"\nB='x\r\ny'\n");
        assert_eq!(ok, vec![kv("A", "first\nsecond"), kv("B", "x\ny")]);
    }

    #[test]
    fn crlf_line_endings_and_bom() {
        let got = parse("\u{feff}A=1\r\nB=\"2\"\r\n# c\r\n");
        assert_eq!(got, vec![kv("A", "1"), kv("B", "2")]);
    }

    #[test]
    fn values_may_contain_equals_signs() {
        let got = parse("A=abc==\nB=\"x=y\"\n");
        assert_eq!(got, vec![kv("A", "abc=="), kv("B", "x=y")]);
    }

    #[test]
    fn every_bad_line_is_reported_without_echoing_it() {
        let input =
            "GOOD=1\nsupersecretvalue\n1BAD=x\nA B=y\nC=\"ok\" trailing\nD='unclosed-secret-text\n";
        let err = parse_dotenv(input).unwrap_err();
        assert_eq!(
            err.problems,
            vec![
                DotenvProblem { line: 2, kind: DotenvProblemKind::MissingEquals },
                DotenvProblem { line: 3, kind: DotenvProblemKind::InvalidKey },
                DotenvProblem { line: 4, kind: DotenvProblemKind::InvalidKey },
                DotenvProblem { line: 5, kind: DotenvProblemKind::TrailingText },
                DotenvProblem {
                    line: 6,
                    kind: DotenvProblemKind::UnterminatedQuote { quote: '\'' }
                },
            ]
        );
        let msg = err.to_string();
        assert!(msg.contains("line 2:"), "{msg}");
        assert!(!msg.contains("supersecretvalue"), "{msg}");
        assert!(!msg.contains("unclosed-secret-text"), "{msg}");
    }

    #[test]
    fn empty_key_is_invalid() {
        let err = parse_dotenv("=value\n").unwrap_err();
        assert_eq!(err.problems[0].kind, DotenvProblemKind::InvalidKey);
    }

    #[test]
    fn non_ascii_values_survive() {
        let got = parse("A=Zürich ✓\nB=\"日本\"\n");
        assert_eq!(got, vec![kv("A", "Zürich ✓"), kv("B", "日本")]);
    }

    #[test]
    fn environment_wins_and_last_dotenv_duplicate_wins() {
        let dotenv = parse("A=from_file\nB=first\nB=second\nC=file_only\n");
        let env = vec![kv("A", "from_env"), kv("D", "env_only")];
        let merged = merge_env(dotenv, env);
        assert_eq!(merged["A"], "from_env");
        assert_eq!(merged["B"], "second");
        assert_eq!(merged["C"], "file_only");
        assert_eq!(merged["D"], "env_only");
        assert_eq!(merged.len(), 4);
    }

    #[test]
    fn environment_wins_even_when_empty() {
        let merged = merge_env(vec![kv("A", "file")], vec![kv("A", "")]);
        assert_eq!(merged["A"], "");
    }
}
