//! Parse-time filtering: one pass over the input that writes kept fields and skips the rest.
//!
//! The parser is serde_json's; the allow-list ([`super::allow`]) steers a set of seeds and
//! visitors. A dropped subtree is skipped with [`IgnoredAny`] (validated, never built); a kept
//! scalar is captured as a borrowed [`RawValue`], checked, and copied byte for byte, so numbers
//! come out exactly as they went in and nothing is converted to and from `f64`. Containers are
//! written as they are read; when a container turns out to have the wrong shape, the output is
//! truncated back to where the field began.
//!
//! Removed paths are JSON pointers (RFC 6901) into the input, recorded in document order; a
//! removed subtree is reported once, at its top.

use std::borrow::Cow;
use std::fmt::{self, Write as _};

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::SCRUB_VERSION;
use super::allow::{
    self, ACTIVITY, ATHLETE, Field, Leaf, Node, Object, ROOT, STREAM_ENTRY, STREAM_TYPES,
    STREAMS_BY_TYPE,
};
use super::policy::PseudonymRule;
use super::pseudonym::{Domain, PseudonymKey};

mod scan;

/// What the top level of the input was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Root {
    /// A rider document (an object).
    Document,
    /// A bare array of activities, written out as `{"activities": [...]}`.
    Activities,
    /// Something else (a string, a number...), described for the error message.
    Other(&'static str),
}

/// The state of one scrub: the output being written, the current path, and the findings.
pub(super) struct Filter<'k> {
    /// The scrubbed document, compact JSON.
    pub(super) out: String,
    /// The JSON pointer of the container being read.
    path: String,
    /// Removed paths, in document order (only when `list` is set).
    pub(super) removed: Vec<String>,
    /// How many paths were removed (whether or not they are listed).
    pub(super) removed_count: usize,
    /// Whether removed paths are written out, or only counted: a path is an allocation, and
    /// most callers show none (the count is the same either way).
    list: bool,
    /// The first athlete pseudonym written.
    pub(super) user_hash: Option<String>,
    /// Activities (elements of `activities` / `recent_activities`) kept.
    pub(super) activities_kept: usize,
    /// Activities removed because they were not objects.
    pub(super) activities_removed: usize,
    key: Option<&'k PseudonymKey>,
    /// Which pseudonym-shaped input values are kept (the policy's rule).
    pseudonyms: PseudonymRule<'k>,
    /// A `user_hash` decided by the caller (the token's user), written into the athlete
    /// block in place of anything the input says about the athlete's identity.
    subject: Option<&'k str>,
    /// Whether `subject` was written.
    subject_written: bool,
}

/// Scrubs `input` (a whole document) with `key`; a syntax error anywhere fails the whole scrub.
/// With `list`, every removed path is recorded; without, they are only counted.
///
/// The document is written into `out` (cleared; an empty one is given room, see
/// [`Filter::new`]).
///
/// The byte-level scanner ([`scan`]) runs first; when it gives up (invalid JSON, or a form it
/// leaves to serde_json), its output is discarded and the serde path decides, so the result,
/// and every error, is the serde path's.
pub(super) fn run<'k>(
    input: &str,
    key: Option<&'k PseudonymKey>,
    pseudonyms: PseudonymRule<'k>,
    subject: Option<&'k str>,
    list: bool,
    out: String,
) -> Result<(Filter<'k>, Root), serde_json::Error> {
    let mut filter = Filter::new(input, key, pseudonyms, subject, list, out);
    if let Ok(root) = scan::run(&mut filter, input) {
        return Ok((filter, root));
    }
    run_serde_into(input, key, pseudonyms, subject, list, filter.out)
}

/// The serde path alone: the reference the scanner is held to (and the fallback).
#[cfg(test)]
pub(super) fn run_serde<'k>(
    input: &str,
    key: Option<&'k PseudonymKey>,
    pseudonyms: PseudonymRule<'k>,
    subject: Option<&'k str>,
    list: bool,
) -> Result<(Filter<'k>, Root), serde_json::Error> {
    run_serde_into(input, key, pseudonyms, subject, list, String::new())
}

/// The serde path, writing into `out`.
fn run_serde_into<'k>(
    input: &str,
    key: Option<&'k PseudonymKey>,
    pseudonyms: PseudonymRule<'k>,
    subject: Option<&'k str>,
    list: bool,
    out: String,
) -> Result<(Filter<'k>, Root), serde_json::Error> {
    let mut filter = Filter::new(input, key, pseudonyms, subject, list, out);
    let mut de = serde_json::Deserializer::from_str(input);
    let root = RootSeed(&mut filter).deserialize(&mut de)?;
    de.end()?;
    Ok((filter, root))
}

