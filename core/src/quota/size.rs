//! Byte counts for people: binary units, because the limits are configured in MiB and GiB.

use std::fmt;

/// One kibibyte.
pub const KIB: u64 = 1024;
/// One mebibyte: the unit of `S3_MAX_FILE_SIZE_MB` and `S3_MAX_USER_STORAGE_MB`.
pub const MIB: u64 = 1024 * KIB;
/// One gibibyte: the unit of `S3_MAX_TOTAL_STORAGE_GB`.
pub const GIB: u64 = 1024 * MIB;

/// A byte count that displays as `512 B`, `1.5 KiB`, `50 MiB`, `4.5 GiB` (at most two
/// decimals, trailing zeros dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(&str, u64); 5] = [
            ("PiB", 1024 * 1024 * GIB),
            ("TiB", 1024 * GIB),
            ("GiB", GIB),
            ("MiB", MIB),
            ("KiB", KIB),
        ];
        let n = self.0;
        let Some(&(unit, size)) = UNITS.iter().find(|&&(_, size)| n >= size) else {
            return write!(f, "{n} B");
        };
        // Hundredths of the unit, rounded half up, in integers so that 50 MiB is exactly "50".
        let hundredths = (u128::from(n) * 100 + u128::from(size) / 2) / u128::from(size);
        let (whole, frac) = (hundredths / 100, hundredths % 100);
        match frac {
            0 => write!(f, "{whole} {unit}"),
            f10 if f10 % 10 == 0 => write!(f, "{whole}.{} {unit}", f10 / 10),
            _ => write!(f, "{whole}.{frac:02} {unit}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(ByteSize(0).to_string(), "0 B");
        assert_eq!(ByteSize(1023).to_string(), "1023 B");
        assert_eq!(ByteSize(1024).to_string(), "1 KiB");
        assert_eq!(ByteSize(1536).to_string(), "1.5 KiB");
        assert_eq!(ByteSize(50 * MIB).to_string(), "50 MiB");
        assert_eq!(ByteSize(100 * MIB + MIB / 4).to_string(), "100.25 MiB");
        assert_eq!(ByteSize(4 * GIB + GIB / 2).to_string(), "4.5 GiB");
        assert_eq!(ByteSize(5 * 1024 * GIB).to_string(), "5 TiB");
        assert_eq!(ByteSize(u64::MAX).to_string(), "16384 PiB");
    }
}
