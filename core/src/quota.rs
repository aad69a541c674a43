//! Limits: whether an upload may be stored, how close usage is to its limits, and how much of
//! the free tier's monthly request allowance is left.
//!
//! - [`admit`]: file size, user quota and bucket limit, with the cleanup they call for.
//! - [`alert_level`] / [`UsageStatus`]: normal, cleanup (at the threshold), warning (80 %),
//!   critical (90 %).
//! - [`RequestLedger`]: PUT-class and GET-class requests per UTC month against 2,000 / 20,000.
//!
//! Sizes are bytes; the configured MB and GB are binary ([`MIB`], [`GIB`]), as in the
//! original Python (`* 1024 * 1024`).

mod admission;
mod alert;
mod budget;
mod size;

pub use crate::time::YearMonth;
pub use admission::{
    CleanupNeed, CurrentUsage, DEFAULT_CLEANUP_THRESHOLD_PERCENT, DEFAULT_MAX_BUCKET_BYTES,
    DEFAULT_MAX_FILE_BYTES, DEFAULT_MAX_USER_BYTES, Freeable, Limits, Refusal, ScopeNeed,
    UploadRequest, Verdict, admit,
};
pub use alert::{
    AlertLevel, CRITICAL_PERCENT, UsageStatus, WARNING_PERCENT, alert_level, cleanup_due,
    percent_used,
};
pub use budget::{
    BudgetStatus, ClassStatus, Remaining, RequestBudget, RequestClass, RequestKind, RequestLedger,
};
pub use size::{ByteSize, GIB, KIB, MIB};
