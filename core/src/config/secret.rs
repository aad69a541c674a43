//! A string that must never reach a log, a terminal or a JSON document by accident.

use std::fmt;

/// What `Debug` and `Display` print in place of a secret.
pub const REDACTED: &str = "<redacted>";

/// A secret value (AWS secret key, session token, pseudonym key, server secret).
///
/// `Debug` and `Display` print [`REDACTED`]; there is deliberately no `Serialize` and no
/// `PartialEq` (a `==` on secrets invites timing leaks). Reading the value takes an explicit
/// [`Secret::expose`], so every use is visible in review.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself: use it, never print it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The secret as bytes (for HMAC keys).
    pub fn expose_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// Length in bytes, safe to show (it says nothing about the content).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the secret is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_hide_the_value() {
        let s = Secret::new("hunter2-very-secret");
        assert_eq!(format!("{s:?}"), REDACTED);
        assert_eq!(format!("{s}"), REDACTED);
        assert_eq!(format!("{s:#?}"), REDACTED);
        assert_eq!(format!("{:?}", Some(s.clone())), format!("Some({REDACTED})"));
        assert_eq!(s.expose(), "hunter2-very-secret");
        assert_eq!(s.expose_bytes(), b"hunter2-very-secret");
        assert_eq!(s.len(), 19);
        assert!(!s.is_empty());
    }
}