/// The scanner alone: `None` where it gives up.
#[cfg(test)]
pub(super) fn run_scan<'k>(
    input: &str,
    key: Option<&'k PseudonymKey>,
    pseudonyms: PseudonymRule<'k>,
    subject: Option<&'k str>,
    list: bool,
) -> Option<(Filter<'k>, Root)> {
    let mut filter = Filter::new(input, key, pseudonyms, subject, list, String::new());
    let root = scan::run(&mut filter, input).ok()?;
    Some((filter, root))
}

impl<'k> Filter<'k> {
    fn new(
        input: &str,
        key: Option<&'k PseudonymKey>,
        pseudonyms: PseudonymRule<'k>,
        subject: Option<&'k str>,
        list: bool,
        mut out: String,
    ) -> Self {
        out.clear();
        if out.capacity() == 0 {
            // The output is about a third of a Strava export; room for half grows it at most once.
            out.reserve(input.len() / 2);
        }
        Filter {
            out,
            path: String::new(),
            removed: Vec::new(),
            removed_count: 0,
            list,
            user_hash: None,
            activities_kept: 0,
            activities_removed: 0,
            key,
            pseudonyms,
            subject,
            subject_written: false,
        }
    }

    /// Descends into the field `name`; returns the path length to restore.
    fn enter(&mut self, name: &str) -> usize {
        let len = self.path.len();
        push_segment(&mut self.path, name);
        len
    }

    /// Descends into the array element `index`; returns the path length to restore.
    fn enter_index(&mut self, index: usize) -> usize {
        let len = self.path.len();
        let _ = write!(self.path, "/{index}");
        len
    }

    /// The path of the child `name` of the current container.
    fn child_path(&self, name: &str) -> String {
        let mut path = String::with_capacity(self.path.len() + name.len() + 1);
        path.push_str(&self.path);
        push_segment(&mut path, name);
        path
    }

    /// The path of the removed child `name`, or `None` when paths are only counted.
    fn removed_child_path(&self, name: &str) -> Option<String> {
        self.list.then(|| self.child_path(name))
    }

    fn remove_child(&mut self, name: &str) {
        self.removed_count += 1;
        if self.list {
            let path = self.child_path(name);
            self.removed.push(path);
        }
    }

    fn remove_index(&mut self, index: usize) {
        self.removed_count += 1;
        if self.list {
            let path = format!("{}/{index}", self.path);
            self.removed.push(path);
        }
    }

    fn remove_here(&mut self) {
        self.removed_count += 1;
        if self.list {
            self.removed.push(self.path.clone());
        }
    }

    /// Writes the value of a kept field; `false` when the value was refused (nothing written).
    fn field_value<'de, A: MapAccess<'de>>(
        &mut self,
        field: &Field,
        map: &mut A,
    ) -> Result<bool, A::Error> {
        match field.node {
            Node::Leaf(leaf) => {
                let raw: &'de RawValue = map.next_value()?;
                Ok(self.leaf(leaf, raw.get()))
            }
            Node::Pseudonym(domain) => {
                let raw: &'de RawValue = map.next_value()?;
                Ok(self.pseudonym(domain, raw.get()))
            }
            Node::KeptPseudonym(domain) => {
                let raw: &'de RawValue = map.next_value()?;
                Ok(self.kept_pseudonym(domain, raw.get()))
            }
            node => {
                let len = self.enter(field.name);
                let kept = map.next_value_seed(NodeSeed { f: self, node })?;
                self.path.truncate(len);
                Ok(kept)
            }
        }
    }

    /// Writes the pseudonym of a raw id; `false` when it is refused (nothing written).
    fn pseudonym(&mut self, domain: Domain, raw: &str) -> bool {
        // Without a key the id is dropped: it cannot be pseudonymized on this side.
        // With a subject the caller decides the user_hash: the athlete id is dropped.
        let subject = domain == Domain::Athlete && self.subject.is_some();
        let (Some(id), Some(key), false) = (allow::raw_id(raw), self.key, subject) else {
            return false;
        };
        self.out.push('"');
        let start = self.out.len();
        key.write_pseudonym(domain, id, &mut self.out);
        if domain == Domain::Athlete && self.user_hash.is_none() {
            self.user_hash = Some(self.out[start..].to_owned());
        }
        self.out.push('"');
        true
    }

