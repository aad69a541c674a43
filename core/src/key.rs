//! Validated names and the object keys and local paths built from them.
//!
//! Every user id, data type and file name passes through here before it reaches a path or an
//! S3 key, so nothing can escape its prefix: separators, dot segments, control characters,
//! look-alike slashes and over-long names are refused with an error that names the problem.
//!
//! Layouts (the spec's, exactly):
//! - S3: `users/{user_id}/{data_type}/{filename}` for user data, `{data_type}/{filename}` for
//!   global data (`models`, `training_data`, anonymous `routes`).
//! - Local: `{data_dir}/{data_type}/{user_id}/{filename}` and `{data_dir}/{data_type}/{filename}`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Longest file name accepted, in bytes (the common file-system limit).
pub const MAX_NAME_BYTES: usize = 255;
/// Longest user id accepted, in bytes.
pub const MAX_USER_ID_BYTES: usize = 128;

/// Which part of a key was being validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// A user id.
    UserId,
    /// A file name.
    FileName,
    /// A data type.
    DataType,
    /// A whole object key or relative path.
    Key,
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Part::UserId => "user id",
            Part::FileName => "file name",
            Part::DataType => "data type",
            Part::Key => "object key",
        })
    }
}

/// What is wrong with a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The name is empty.
    Empty,
    /// The name is longer than the limit.
    TooLong { bytes: usize, max: usize },
    /// `.` or `..`: a path step, not a name.
    DotSegment,
    /// A path separator (`/` or `\`), which would make the name a path.
    Separator(char),
    /// A Unicode character that looks like a slash (e.g. U+2215, U+FF0F).
    LookalikeSlash(char),
    /// NUL, a control character or an invisible formatting character.
    Control(char),
    /// A character that is not allowed in this part (e.g. `:` or `*`).
    Forbidden(char),
    /// Leading or trailing dot or white space, which file systems treat inconsistently.
    LeadingOrTrailing(char),
    /// A name Windows reserves for devices (`CON`, `NUL`, `COM1`, ...).
    ReservedName,
    /// Not one of the known data types.
    UnknownDataType,
    /// `fitness` belongs to a user; `models` and `training_data` are global only.
    WrongScope { data_type: DataType, needs_user: bool },
    /// The key does not have the layout `users/{user}/{type}/{name}` or `{type}/{name}`.
    Layout,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Empty => f.write_str("it is empty"),
            Problem::TooLong { bytes, max } => write!(f, "it is {bytes} bytes long; the limit is {max}"),
            Problem::DotSegment => f.write_str("`.` and `..` are path steps, not names"),
            Problem::Separator(c) => write!(f, "it contains the path separator {c:?}"),
            Problem::LookalikeSlash(c) => {
                write!(f, "it contains U+{:04X}, a character that looks like a slash", *c as u32)
            }
            Problem::Control(c) => {
                write!(f, "it contains the control or invisible character U+{:04X}", *c as u32)
            }
            Problem::Forbidden(c) => write!(f, "the character {c:?} is not allowed here"),
            Problem::LeadingOrTrailing(c) => {
                write!(f, "it starts or ends with {c:?}, which file systems treat inconsistently")
            }
            Problem::ReservedName => f.write_str("it is a device name reserved by Windows"),
            Problem::UnknownDataType => {
                f.write_str("it must be one of routes, fitness, models, training_data")
            }
            Problem::WrongScope { data_type, needs_user: true } => {
                write!(f, "{data_type} data belongs to a user: pass a user id")
            }
            Problem::WrongScope { data_type, needs_user: false } => {
                write!(f, "{data_type} data is global: do not pass a user id")
            }
            Problem::Layout => f.write_str(
                "it must look like users/{user_id}/{data_type}/{filename} or {data_type}/{filename}",
            ),
        }
    }
}

/// A rejected name: which part, the offending value (escaped, shortened) and the problem.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid {part} {shown}: {problem}")]
pub struct KeyError {
    /// Which part was invalid.
    pub part: Part,
    /// The value as shown to a person: escaped and cut to a readable length.
    pub shown: String,
    /// What is wrong with it.
    pub problem: Problem,
}

impl KeyError {
    fn new(part: Part, value: &str, problem: Problem) -> Self {
        // Escape so control characters and look-alikes are visible, and cut long values.
        let mut shown: String = value.chars().take(64).collect::<String>().escape_debug().collect();
        if value.chars().count() > 64 {
            shown.push('…');
        }
        KeyError { part, shown: format!("\"{shown}\""), problem }
    }
}

