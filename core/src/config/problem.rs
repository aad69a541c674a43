//! Configuration problems: each names the variable, the bad value (never a secret) and the fix.

use std::fmt;

use serde::ser::{Serialize, SerializeStruct, Serializer};

/// Values longer than this are shortened in messages (a pasted file is not a useful echo).
const MAX_SHOWN_VALUE_CHARS: usize = 80;

/// What is wrong with one variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProblemKind {
    /// The variable is required in this configuration but absent or empty.
    #[error("is not set, and {required_because}")]
    Missing {
        /// Why it is required.
        required_because: &'static str,
    },
    /// Not one of the accepted boolean spellings.
    #[error("is not a boolean")]
    NotBool,
    /// Not a number at all (or infinite, or NaN).
    #[error("is not a number")]
    NotNumber,
    /// A number where only whole numbers make sense.
    #[error("is not a whole number")]
    NotWholeNumber,
    /// Zero or negative where only a positive amount makes sense.
    #[error("must be greater than zero")]
    NotPositive,
    /// A number outside the accepted range.
    #[error("is outside the accepted range {min}..={max}")]
    OutOfRange {
        /// Smallest accepted value, as written in the message.
        min: String,
        /// Largest accepted value, as written in the message.
        max: String,
    },
    /// A secret shorter than is safe.
    #[error("is {actual} bytes long, shorter than the {min} bytes required")]
    TooShort {
        /// Minimum length in bytes.
        min: usize,
        /// Actual length in bytes (safe to show: it says nothing about the content).
        actual: usize,
    },
    /// The value has the wrong shape (endpoint URL, bucket name, region, ...).
    #[error("is malformed: {reason}")]
    Malformed {
        /// What exactly is wrong.
        reason: String,
    },
}

impl ProblemKind {
    /// A stable snake_case code for machine-readable output.
    pub fn code(&self) -> &'static str {
        match self {
            ProblemKind::Missing { .. } => "missing",
            ProblemKind::NotBool => "not_bool",
            ProblemKind::NotNumber => "not_number",
            ProblemKind::NotWholeNumber => "not_whole_number",
            ProblemKind::NotPositive => "not_positive",
            ProblemKind::OutOfRange { .. } => "out_of_range",
            ProblemKind::TooShort { .. } => "too_short",
            ProblemKind::Malformed { .. } => "malformed",
        }
    }
}

/// One problem with one environment variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The environment variable, e.g. `S3_MAX_FILE_SIZE_MB`.
    pub variable: &'static str,
    /// The offending value; `None` when the variable is absent or holds a secret.
    pub value: Option<String>,
    /// What is wrong.
    pub kind: ProblemKind,
    /// What to do about it.
    pub fix: String,
}

impl ConfigProblem {
    /// The value as it appears in messages: quoted, escaped and shortened.
    fn shown_value(&self) -> Option<String> {
        self.value.as_ref().map(|v| {
            if v.chars().count() > MAX_SHOWN_VALUE_CHARS {
                let head: String = v.chars().take(MAX_SHOWN_VALUE_CHARS).collect();
                format!("{head:?}…")
            } else {
                format!("{v:?}")
            }
        })
    }
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.kind, self.shown_value()) {
            (ProblemKind::Missing { .. }, _) => write!(f, "{} {}", self.variable, self.kind)?,
            (_, Some(v)) => write!(f, "{}={} {}", self.variable, v, self.kind)?,
            (_, None) => write!(f, "{} (value hidden) {}", self.variable, self.kind)?,
        }
        write!(f, ": {}", self.fix)
    }
}

impl Serialize for ConfigProblem {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("ConfigProblem", 5)?;
        s.serialize_field("variable", self.variable)?;
        s.serialize_field("value", &self.value)?;
        s.serialize_field("kind", self.kind.code())?;
        s.serialize_field("problem", &self.kind.to_string())?;
        s.serialize_field("fix", &self.fix)?;
        s.end()
    }
}

/// Every problem found in a configuration, reported together so that one run shows them all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize)]
#[serde(transparent)]
pub struct ConfigErrors {
    /// The problems, in the order the variables are documented.
    pub problems: Vec<ConfigProblem>,
}

impl ConfigErrors {
    /// The problems that concern `variable`.
    pub fn for_variable<'a>(
        &'a self,
        variable: &'a str,
    ) -> impl Iterator<Item = &'a ConfigProblem> {
        self.problems.iter().filter(move |p| p.variable == variable)
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        write!(f, "the configuration has {n} problem{}:", if n == 1 { "" } else { "s" })?;
        for p in &self.problems {
            write!(f, "\n  - {p}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_variable_value_problem_and_fix() {
        let p = ConfigProblem {
            variable: "S3_MAX_FILE_SIZE_MB",
            value: Some("abc".into()),
            kind: ProblemKind::NotNumber,
            fix: "set it to a size in MiB, e.g. 50".into(),
        };
        assert_eq!(
            p.to_string(),
            "S3_MAX_FILE_SIZE_MB=\"abc\" is not a number: set it to a size in MiB, e.g. 50"
        );
    }

    #[test]
    fn hidden_and_missing_values_are_not_echoed() {
        let hidden = ConfigProblem {
            variable: "KOMPASS_PSEUDONYM_KEY",
            value: None,
            kind: ProblemKind::TooShort { min: 32, actual: 4 },
            fix: "use a longer key".into(),
        };
        assert_eq!(
            hidden.to_string(),
            "KOMPASS_PSEUDONYM_KEY (value hidden) is 4 bytes long, shorter than the 32 bytes required: use a longer key"
        );
        let missing = ConfigProblem {
            variable: "AWS_S3_BUCKET",
            value: None,
            kind: ProblemKind::Missing { required_because: "S3 is enabled" },
            fix: "set it".into(),
        };
        assert_eq!(missing.to_string(), "AWS_S3_BUCKET is not set, and S3 is enabled: set it");
    }

    #[test]
    fn long_values_are_shortened_and_control_characters_escaped() {
        let p = ConfigProblem {
            variable: "DATA_DIRECTORY",
            value: Some(format!("\u{1b}[31m{}", "x".repeat(200))),
            kind: ProblemKind::Malformed { reason: "bad".into() },
            fix: "fix it".into(),
        };
        let s = p.to_string();
        assert!(!s.contains('\u{1b}'), "{s}");
        assert!(s.contains("\\u{1b}"), "{s}");
        assert!(s.contains('…'));
        assert!(s.len() < 200, "{s}");
    }

    #[test]
    fn errors_list_every_problem_and_serialize_as_a_list() {
        let errs = ConfigErrors {
            problems: vec![
                ConfigProblem {
                    variable: "A",
                    value: Some("1".into()),
                    kind: ProblemKind::NotBool,
                    fix: "f1".into(),
                },
                ConfigProblem {
                    variable: "B",
                    value: None,
                    kind: ProblemKind::Missing { required_because: "r" },
                    fix: "f2".into(),
                },
            ],
        };
        let s = errs.to_string();
        assert!(s.starts_with("the configuration has 2 problems:"), "{s}");
        assert!(s.contains("\n  - A=\"1\" is not a boolean: f1"), "{s}");
        assert!(s.contains("\n  - B is not set, and r: f2"), "{s}");
        let json = serde_json::to_value(&errs).unwrap();
        assert_eq!(json[0]["variable"], "A");
        assert_eq!(json[0]["kind"], "not_bool");
        assert_eq!(json[1]["value"], serde_json::Value::Null);
        assert_eq!(json[1]["fix"], "f2");
        assert_eq!(errs.for_variable("B").count(), 1);
    }
}