    /// Writes an earlier scrub's pseudonym when the policy keeps it; `false` when refused.
    fn kept_pseudonym(&mut self, domain: Domain, raw: &str) -> bool {
        let kept = allow::plain_string(raw).is_some_and(|s| self.pseudonyms.keeps(s));
        if !kept || (domain == Domain::Athlete && self.subject.is_some()) {
            return false;
        }
        self.out.push_str(raw);
        if domain == Domain::Athlete && self.user_hash.is_none() {
            self.user_hash = allow::plain_string(raw).map(str::to_owned);
        }
        true
    }

    /// Writes a scalar if `leaf` accepts it.
    #[inline]
    fn leaf(&mut self, leaf: Leaf, raw: &str) -> bool {
        let ok = leaf.accepts(raw);
        if ok {
            self.out.push_str(raw);
        }
        ok
    }

    /// Writes the caller's `user_hash` as the last member of an athlete block (`first`: the
    /// block has no member yet).
    fn write_subject(&mut self, first: bool) {
        let Some(subject) = self.subject else { return };
        if !first {
            self.out.push(',');
        }
        // A pseudonym needs no JSON escaping (key ids are validated, the rest is hex).
        self.out.push_str("\"user_hash\":\"");
        self.out.push_str(subject);
        self.out.push('"');
        self.subject_written = true;
        if self.user_hash.is_none() {
            self.user_hash = Some(subject.to_owned());
        }
    }

    /// Writes the anonymization block as the last member of the top-level object.
    fn write_anonymization(&mut self, mut first: bool) {
        if self.subject.is_some() && !self.subject_written {
            // No athlete block in the input: the caller's user_hash gets one of its own.
            if !first {
                self.out.push(',');
            }
            self.out.push_str("\"athlete\":{");
            self.write_subject(true);
            self.out.push('}');
            first = false;
        }
        if !first {
            self.out.push(',');
        }
        self.out.push_str("\"anonymization\":{\"pii_removed\":true,\"version\":\"");
        self.out.push_str(SCRUB_VERSION);
        match self.key {
            Some(key) => {
                self.out.push_str("\",\"key_id\":\"");
                // Key ids are validated to need no escaping.
                self.out.push_str(key.key_id());
                self.out.push_str("\",\"pseudonym\":\"hmac-sha256\"}");
            }
            None => self.out.push_str("\",\"key_id\":null,\"pseudonym\":\"none\"}"),
        }
    }

    /// Writes one buffered element of a stream list; `false` when the element is removed.
    /// `series` writes the `data` member (raw text) as the given node, by either parser.
    fn stream_entry<E>(
        &mut self,
        entry: StreamEntry<'_>,
        first: bool,
        mut series: impl FnMut(&mut Self, Node, &str) -> Result<bool, E>,
    ) -> Result<bool, E> {
        let type_raw = entry.raws[STREAM_ENTRY_TYPE];
        let Some(stream_type) =
            type_raw.and_then(allow::plain_string).filter(|t| allow::one_of(STREAM_TYPES, t))
        else {
            return Ok(false);
        };
        let mut removed = entry.removed;
        self.removed_count += entry.removed_count;
        if !first {
            self.out.push(',');
        }
        self.out.push('{');
        let mut first_field = true;
        for (field, raw) in STREAM_ENTRY.fields.iter().zip(entry.raws) {
            let Some(raw) = raw else { continue };
            let mark = self.out.len();
            if !first_field {
                self.out.push(',');
            }
            self.out.push_str(field.out_key);
            let kept = match field.node {
                Node::Series(_) => {
                    let len = self.enter(field.name);
                    let node = Node::Series(allow::stream_sample(stream_type));
                    let kept = series(self, node, raw)?;
                    self.path.truncate(len);
                    kept
                }
                Node::Leaf(leaf) => self.leaf(leaf, raw),
                _ => false,
            };
            if kept {
                first_field = false;
            } else {
                self.out.truncate(mark);
                self.removed_count += 1;
                removed.extend(self.removed_child_path(field.name));
            }
        }
        self.out.push('}');
        self.removed.append(&mut removed);
        Ok(true)
    }
}

/// The index of `type` in [`STREAM_ENTRY`] (sorted by name: `type` comes last).
const STREAM_ENTRY_TYPE: usize = 4;
const _: () = assert!(matches!(STREAM_ENTRY.fields[STREAM_ENTRY_TYPE].name.as_bytes(), b"type"));