/// Characters that render like `/` or `\`: a name holding one could pass for a path.
const LOOKALIKE_SLASHES: &[char] = &[
    '\u{2044}', // FRACTION SLASH
    '\u{2215}', // DIVISION SLASH
    '\u{2216}', // SET MINUS
    '\u{29F5}', // REVERSE SOLIDUS OPERATOR
    '\u{29F8}', // BIG SOLIDUS
    '\u{29F9}', // BIG REVERSE SOLIDUS
    '\u{FE68}', // SMALL REVERSE SOLIDUS
    '\u{FF0F}', // FULLWIDTH SOLIDUS
    '\u{FF3C}', // FULLWIDTH REVERSE SOLIDUS
    '\u{1735}', // PHILIPPINE SINGLE PUNCTUATION
    '\u{2571}', // BOX DRAWINGS LIGHT DIAGONAL
    '\u{27CB}', // MATHEMATICAL RISING DIAGONAL
    '\u{27CD}', // MATHEMATICAL FALLING DIAGONAL
    '\u{3033}', // VERTICAL KANA REPEAT MARK UPPER HALF
];

/// Characters Windows forbids in file names; refused so data stays portable.
const WINDOWS_FORBIDDEN: &[char] = &['<', '>', ':', '"', '|', '?', '*'];

/// Device names Windows reserves, with or without an extension.
const RESERVED: &[&str] = &[
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
    "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

/// Control characters plus the invisible formatting ones (zero-width, bidi overrides, BOM)
/// that let two different names look identical.
fn is_control_or_invisible(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}')
}

/// The checks every single path segment passes, whatever it names.
fn check_segment(part: Part, value: &str, max: usize) -> Result<(), KeyError> {
    let err = |p| Err(KeyError::new(part, value, p));
    if value.is_empty() {
        return err(Problem::Empty);
    }
    if value.len() > max {
        return err(Problem::TooLong { bytes: value.len(), max });
    }
    if value == "." || value == ".." {
        return err(Problem::DotSegment);
    }
    // The most telling problem first: a separator anywhere makes the name a path.
    if let Some(c) = value.chars().find(|c| *c == '/' || *c == '\\') {
        return err(Problem::Separator(c));
    }
    if let Some(c) = value.chars().find(|c| LOOKALIKE_SLASHES.contains(c)) {
        return err(Problem::LookalikeSlash(c));
    }
    if let Some(c) = value.chars().find(|c| is_control_or_invisible(*c)) {
        return err(Problem::Control(c));
    }
    if let Some(c) = value.chars().find(|c| WINDOWS_FORBIDDEN.contains(c)) {
        return err(Problem::Forbidden(c));
    }
    for c in [value.chars().next(), value.chars().last()].into_iter().flatten() {
        if c == '.' || c.is_whitespace() {
            return err(Problem::LeadingOrTrailing(c));
        }
    }
    let stem = value.split('.').next().unwrap_or(value);
    if RESERVED.iter().any(|r| r.eq_ignore_ascii_case(stem.trim_end())) {
        return err(Problem::ReservedName);
    }
    Ok(())
}

/// A validated user id: 1 to 128 bytes of ASCII letters, digits, `-`, `_`, `.` and `@`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UserId(String);

