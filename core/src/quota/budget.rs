//! The free-tier request budget: a monthly ledger of billable S3 requests.
//!
//! AWS bills requests in two classes, and the free tier covers 2,000 of the first and 20,000
//! of the second per calendar month (UTC):
//! - **PUT-class**: PUT, COPY, POST and LIST (a multipart upload costs one POST to start, one
//!   PUT per part and one POST to complete);
//! - **GET-class**: GET, HEAD ("GET, SELECT, and all other requests": HEAD is billed here),
//!   and anything not listed elsewhere;
//! - **free**: DELETE (and aborting a multipart upload). Deletions are tracked, not charged.
//!
//! The ledger is plain data that the native side persists as JSON between runs. It covers
//! one month; recording a request in a later month starts a new one. A request stamped
//! *before* the ledger's month (a skewed clock, a late journal replay) is counted in the
//! current month: overcounting keeps the budget safe, and a ledger never moves backwards.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::alert::{AlertLevel, level, percent_used};
use crate::time::YearMonth;

/// A billable kind of S3 request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestKind {
    /// PutObject, UploadPart.
    Put,
    /// CopyObject, UploadPartCopy.
    Copy,
    /// POST requests: CreateMultipartUpload, CompleteMultipartUpload, DeleteObjects (billed
    /// as POST although it deletes).
    Post,
    /// ListObjectsV2, ListBuckets, ListParts (LIST-class although sent as HTTP GET).
    List,
    /// GetObject.
    Get,
    /// HeadObject, HeadBucket.
    Head,
    /// DeleteObject, AbortMultipartUpload: free.
    Delete,
}

/// How AWS bills a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestClass {
    /// PUT, COPY, POST, LIST: 2,000 free a month.
    PutClass,
    /// GET, HEAD and the rest: 20,000 free a month.
    GetClass,
    /// Not billed.
    Free,
}

impl RequestKind {
    /// The billing class of this request.
    pub fn class(self) -> RequestClass {
        match self {
            RequestKind::Put | RequestKind::Copy | RequestKind::Post | RequestKind::List => {
                RequestClass::PutClass
            }
            RequestKind::Get | RequestKind::Head => RequestClass::GetClass,
            RequestKind::Delete => RequestClass::Free,
        }
    }
}

/// Monthly allowance per billable class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestBudget {
    /// PUT-class requests per month.
    pub put_class: u64,
    /// GET-class requests per month.
    pub get_class: u64,
}

impl RequestBudget {
    /// The AWS S3 free tier: 2,000 PUT-class and 20,000 GET-class requests a month.
    pub const FREE_TIER: RequestBudget = RequestBudget { put_class: 2_000, get_class: 20_000 };

    fn limit(&self, class: RequestClass) -> Option<u64> {
        match class {
            RequestClass::PutClass => Some(self.put_class),
            RequestClass::GetClass => Some(self.get_class),
            RequestClass::Free => None,
        }
    }
}

impl Default for RequestBudget {
    fn default() -> Self {
        RequestBudget::FREE_TIER
    }
}

/// Requests left this month per billable class (0 once the allowance is used up).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Remaining {
    /// PUT-class requests left.
    pub put_class: u64,
    /// GET-class requests left.
    pub get_class: u64,
}

/// Counts of requests made in one UTC calendar month; persisted as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestLedger {
    /// The month these counts belong to, as `"YYYY-MM"`.
    pub month: YearMonth,
    /// PUT, COPY, POST and LIST requests.
    pub put_class: u64,
    /// GET and HEAD requests.
    pub get_class: u64,
    /// DELETE requests (free; tracked for the record).
    #[serde(default)]
    pub free: u64,
}

impl RequestLedger {
    /// An empty ledger for `month`.
    pub fn new(month: YearMonth) -> Self {
        RequestLedger { month, put_class: 0, get_class: 0, free: 0 }
    }

    /// An empty ledger for the UTC month containing `at_unix_ms`.
    pub fn starting_at(at_unix_ms: u64) -> Self {
        RequestLedger::new(YearMonth::from_unix_ms(at_unix_ms))
    }

    /// Moves to the month of `at_unix_ms` if it is later, emptying the counts. Returns the
    /// closed month's ledger when that happens (to archive or report).
    pub fn advance_to(&mut self, at_unix_ms: u64) -> Option<RequestLedger> {
        let month = YearMonth::from_unix_ms(at_unix_ms);
        if month > self.month {
            Some(std::mem::replace(self, RequestLedger::new(month)))
        } else {
            None
        }
    }