/// Appends `/name` to a JSON pointer, escaping `~` and `/` as RFC 6901 requires.
fn push_segment(path: &mut String, name: &str) {
    path.push('/');
    if name.contains(['~', '/']) {
        for c in name.chars() {
            match c {
                '~' => path.push_str("~0"),
                '/' => path.push_str("~1"),
                c => path.push(c),
            }
        }
    } else {
        path.push_str(name);
    }
}

/// Filters an object's members against `obj`; `root` appends the anonymization block.
fn filter_map<'de, A: MapAccess<'de>>(
    f: &mut Filter<'_>,
    obj: &'static Object,
    mut map: A,
    root: bool,
) -> Result<(), A::Error> {
    f.out.push('{');
    let mut first = true;
    // Which allowed fields were written, so a repeated key cannot produce a repeated member.
    // Both pseudonym fields (`id` and an earlier scrub's `user_hash`) share the top bit.
    let mut seen = 0u64;
    while let Some(key) = map.next_key_seed(KeySeed(obj))? {
        let index = match key {
            Key::Known(index) => index,
            Key::Unknown(name) => {
                map.next_value::<IgnoredAny>()?;
                f.remove_child(&name);
                continue;
            }
        };
        let field = &obj.fields[index];
        let bit = if field.node.is_pseudonym() { 1 << 63 } else { 1 << index };
        if seen & bit != 0 {
            map.next_value::<IgnoredAny>()?;
            f.remove_child(field.name);
            continue;
        }
        let mark = f.out.len();
        if !first {
            f.out.push(',');
        }
        f.out.push_str(field.out_key);
        if f.field_value(field, &mut map)? {
            first = false;
            seen |= bit;
        } else {
            f.out.truncate(mark);
            f.remove_child(field.name);
        }
    }
    if std::ptr::eq(obj, &ATHLETE) {
        f.write_subject(first);
    }
    if root {
        f.write_anonymization(first);
    }
    f.out.push('}');
    Ok(())
}

/// Filters an array of objects; elements that are not objects are removed.
fn filter_records<'de, A: SeqAccess<'de>>(
    f: &mut Filter<'_>,
    obj: &'static Object,
    mut seq: A,
) -> Result<(), A::Error> {
    let activities = std::ptr::eq(obj, &ACTIVITY);
    f.out.push('[');
    let mut first = true;
    for index in 0.. {
        let len = f.enter_index(index);
        let mark = f.out.len();
        if !first {
            f.out.push(',');
        }
        let Some(kept) = seq.next_element_seed(RecordSeed { f: &mut *f, obj })? else {
            f.out.truncate(mark);
            f.path.truncate(len);
            break;
        };
        if kept {
            first = false;
            f.activities_kept += usize::from(activities);
        } else {
            f.out.truncate(mark);
            f.remove_here();
            f.activities_removed += usize::from(activities);
        }
        f.path.truncate(len);
    }
    f.out.push(']');
    Ok(())
}

/// Filters a time series; a sample of the wrong type becomes `null` to keep positions.
fn filter_series<'de, A: SeqAccess<'de>>(
    f: &mut Filter<'_>,
    leaf: Leaf,
    mut seq: A,
) -> Result<(), A::Error> {
    f.out.push('[');
    let mut index = 0;
    while let Some(raw) = seq.next_element::<&'de RawValue>()? {
        if index > 0 {
            f.out.push(',');
        }
        if !f.leaf(leaf, raw.get()) {
            f.out.push_str("null");
            f.remove_index(index);
        }
        index += 1;
    }
    f.out.push(']');
    Ok(())
}

/// Filters a stream list (`[{"type": "watts", "data": [...]}, ...]`): each element is
/// buffered (borrowed raw values, nothing copied) until its `type` is known.
fn filter_stream_list<'de, A: SeqAccess<'de>>(
    f: &mut Filter<'_>,
    mut seq: A,
) -> Result<(), A::Error> {
    f.out.push('[');
    let mut first = true;
    for index in 0.. {
        let len = f.enter_index(index);
        let Some(entry) = seq.next_element_seed(StreamEntrySeed { f: &mut *f })? else {
            f.path.truncate(len);
            break;
        };
        let kept = match entry {
            Some(entry) => f
                .stream_entry(entry, first, |f, node, raw| {
                    let mut de = serde_json::Deserializer::from_str(raw);
                    NodeSeed { f, node }.deserialize(&mut de)
                })
                .map_err(de::Error::custom)?,
            None => false,
        };
        if kept {
            first = false;
        } else {
            f.remove_here();
        }
        f.path.truncate(len);
    }
    f.out.push(']');
    Ok(())
}

fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

/// Visitor methods for scalars: the value (already parsed and validated) is refused.
macro_rules! refuse_scalars {
    ($refused:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($refused)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($refused)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($refused)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($refused)
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok($refused)
        }
    };
}

/// [`Object::find`] by the object's slot table ([`allow::slot`]): one hash and at most one
/// comparison; a slot two fields share falls back to the binary search. A key lookup per
/// member of every kept object is the scrub's most frequent operation.
#[inline]
fn find(obj: &Object, name: &str) -> Option<usize> {
    match obj.slots[allow::slot(name.as_bytes())] {
        allow::NO_FIELD => None,
        allow::SHARED_SLOT => obj.find(name),
        i => {
            let i = usize::from(i);
            // Compared inline: keys are short, and a `memcmp` call costs more than the loop.
            let field = obj.fields[i].name.as_bytes();
            let name = name.as_bytes();
            (field.len() == name.len() && field.iter().zip(name).all(|(a, b)| a == b)).then_some(i)
        }
    }
}

/// An object key: the index of an allowed field, or the (unknown) name for the report.
enum Key<'de> {
    Known(usize),
    Unknown(Cow<'de, str>),
}

/// Reads a key and looks it up in an allow-list without allocating.
struct KeySeed(&'static Object);

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Key<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(find(self.0, s).map_or(Key::Unknown(Cow::Borrowed(s)), Key::Known))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        Ok(find(self.0, s).map_or_else(|| Key::Unknown(Cow::Owned(s.to_owned())), Key::Known))
    }
}

/// The value of a container field: written if its shape matches `node` (or it is `null`).
struct NodeSeed<'a, 'k> {
    f: &'a mut Filter<'k>,
    node: Node,
}

impl<'de> DeserializeSeed<'de> for NodeSeed<'_, '_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NodeSeed<'_, '_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    refuse_scalars!(false);

    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        self.f.out.push_str("null");
        Ok(true)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<bool, A::Error> {
        let obj = match self.node {
            Node::Object(obj) => obj,
            Node::Streams => &STREAMS_BY_TYPE,
            _ => return drain_map(map).map(|()| false),
        };
        filter_map(self.f, obj, map, false).map(|()| true)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<bool, A::Error> {
        match self.node {
            Node::Records(obj) => filter_records(self.f, obj, seq),
            Node::Series(leaf) => filter_series(self.f, leaf, seq),
            Node::Streams => filter_stream_list(self.f, seq),
            _ => return drain_seq(seq).map(|()| false),
        }
        .map(|()| true)
    }
}

/// An element of a [`Node::Records`] array: kept only if it is an object.
struct RecordSeed<'a, 'k> {
    f: &'a mut Filter<'k>,
    obj: &'static Object,
}

impl<'de> DeserializeSeed<'de> for RecordSeed<'_, '_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RecordSeed<'_, '_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    refuse_scalars!(false);

    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<bool, A::Error> {
        filter_map(self.f, self.obj, map, false).map(|()| true)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<bool, A::Error> {
        drain_seq(seq).map(|()| false)
    }
}

/// A stream list element, buffered: raw values of the allowed fields (in [`STREAM_ENTRY`]
/// order) and the members already refused (their paths when they are listed).
struct StreamEntry<'de> {
    raws: [Option<&'de str>; 5],
    removed: Vec<String>,
    removed_count: usize,
}

/// Reads a stream list element; `None` when it is not an object.
struct StreamEntrySeed<'a, 'k> {
    f: &'a mut Filter<'k>,
}

impl<'de> DeserializeSeed<'de> for StreamEntrySeed<'_, '_> {
    type Value = Option<StreamEntry<'de>>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StreamEntrySeed<'_, '_> {
    type Value = Option<StreamEntry<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    refuse_scalars!(None);

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut entry = StreamEntry { raws: [None; 5], removed: Vec::new(), removed_count: 0 };
        while let Some(key) = map.next_key_seed(KeySeed(&STREAM_ENTRY))? {
            match key {
                Key::Known(index) if entry.raws[index].is_none() => {
                    entry.raws[index] = Some(map.next_value::<&'de RawValue>()?.get());
                }
                Key::Known(index) => {
                    map.next_value::<IgnoredAny>()?;
                    entry.removed_count += 1;
                    let name = STREAM_ENTRY.fields[index].name;
                    entry.removed.extend(self.f.removed_child_path(name));
                }
                Key::Unknown(name) => {
                    map.next_value::<IgnoredAny>()?;
                    entry.removed_count += 1;
                    entry.removed.extend(self.f.removed_child_path(&name));
                }
            }
        }
        Ok(Some(entry))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        drain_seq(seq).map(|()| None)
    }
}

