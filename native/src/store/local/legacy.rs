//! Routes saved by the original Python app, at the data directory root.

/// Whether `name` has the shape the original app gave saved routes at the data directory
/// root: `{YYYYmmdd_HHMMSS}_{name}.json`, e.g. `20240101_120000_my_route.json`.
pub fn is_legacy_route_name(name: &str) -> bool {
    let b = name.as_bytes();
    // 8 digits, `_`, 6 digits, `_`, at least one character, `.json`.
    b.len() >= 22
        && b[..8].iter().all(u8::is_ascii_digit)
        && b[8] == b'_'
        && b[9..15].iter().all(u8::is_ascii_digit)
        && b[15] == b'_'
        && name.ends_with(".json")
}

#[cfg(test)]
mod tests {
    use super::is_legacy_route_name;

    #[test]
    fn shapes() {
        assert!(is_legacy_route_name("20240101_120000_my_route.json"));
        assert!(is_legacy_route_name("20240101_120000_x.json"));
        assert!(!is_legacy_route_name("20240101_120000_.json"));
        assert!(!is_legacy_route_name("20240101_120000_my_route.gpx"));
        assert!(!is_legacy_route_name("2024010_1120000_my_route.json"));
        assert!(!is_legacy_route_name("2024a101_120000_my_route.json"));
        assert!(!is_legacy_route_name("my_route.json"));
        assert!(!is_legacy_route_name("config.json"));
    }
}
