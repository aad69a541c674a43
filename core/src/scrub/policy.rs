//! The scrub policy: one statement of what rider data keeps, what a pseudonym may look like,
//! and what every path into storage does with rider data.
//!
//! The scrubber's allow-list (`scrub/allow.rs`) is the executable form of [`POLICY`]; tests
//! check that the two agree (the athlete block keeps exactly [`Policy::athlete_kept`], no
//! allow-list names a key of [`Policy::forbidden_keys`]), and the fuzz target and the docs
//! read the same constant. Changing what is kept is a change here, with a test.

/// What a pseudonym-shaped value (`{key id}:{64 lower-case hex}`) found in the input becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PseudonymRule<'a> {
    /// Kept only when written under this key id: the configured key's (a document this
    /// system scrubbed earlier, so that scrubbing a scrubbed document changes nothing).
    /// Under any other key id it is dropped and reported: the key id could carry free text,
    /// and the hash could be an unkeyed hash of the athlete id.
    KeepUnder(&'a str),
    /// Dropped and reported whatever its key id: a keyless scrub, and the server's check of
    /// data from outside, cannot tell a real pseudonym from a smuggled one.
    DropAll,
}

impl PseudonymRule<'_> {
    /// Whether a pseudonym-shaped string `s` is kept under this rule (`false` for any other
    /// string).
    pub fn keeps(self, s: &str) -> bool {
        match (self, super::pseudonym::pseudonym_key_id(s)) {
            (PseudonymRule::KeepUnder(key_id), Some(found)) => found == key_id,
            _ => false,
        }
    }
}

/// A path by which rider (fitness) data can reach storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RiderPath {
    /// `kompass rider save --user U FILE` (and the Python package's `save_rider_data`).
    CliRiderSave,
    /// `kompass save --type fitness` (and `save_data(..., "fitness")` in Python).
    CliSave,
    /// `POST /api/presign` of `kompass serve`.
    HttpPresign,
    /// `POST /api/rider` of `kompass serve`.
    HttpRider,
    /// `PUT /api/upload/{grant}` of `kompass serve` (the local twin of a presigned URL).
    LocalUpload,
    /// The browser page.
    Page,
    /// The edge presigner (`wasm/edge/worker.mjs`).
    Edge,
    /// `kompass scrub --audit --fix`: stored fitness objects re-scrubbed in place.
    AuditFix,
    /// `kompass migrate`: objects already in the local data directory moved to S3.
    Migrate,
}

/// What a path does with rider data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RiderHandling {
    /// Scrubbed with the pseudonym key (pseudonyms under other key ids dropped), then stored
    /// by the server's storage manager under a `fitness_data_{timestamp}.json` name.
    ScrubWithKey,
    /// Data from outside: scrubbed with the pseudonym key, every pseudonym-shaped value and
    /// the athlete id dropped, the `user_hash` set to the pseudonym of the token's user, then
    /// stored by the storage manager as `fitness_data_{timestamp}.json`.
    ScrubIncoming,
    /// Scrubbed keyless on the device (ids and pseudonyms dropped, raw GPS never leaves
    /// it), then sent to the server's rider route.
    ScrubKeylessThenServer,
    /// Refused: no upload URL is ever issued for rider data; the caller is told to use the
    /// server's rider route.
    Refuse,
    /// The generic byte store (`kompass save --type fitness`): stored only when the keyed
    /// scrub under the current policy leaves the document unchanged, byte for byte (already
    /// scrubbed, pseudonyms only under the configured key id); anything else is refused
    /// before any request or deletion, pointing at `kompass rider save`. Without the key
    /// nothing is stored. Checked by [`super::check_scrubbed`] in the storage manager's save,
    /// which every native save passes.
    StoreIfScrubbed,
    /// Objects already in storage moved byte for byte (SHA-256 verified), not stored anew:
    /// files from before the policy (or from the original app) keep moving, and
    /// `kompass scrub --audit [--fix]` is the check for what they hold.
    MoveAsStored,
}

/// The scrub policy.
#[derive(Debug)]
pub struct Policy {
    /// The version written into every anonymization block.
    pub version: &'static str,
    /// Fields the athlete block (`basic_info` or `athlete`) keeps besides its pseudonym,
    /// `user_hash`. Everything else in it (names, location, account metadata, measurement
    /// and date preferences, ...) is dropped.
    pub athlete_kept: &'static [&'static str],
    /// Keys that no scrubbed document holds at any depth (the top-level `athlete` block
    /// excepted). A subset of what is dropped: everything not allowed is dropped.
    pub forbidden_keys: &'static [&'static str],
    /// The shape of a pseudonym: `{key id}:{64 lower-case hex}` with a key id of 1 to 64
    /// characters from `A-Za-z0-9._-`.
    pub pseudonym_hex_len: usize,
    /// What every path into storage does with rider data.
    pub paths: &'static [(RiderPath, RiderHandling)],
}

impl Policy {
    /// What `path` does with rider data.
    pub fn handling(&self, path: RiderPath) -> RiderHandling {
        self.paths.iter().find(|(p, _)| *p == path).map_or(RiderHandling::Refuse, |(_, h)| *h)
    }
}

/// The policy in force.
pub const POLICY: Policy = Policy {
    version: super::SCRUB_VERSION,
    athlete_kept: &["ftp", "sex", "weight"],
    forbidden_keys: &[
        "id",
        "name",
        "description",
        "private_note",
        "bio",
        "firstname",
        "lastname",
        "username",
        "email",
        "profile",
        "profile_medium",
        "city",
        "state",
        "country",
        "location_city",
        "location_state",
        "location_country",
        "start_latlng",
        "end_latlng",
        "latlng",
        "map",
        "polyline",
        "summary_polyline",
        "timezone",
        "utc_offset",
        "start_date_local",
        "device_name",
        "external_id",
        "upload_id",
        "upload_id_str",
        "embed_token",
        "photos",
        "gear",
        "gear_id",
        "segment_efforts",
        "best_efforts",
        "laps",
        "splits_metric",
        "splits_standard",
        "premium",
        "summit",
        "friend",
        "follower",
        "athlete",
        "altitude",
        "created_at",
        "updated_at",
        "measurement_preference",
        "date_preference",
        "resource_state",
        "badge_type_id",
        "clubs",
        "bikes",
        "shoes",
    ],
    pseudonym_hex_len: 64,
    paths: &[
        (RiderPath::CliRiderSave, RiderHandling::ScrubWithKey),
        (RiderPath::CliSave, RiderHandling::StoreIfScrubbed),
        (RiderPath::HttpPresign, RiderHandling::Refuse),
        (RiderPath::HttpRider, RiderHandling::ScrubIncoming),
        (RiderPath::LocalUpload, RiderHandling::Refuse),
        (RiderPath::Page, RiderHandling::ScrubKeylessThenServer),
        (RiderPath::Edge, RiderHandling::Refuse),
        (RiderPath::AuditFix, RiderHandling::ScrubWithKey),
        (RiderPath::Migrate, RiderHandling::MoveAsStored),
    ],
};

/// The error text for a request to upload rider data anywhere but the server's rider route.
pub const USE_RIDER_ROUTE: &str = "rider (fitness) data is stored only by the server, which scrubs it with the pseudonym key and names it: send the scrubbed document to POST /api/rider instead of asking for an upload URL";

/// The advice for rider data that a generic save refuses.
pub const USE_RIDER_SAVE: &str = "store rider data with `kompass rider save --user USER FILE` (or POST /api/rider), which scrubs it with the pseudonym key and names it; `kompass save --type fitness` stores only documents already scrubbed under the current policy and key";