/// The top level: a rider document, or an array of activities.
struct RootSeed<'a, 'k>(&'a mut Filter<'k>);

impl<'de> DeserializeSeed<'de> for RootSeed<'_, '_> {
    type Value = Root;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Root, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RootSeed<'_, '_> {
    type Value = Root;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a rider document (an object) or an array of activities")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Root, E> {
        Ok(Root::Other("boolean"))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Root, E> {
        Ok(Root::Other("number"))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Root, E> {
        Ok(Root::Other("number"))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Root, E> {
        Ok(Root::Other("number"))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Root, E> {
        Ok(Root::Other("string"))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Root, E> {
        Ok(Root::Other("null"))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Root, A::Error> {
        filter_map(self.0, &ROOT, map, true)?;
        Ok(Root::Document)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Root, A::Error> {
        let f = self.0;
        f.out.push_str("{\"activities\":");
        filter_records(f, &ACTIVITY, seq)?;
        f.write_anonymization(false);
        f.out.push('}');
        Ok(Root::Activities)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{PseudonymKey, corpus, scrub, scrub_counting, scrub_keyless};
    use super::*;

    #[test]
    fn find_agrees_with_the_allow_list_lookup() {
        for (name, obj) in allow::all_objects() {
            for (i, field) in obj.fields.iter().enumerate() {
                assert_eq!(find(obj, field.name), Some(i), "{name}.{}", field.name);
                for probe in [&field.name[..field.name.len() - 1], &format!("{}x", field.name)] {
                    assert_eq!(find(obj, probe), obj.find(probe), "{name}: {probe:?}");
                }
            }
            for probe in ["", "~", "zzzz", "a", "\u{e9}t\u{e9}", "id\u{0}"] {
                assert_eq!(find(obj, probe), obj.find(probe), "{name}: {probe:?}");
            }
        }
    }

    /// A caller's buffer is cleared and used, also when the scanner gives up part way and
    /// the serde path starts again (an escaped key), and a small one grows.
    #[test]
    fn counting_into_a_given_buffer_writes_what_counting_writes() {
        let key = PseudonymKey::new("k1", b"test-secret-0123456789").unwrap();
        let escaped = br#"{"activities": [{"id": 1, "distance": 5, "n\u0061me": "x"}]}"#;
        for input in [corpus::generate(3, 7).into_bytes(), escaped.to_vec()] {
            for k in [Some(&key), None] {
                let expected = scrub_counting(&input, k).unwrap();
                for given in [String::new(), "stale".to_owned(), "x".repeat(input.len() * 4)] {
                    let cap = given.capacity();
                    let into = super::super::scrub_counting_into(&input, k, given).unwrap();
                    assert_eq!(into, expected);
                    if cap >= expected.document.len() {
                        assert_eq!(into.document.capacity(), cap, "the buffer was reallocated");
                    }
                }
            }
        }
    }

    #[test]
    fn counting_writes_the_same_document_and_count_as_listing() {
        let key = PseudonymKey::new("k1", b"test-secret-0123456789").unwrap();
        let odd = br#"[{"id": 1, "streams": [{"type": "watts", "data": [1, "x", 2], "type": "a", "bad": 1},
            7, {"type": "latlng"}], "x/y~": {"a": [1]}}, "activity", {"name": "n", "distance": "far"}]"#;
        for input in [corpus::generate(3, 7).into_bytes(), odd.to_vec()] {
            for k in [Some(&key), None] {
                let listed = match k {
                    Some(k) => scrub(&input, k),
                    None => scrub_keyless(&input),
                }
                .unwrap();
                let counted = scrub_counting(&input, k).unwrap();
                assert_eq!(counted.document, listed.document);
                assert!(counted.report.removed.is_empty());
                assert!(listed.report.removed_count > 3);
                assert_eq!(counted.report.removed_count, listed.report.removed.len());
                assert_eq!(listed.report.removed_count, listed.report.removed.len());
                let mut expected = listed.report.clone();
                expected.removed.clear();
                assert_eq!(counted.report, expected);
            }
        }
    }
}