    /// Records one request made at `at_unix_ms`; see [`RequestLedger::record_many`].
    pub fn record(&mut self, kind: RequestKind, at_unix_ms: u64) -> Option<RequestLedger> {
        self.record_many(kind, 1, at_unix_ms)
    }

    /// Records `count` requests of one kind made at `at_unix_ms`, first rolling over to a new
    /// month if `at_unix_ms` is in a later one (the closed month's ledger is returned).
    pub fn record_many(
        &mut self,
        kind: RequestKind,
        count: u64,
        at_unix_ms: u64,
    ) -> Option<RequestLedger> {
        let closed = self.advance_to(at_unix_ms);
        let counter = match kind.class() {
            RequestClass::PutClass => &mut self.put_class,
            RequestClass::GetClass => &mut self.get_class,
            RequestClass::Free => &mut self.free,
        };
        *counter = counter.saturating_add(count);
        closed
    }

    /// Requests counted in `class` this month.
    pub fn count(&self, class: RequestClass) -> u64 {
        match class {
            RequestClass::PutClass => self.put_class,
            RequestClass::GetClass => self.get_class,
            RequestClass::Free => self.free,
        }
    }

    /// Free-tier requests left in the ledger's month. Call [`RequestLedger::advance_to`]
    /// first with the current time: a ledger loaded from last month still holds its counts.
    pub fn remaining(&self) -> Remaining {
        self.remaining_in(&RequestBudget::FREE_TIER)
    }

    /// Requests left under `budget` in the ledger's month.
    pub fn remaining_in(&self, budget: &RequestBudget) -> Remaining {
        Remaining {
            put_class: budget.put_class.saturating_sub(self.put_class),
            get_class: budget.get_class.saturating_sub(self.get_class),
        }
    }

    /// Whether `count` more requests of `kind` stay within `budget` this month (free kinds
    /// always do).
    pub fn allows(&self, kind: RequestKind, count: u64, budget: &RequestBudget) -> bool {
        let class = kind.class();
        match budget.limit(class) {
            None => true,
            Some(limit) => self.count(class).saturating_add(count) <= limit,
        }
    }

    /// Use of the free tier this month: percent used and alert level per class.
    pub fn budget_level(&self) -> BudgetStatus {
        self.budget_status(&RequestBudget::FREE_TIER)
    }

    /// Use of `budget` this month: percent used and alert level per class, and the worst.
    pub fn budget_status(&self, budget: &RequestBudget) -> BudgetStatus {
        let put_class = ClassStatus::new(self.put_class, budget.put_class);
        let get_class = ClassStatus::new(self.get_class, budget.get_class);
        BudgetStatus {
            month: self.month,
            resets_at_unix_ms: self.month.next().start_unix_ms(),
            level: put_class.level.max(get_class.level),
            put_class,
            get_class,
        }
    }
}

/// Use of one billable class against its monthly allowance.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ClassStatus {
    /// Requests made this month.
    pub used: u64,
    /// The monthly allowance.
    pub limit: u64,
    /// Requests left (0 once exhausted).
    pub remaining: u64,
    /// Percent of the allowance used (over 100 once exceeded).
    pub percent: f64,
    /// `normal`, `warning` at 80 %, `critical` at 90 % (cleanup does not apply to requests).
    pub level: AlertLevel,
    /// Whether the allowance is used up: further requests of this class are billed.
    pub exhausted: bool,
}

impl ClassStatus {
    fn new(used: u64, limit: u64) -> Self {
        ClassStatus {
            used,
            limit,
            remaining: limit.saturating_sub(used),
            percent: percent_used(used, limit),
            level: level(used, limit, None),
            exhausted: used >= limit,
        }
    }
}

/// The month's request budget at a glance.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BudgetStatus {
    /// The month, `"YYYY-MM"`.
    pub month: YearMonth,
    /// When the allowance renews: the first instant of the next month, Unix ms.
    pub resets_at_unix_ms: i64,
    /// PUT-class use.
    pub put_class: ClassStatus,
    /// GET-class use.
    pub get_class: ClassStatus,
    /// The more severe of the two levels.
    pub level: AlertLevel,
}