impl UserId {
    /// Validates a user id.
    pub fn new(value: &str) -> Result<Self, KeyError> {
        check_segment(Part::UserId, value, MAX_USER_ID_BYTES)?;
        // User ids name a folder and a key prefix: a narrow alphabet keeps them unambiguous.
        if let Some(c) = value
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@')))
        {
            return Err(KeyError::new(Part::UserId, value, Problem::Forbidden(c)));
        }
        Ok(UserId(value.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for UserId {
    type Error = KeyError;
    fn try_from(value: String) -> Result<Self, KeyError> {
        UserId::new(&value)
    }
}

impl From<UserId> for String {
    fn from(value: UserId) -> String {
        value.0
    }
}

impl FromStr for UserId {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, KeyError> {
        UserId::new(s)
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A validated file name: one path segment of at most 255 bytes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FileName(String);

impl FileName {
    /// Validates a file name.
    pub fn new(value: &str) -> Result<Self, KeyError> {
        check_segment(Part::FileName, value, MAX_NAME_BYTES)?;
        Ok(FileName(value.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for FileName {
    type Error = KeyError;
    fn try_from(value: String) -> Result<Self, KeyError> {
        FileName::new(&value)
    }
}

impl From<FileName> for String {
    fn from(value: FileName) -> String {
        value.0
    }
}

impl FromStr for FileName {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, KeyError> {
        FileName::new(s)
    }
}

impl fmt::Display for FileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The kinds of data the store keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataType {
    /// Saved routes: per user, or anonymous (global).
    Routes,
    /// Scrubbed rider fitness data: per user only.
    Fitness,
    /// ML models: global only.
    Models,
    /// Training data sets: global only.
    TrainingData,
}

impl DataType {
    /// Every data type, in a fixed order.
    pub const ALL: [DataType; 4] =
        [DataType::Routes, DataType::Fitness, DataType::Models, DataType::TrainingData];

    /// The name used in keys and paths.
    pub fn as_str(self) -> &'static str {
        match self {
            DataType::Routes => "routes",
            DataType::Fitness => "fitness",
            DataType::Models => "models",
            DataType::TrainingData => "training_data",
        }
    }

    /// Whether this type may be stored under a user.
    pub fn allows_user(self) -> bool {
        matches!(self, DataType::Routes | DataType::Fitness)
    }

    /// Whether this type may be stored without a user.
    pub fn allows_global(self) -> bool {
        !matches!(self, DataType::Fitness)
    }

    /// The scope rule: fitness data belongs to a user, models and training data to nobody,
    /// routes to either. Refuses an owner/type pair the key layout does not allow.
    pub fn check_scope(self, owner: Option<&UserId>) -> Result<(), KeyError> {
        let ok = if owner.is_some() { self.allows_user() } else { self.allows_global() };
        if ok {
            return Ok(());
        }
        Err(KeyError::new(
            Part::DataType,
            self.as_str(),
            Problem::WrongScope { data_type: self, needs_user: owner.is_none() },
        ))
    }
}

impl FromStr for DataType {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, KeyError> {
        DataType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| KeyError::new(Part::DataType, s, Problem::UnknownDataType))
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where an object lives: its owner (none for global data), data type and file name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ObjectKey {
    owner: Option<UserId>,
    data_type: DataType,
    name: FileName,
}

/// The S3 prefix under which every user's data lives.
pub const USERS_PREFIX: &str = "users/";

impl ObjectKey {
    /// A key for `owner`'s data, or for global data when `owner` is `None`.
    pub fn new(
        owner: Option<UserId>,
        data_type: DataType,
        name: FileName,
    ) -> Result<Self, KeyError> {
        data_type.check_scope(owner.as_ref())?;
        Ok(ObjectKey { owner, data_type, name })
    }

    /// Validates raw strings and builds a key in one step.
    pub fn parse_parts(owner: Option<&str>, data_type: &str, name: &str) -> Result<Self, KeyError> {
        let owner = owner.map(UserId::new).transpose()?;
        ObjectKey::new(owner, data_type.parse()?, FileName::new(name)?)
    }

    /// The owner, or `None` for global data.
    pub fn owner(&self) -> Option<&UserId> {
        self.owner.as_ref()
    }

    /// The data type.
    pub fn data_type(&self) -> DataType {
        self.data_type
    }

    /// The file name.
    pub fn name(&self) -> &FileName {
        &self.name
    }

    /// The S3 object key.
    pub fn s3_key(&self) -> String {
        match &self.owner {
            Some(u) => format!("{USERS_PREFIX}{u}/{}/{}", self.data_type, self.name),
            None => format!("{}/{}", self.data_type, self.name),
        }
    }

    /// The path below the data directory, as segments (the native side joins them).
    pub fn local_segments(&self) -> Vec<&str> {
        match &self.owner {
            Some(u) => vec![self.data_type.as_str(), u.as_str(), self.name.as_str()],
            None => vec![self.data_type.as_str(), self.name.as_str()],
        }
    }

    /// The path below the data directory, joined with `/`.
    pub fn local_rel_path(&self) -> String {
        self.local_segments().join("/")
    }

    /// Parses an S3 object key; anything outside the two layouts is refused.
    pub fn from_s3_key(key: &str) -> Result<Self, KeyError> {
        let parts: Vec<&str> = key.split('/').collect();
        match parts.as_slice() {
            ["users", user, data_type, name] => ObjectKey::parse_parts(Some(user), data_type, name),
            [data_type, name] if *data_type != "users" => {
                ObjectKey::parse_parts(None, data_type, name)
            }
            _ => Err(KeyError::new(Part::Key, key, Problem::Layout)),
        }
    }

    /// Parses a path below the data directory (segments as in [`ObjectKey::local_segments`]).
    pub fn from_local_segments(segments: &[&str]) -> Result<Self, KeyError> {
        match segments {
            [data_type, user, name] => ObjectKey::parse_parts(Some(user), data_type, name),
            [data_type, name] => ObjectKey::parse_parts(None, data_type, name),
            _ => Err(KeyError::new(Part::Key, &segments.join("/"), Problem::Layout)),
        }
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.s3_key())
    }
}

/// The S3 prefix holding all of one user's data (`users/{user}/`).
pub fn user_prefix(user: &UserId) -> String {
    format!("{USERS_PREFIX}{user}/")
}

/// The S3 prefix listing one data type of one owner (or of global data).
pub fn type_prefix(owner: Option<&UserId>, data_type: DataType) -> String {
    match owner {
        Some(u) => format!("{USERS_PREFIX}{u}/{data_type}/"),
        None => format!("{data_type}/"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_layout() {
        let user = UserId::new("rider_42").unwrap();
        for dt in DataType::ALL {
            let name = FileName::new("ride 2024-06-01.json").unwrap();
            if dt.allows_user() {
                let k = ObjectKey::new(Some(user.clone()), dt, name.clone()).unwrap();
                assert_eq!(k.s3_key(), format!("users/rider_42/{dt}/ride 2024-06-01.json"));
                assert_eq!(k.local_rel_path(), format!("{dt}/rider_42/ride 2024-06-01.json"));
                assert_eq!(ObjectKey::from_s3_key(&k.s3_key()).unwrap(), k);
                assert_eq!(ObjectKey::from_local_segments(&k.local_segments()).unwrap(), k);
            }
            if dt.allows_global() {
                let k = ObjectKey::new(None, dt, name.clone()).unwrap();
                assert_eq!(k.s3_key(), format!("{dt}/ride 2024-06-01.json"));
                assert_eq!(k.local_rel_path(), format!("{dt}/ride 2024-06-01.json"));
                assert_eq!(ObjectKey::from_s3_key(&k.s3_key()).unwrap(), k);
                assert_eq!(ObjectKey::from_local_segments(&k.local_segments()).unwrap(), k);
            }
        }
    }

    #[test]
    fn scope_rules() {
        let u = UserId::new("u1").unwrap();
        let n = FileName::new("a.json").unwrap();
        let e = ObjectKey::new(None, DataType::Fitness, n.clone()).unwrap_err();
        assert!(matches!(e.problem, Problem::WrongScope { needs_user: true, .. }), "{e}");
        let e = ObjectKey::new(Some(u.clone()), DataType::Models, n.clone()).unwrap_err();
        assert!(matches!(e.problem, Problem::WrongScope { needs_user: false, .. }), "{e}");
        assert!(ObjectKey::new(Some(u), DataType::Routes, n.clone()).is_ok());
        assert!(ObjectKey::new(None, DataType::Routes, n).is_ok());
    }

    #[test]
    fn check_scope_is_the_key_rule() {
        let u = UserId::new("u1").unwrap();
        let n = FileName::new("a.json").unwrap();
        for dt in DataType::ALL {
            for owner in [None, Some(u.clone())] {
                assert_eq!(
                    dt.check_scope(owner.as_ref()),
                    ObjectKey::new(owner.clone(), dt, n.clone()).map(|_| ()),
                    "{dt} {owner:?}"
                );
            }
        }
        let e = DataType::Models.check_scope(Some(&u)).unwrap_err();
        assert_eq!(e.shown, "\"models\"");
    }

    #[test]
    fn prefixes() {
        let u = UserId::new("u1").unwrap();
        assert_eq!(user_prefix(&u), "users/u1/");
        assert_eq!(type_prefix(Some(&u), DataType::Fitness), "users/u1/fitness/");
        assert_eq!(type_prefix(None, DataType::Models), "models/");
    }
}
