//! The generated inventories the FIFO benches share, so `fifo` and `fifo_scaling` measure
//! the same input.

use kompass_core::inventory::ObjectInfo;

/// xorshift64: a fixed seed gives the same inventory on every run.
pub struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// ~100 files per user, 5% global data, random order.
pub fn inventory(n: usize) -> Vec<ObjectInfo> {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let users = (n / 100).max(1) as u64;
    const YEAR_MS: u64 = 365 * 24 * 3600 * 1000;
    const T0: i64 = 1_700_000_000_000;
    (0..n)
        .map(|i| {
            let size = 1024 + rng.below(2 * 1024 * 1024);
            let last_modified_ms = T0 + rng.below(YEAR_MS) as i64;
            let (user, data_type) = if rng.below(100) < 5 {
                let t = ["models", "training_data", "routes"][rng.below(3) as usize];
                (None, t)
            } else {
                let t = if rng.below(10) < 7 { "routes" } else { "fitness" };
                (Some(format!("u{:06}", rng.below(users))), t)
            };
            let key = match &user {
                Some(u) => format!("users/{u}/{data_type}/f{i:08}.json"),
                None => format!("{data_type}/f{i:08}.json"),
            };
            ObjectInfo {
                key,
                size,
                last_modified_ms,
                sha256: None,
                user,
                data_type: data_type.to_owned(),
            }
        })
        .collect()
}

/// The same objects in key order, each string freshly allocated in that order.
pub fn listing_order(mut inv: Vec<ObjectInfo>) -> Vec<ObjectInfo> {
    inv.sort_by(|a, b| a.key.cmp(&b.key));
    inv.iter()
        .map(|o| ObjectInfo {
            key: o.key.as_str().to_owned(),
            user: o.user.as_deref().map(str::to_owned),
            data_type: o.data_type.as_str().to_owned(),
            ..*o
        })
        .collect()
}