impl fmt::Display for BudgetStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: PUT-class {}/{} ({:.1}%, {}), GET-class {}/{} ({:.1}%, {})",
            self.month,
            self.put_class.used,
            self.put_class.limit,
            self.put_class.percent,
            self.put_class.level,
            self.get_class.used,
            self.get_class.limit,
            self.get_class.percent,
            self.get_class.level,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::{MS_PER_DAY, days_from_civil};

    /// Unix ms of a UTC date and time.
    fn at(y: i64, mo: u8, d: u8, h: u64, mi: u64, s: u64, ms: u64) -> u64 {
        days_from_civil(y, mo, d) as u64 * MS_PER_DAY + ((h * 60 + mi) * 60 + s) * 1000 + ms
    }

    fn ym(y: i32, m: u8) -> YearMonth {
        YearMonth::new(y, m).unwrap()
    }

    #[test]
    fn classes_follow_aws_billing() {
        use RequestKind::*;
        for k in [Put, Copy, Post, List] {
            assert_eq!(k.class(), RequestClass::PutClass, "{k:?}");
        }
        for k in [Get, Head] {
            assert_eq!(k.class(), RequestClass::GetClass, "{k:?}");
        }
        assert_eq!(Delete.class(), RequestClass::Free);
    }

    #[test]
    fn counts_per_class_and_deletes_are_free() {
        let t = at(2025, 3, 10, 12, 0, 0, 0);
        let mut l = RequestLedger::starting_at(t);
        for k in [RequestKind::Put, RequestKind::Copy, RequestKind::Post, RequestKind::List] {
            assert!(l.record(k, t).is_none());
        }
        l.record(RequestKind::Get, t);
        l.record(RequestKind::Head, t);
        l.record_many(RequestKind::Delete, 7, t);
        assert_eq!((l.put_class, l.get_class, l.free), (4, 2, 7));
        assert_eq!(l.remaining(), Remaining { put_class: 1_996, get_class: 19_998 });
        assert_eq!(l.month, ym(2025, 3));
    }

    #[test]
    fn rolls_over_at_the_first_millisecond_of_a_month() {
        let mut l = RequestLedger::starting_at(at(2025, 1, 1, 0, 0, 0, 0));
        l.record_many(RequestKind::Put, 1_500, at(2025, 1, 31, 23, 59, 59, 999));
        assert_eq!(l.month, ym(2025, 1));
        assert_eq!(l.put_class, 1_500);
        let closed = l.record(RequestKind::Put, at(2025, 2, 1, 0, 0, 0, 0)).expect("rollover");
        assert_eq!(closed.month, ym(2025, 1));
        assert_eq!(closed.put_class, 1_500);
        assert_eq!(l.month, ym(2025, 2));
        assert_eq!((l.put_class, l.get_class, l.free), (1, 0, 0));
    }

    #[test]
    fn rolls_over_at_the_year_boundary() {
        let mut l = RequestLedger::starting_at(at(2024, 12, 31, 23, 59, 59, 999));
        l.record(RequestKind::Get, at(2024, 12, 31, 23, 59, 59, 999));
        let closed = l.record(RequestKind::Get, at(2025, 1, 1, 0, 0, 0, 0)).unwrap();
        assert_eq!(closed.month, ym(2024, 12));
        assert_eq!(l.month, ym(2025, 1));
        assert_eq!(l.get_class, 1);
    }

    #[test]
    fn leap_february_lasts_29_days() {
        let mut l = RequestLedger::starting_at(at(2024, 2, 1, 0, 0, 0, 0));
        assert!(l.record(RequestKind::Put, at(2024, 2, 29, 23, 59, 59, 999)).is_none());
        assert_eq!(l.month, ym(2024, 2));
        assert!(l.record(RequestKind::Put, at(2024, 3, 1, 0, 0, 0, 0)).is_some());
        assert_eq!(l.month, ym(2024, 3));

        // 2023 is not leap: the day after 28 February is in March. 2100 is not leap either.
        let mut l = RequestLedger::starting_at(at(2023, 2, 28, 12, 0, 0, 0));
        assert!(l.record(RequestKind::Put, at(2023, 2, 28, 23, 59, 59, 999) + 1).is_some());
        assert_eq!(l.month, ym(2023, 3));
        let mut l = RequestLedger::starting_at(at(2100, 2, 28, 0, 0, 0, 0));
        assert!(l.advance_to(at(2100, 2, 28, 0, 0, 0, 0) + MS_PER_DAY).is_some());
        assert_eq!(l.month, ym(2100, 3));
        // 2000 is leap.
        let mut l = RequestLedger::starting_at(at(2000, 2, 28, 0, 0, 0, 0));
        assert!(l.advance_to(at(2000, 2, 28, 0, 0, 0, 0) + MS_PER_DAY).is_none());
        assert_eq!(l.month, ym(2000, 2));
    }

    #[test]
    fn skipping_months_starts_fresh_and_earlier_requests_count_in_the_current_month() {
        let mut l = RequestLedger::starting_at(at(2025, 1, 15, 0, 0, 0, 0));
        l.record_many(RequestKind::Put, 10, at(2025, 1, 15, 0, 0, 0, 0));
        let closed = l.record(RequestKind::Put, at(2025, 5, 2, 0, 0, 0, 0)).unwrap();
        assert_eq!(closed.put_class, 10);
        assert_eq!(l.month, ym(2025, 5));
        // A late entry from April: counted now, month unchanged.
        assert!(l.record(RequestKind::Put, at(2025, 4, 30, 0, 0, 0, 0)).is_none());
        assert_eq!(l.month, ym(2025, 5));
        assert_eq!(l.put_class, 2);
    }

    #[test]
    fn budget_levels_and_exhaustion() {
        let t = at(2025, 6, 1, 0, 0, 0, 0);
        let mut l = RequestLedger::starting_at(t);
        assert_eq!(l.budget_level().level, AlertLevel::Normal);
        l.record_many(RequestKind::Put, 1_599, t);
        assert_eq!(l.budget_level().put_class.level, AlertLevel::Normal); // 79.95 %: no cleanup level
        l.record(RequestKind::Put, t);
        let s = l.budget_level();
        assert_eq!(s.put_class.level, AlertLevel::Warning);
        assert_eq!(s.put_class.percent, 80.0);
        assert_eq!(s.level, AlertLevel::Warning);
        l.record_many(RequestKind::Put, 200, t);
        assert_eq!(l.budget_level().put_class.level, AlertLevel::Critical);
        assert!(!l.budget_level().put_class.exhausted);
        assert!(l.allows(RequestKind::Put, 200, &RequestBudget::FREE_TIER));
        assert!(!l.allows(RequestKind::List, 201, &RequestBudget::FREE_TIER));
        assert!(l.allows(RequestKind::Get, 20_000, &RequestBudget::FREE_TIER));
        assert!(l.allows(RequestKind::Delete, u64::MAX, &RequestBudget::FREE_TIER));
        l.record_many(RequestKind::Put, 300, t);
        let s = l.budget_level();
        assert!(s.put_class.exhausted);
        assert_eq!(s.put_class.remaining, 0);
        assert_eq!(s.put_class.percent, 105.0);
        assert_eq!(l.remaining().put_class, 0);
        assert_eq!(s.get_class.level, AlertLevel::Normal);
        assert_eq!(s.level, AlertLevel::Critical);
        assert_eq!(s.resets_at_unix_ms, at(2025, 7, 1, 0, 0, 0, 0) as i64);
        assert_eq!(
            s.to_string(),
            "2025-06: PUT-class 2100/2000 (105.0%, critical), GET-class 0/20000 (0.0%, normal)"
        );
    }

    #[test]
    fn custom_budget() {
        let mut l = RequestLedger::new(ym(2025, 1));
        l.get_class = 9;
        let b = RequestBudget { put_class: 10, get_class: 10 };
        assert_eq!(l.budget_status(&b).get_class.level, AlertLevel::Critical);
        assert_eq!(l.remaining_in(&b), Remaining { put_class: 10, get_class: 1 });
        assert_eq!(RequestBudget::default(), RequestBudget::FREE_TIER);
    }

    #[test]
    fn json_round_trip_and_older_files_without_free() {
        let mut l = RequestLedger::new(ym(2025, 2));
        l.record_many(RequestKind::Put, 3, at(2025, 2, 3, 0, 0, 0, 0));
        l.record(RequestKind::Delete, at(2025, 2, 3, 0, 0, 0, 0));
        let json = serde_json::to_string(&l).unwrap();
        assert_eq!(json, r#"{"month":"2025-02","put_class":3,"get_class":0,"free":1}"#);
        assert_eq!(serde_json::from_str::<RequestLedger>(&json).unwrap(), l);
        let old: RequestLedger =
            serde_json::from_str(r#"{"month":"2024-11","put_class":5,"get_class":6}"#).unwrap();
        assert_eq!((old.month, old.put_class, old.get_class, old.free), (ym(2024, 11), 5, 6, 0));
        assert!(
            serde_json::from_str::<RequestLedger>(
                r#"{"month":"2024-13","put_class":5,"get_class":6}"#
            )
            .is_err()
        );
        let status = serde_json::to_value(l.budget_level()).unwrap();
        assert_eq!(status["month"], "2025-02");
        assert_eq!(status["put_class"]["remaining"], 1_997);
        assert_eq!(status["level"], "normal");
    }

    #[test]
    fn counters_saturate() {
        let mut l = RequestLedger::new(ym(2025, 1));
        l.record_many(RequestKind::Get, u64::MAX, 0);
        l.record(RequestKind::Get, 0);
        assert_eq!(l.get_class, u64::MAX);
    }
}
