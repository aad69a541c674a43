//! The fast path of the filter: a byte-level JSON scanner driving the same allow-list walk as
//! the serde path (the parent module), with no visitor, no per-value allocation and no
//! conversion of any value: kept scalars are borrowed slices of the input, checked by the same
//! [`Leaf`] rules and copied byte for byte by the same [`Filter`] methods.
//!
//! The scanner accepts a subset of what the serde path accepts, never more: anything it does
//! not reproduce exactly (invalid JSON, whose error message and position the serde path
//! words; an escaped object key; an escaped string or an exponent where a container is
//! expected, which serde_json decodes or converts and may refuse) makes it give up with
//! [`Bail`], and the caller discards its output and runs the serde path from the start. So the
//! document, the report and every error are the serde path's, and a differential test
//! (`scan_agrees_with_the_serde_path`) holds the two together.

use super::{
    ACTIVITY, ATHLETE, Filter, Leaf, Node, Object, ROOT, Root, STREAM_ENTRY, STREAMS_BY_TYPE,
    StreamEntry, find,
};
use crate::scrub::allow;

/// The scanner gave up: the serde path decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::scrub) struct Bail;

type Scanned<T> = Result<T, Bail>;

/// A position in the input and the open containers of the value being skipped.
struct Scan<'a> {
    text: &'a str,
    i: usize,
    /// Open containers of [`Scan::skip`] (`true`: an object), kept to reuse its allocation.
    stack: Vec<bool>,
}

/// Scrubs `input` into `f` (fresh); `Err(Bail)` leaves `f` to be discarded.
pub(super) fn run(f: &mut Filter<'_>, input: &str) -> Scanned<Root> {
    let mut sc = Scan { text: input, i: 0, stack: Vec::new() };
    let root = match sc.peek() {
        Some(b'{') => {
            sc.i += 1;
            object(f, &mut sc, &ROOT, true)?;
            Root::Document
        }
        Some(b'[') => {
            sc.i += 1;
            f.out.push_str("{\"activities\":");
            records(f, &mut sc, &ACTIVITY)?;
            f.write_anonymization(false);
            f.out.push('}');
            Root::Activities
        }
        // Not a document (or not JSON): the serde path names what it is.
        _ => return Err(Bail),
    };
    match sc.peek() {
        None => Ok(root),
        Some(_) => Err(Bail),
    }
}

impl<'a> Scan<'a> {
    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    /// Skips JSON whitespace; the next byte, if any.
    #[inline]
    fn peek(&mut self) -> Option<u8> {
        let b = self.bytes();
        while let Some(&c) = b.get(self.i) {
            match c {
                b' ' | b'\n' | b'\t' | b'\r' => self.i += 1,
                _ => return Some(c),
            }
        }
        None
    }

    #[inline]
    fn expect(&mut self, c: u8) -> Scanned<()> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(Bail)
        }
    }

    /// After a container's element: `Ok(true)` at a `,` (another follows), `Ok(false)` at the
    /// closing byte `close`.
    #[inline]
    fn next(&mut self, close: u8) -> Scanned<bool> {
        match self.peek() {
            Some(b',') => {
                self.i += 1;
                Ok(true)
            }
            Some(c) if c == close => {
                self.i += 1;
                Ok(false)
            }
            _ => Err(Bail),
        }
    }

    /// Consumes `close` if it comes next (an empty container).
    #[inline]
    fn empty(&mut self, close: u8) -> bool {
        let empty = self.peek() == Some(close);
        self.i += usize::from(empty);
        empty
    }

    fn literal(&mut self, word: &[u8]) -> Scanned<()> {
        if self.bytes()[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(())
        } else {
            Err(Bail)
        }
    }

    /// Moves to the first `"`, `\` or control character of a string body (8 bytes at a time:
    /// dropped free text is most of a rider export's bytes).
    #[inline]
    fn skip_plain(&mut self) {
        const ONES: u64 = u64::MAX / 255;
        let b = self.bytes();
        while let Some(chunk) = b.get(self.i..self.i + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            let c = u64::from_le_bytes(word);
            let ctrl = c.wrapping_sub(ONES * 0x20) & !c;
            let q = c ^ (ONES * u64::from(b'"'));
            let quote = q.wrapping_sub(ONES) & !q;
            let s = c ^ (ONES * u64::from(b'\\'));
            let slash = s.wrapping_sub(ONES) & !s;
            // The lowest flagged byte is exact (a false flag only follows a true one).
            let m = (ctrl | quote | slash) & (ONES << 7);
            if m != 0 {
                self.i += (m.trailing_zeros() / 8) as usize;
                return;
            }
            self.i += 8;
        }
        while let Some(&c) = b.get(self.i) {
            if c == b'"' || c == b'\\' || c < 0x20 {
                return;
            }
            self.i += 1;
        }
    }

    /// A string body after its opening quote, up to and including the closing one, validated
    /// as serde_json ignores a string; whether it held an escape.
    fn string(&mut self) -> Scanned<bool> {
        let b = self.bytes();
        let mut escaped = false;
        loop {
            self.skip_plain();
            match b.get(self.i) {
                Some(b'"') => {
                    self.i += 1;
                    return Ok(escaped);
                }
                Some(b'\\') => {
                    escaped = true;
                    match b.get(self.i + 1) {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.i += 2,
                        Some(b'u') => {
                            let hex = b.get(self.i + 2..self.i + 6).ok_or(Bail)?;
                            if !hex.iter().all(u8::is_ascii_hexdigit) {
                                return Err(Bail);
                            }
                            self.i += 6;
                        }
                        _ => return Err(Bail),
                    }
                }
                // A control character, or the end of the input.
                _ => return Err(Bail),
            }
        }
    }

    /// A number token, by JSON's grammar (as serde_json ignores one); whether it is a plain
    /// decimal (no exponent).
    #[inline]
    fn number(&mut self) -> Scanned<bool> {
        let b = self.bytes();
        let digit = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
        let mut i = self.i;
        if b.get(i) == Some(&b'-') {
            i += 1;
        }
        match b.get(i) {
            Some(b'0') => {
                i += 1;
                if digit(i) {
                    return Err(Bail);
                }
            }
            Some(b'1'..=b'9') => {
                i += 1;
                while digit(i) {
                    i += 1;
                }
            }
            _ => return Err(Bail),
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            if !digit(i) {
                return Err(Bail);
            }
            while digit(i) {
                i += 1;
            }
        }
        let plain = !matches!(b.get(i), Some(b'e' | b'E'));
        if !plain {
            i += 1;
            if matches!(b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            if !digit(i) {
                return Err(Bail);
            }
            while digit(i) {
                i += 1;
            }
        }
        self.i = i;
        Ok(plain)
    }

    /// An object key up to its `:`, when it has no escape (an escaped key is decoded by
    /// serde_json before the lookup, and may be refused: the serde path handles it).
    fn key(&mut self) -> Scanned<&'a str> {
        self.expect(b'"')?;
        let start = self.i;
        if self.string()? {
            return Err(Bail);
        }
        let name = self.text.get(start..self.i - 1).ok_or(Bail)?;
        self.expect(b':')?;
        Ok(name)
    }

    /// Skips one value, validated, without recursion (a dropped subtree may nest deeply).
    fn skip(&mut self) -> Scanned<()> {
        let base = self.stack.len();
        loop {
            match self.peek().ok_or(Bail)? {
                b'{' => {
                    self.i += 1;
                    if !self.empty(b'}') {
                        self.stack.push(true);
                        self.skipped_key()?;
                        continue;
                    }
                }
                b'[' => {
                    self.i += 1;
                    if !self.empty(b']') {
                        self.stack.push(false);
                        continue;
                    }
                }
                b'"' => {
                    self.i += 1;
                    self.string()?;
                }
                b'-' | b'0'..=b'9' => {
                    self.number()?;
                }
                b't' => self.literal(b"true")?,
                b'f' => self.literal(b"false")?,
                b'n' => self.literal(b"null")?,
                _ => return Err(Bail),
            }
            // A value ended: close what it ends, or go on to the next element.
            loop {
                let Some(&object) = self.stack.get(base..).and_then(<[bool]>::last) else {
                    return Ok(());
                };
                if self.next(if object { b'}' } else { b']' })? {
                    if object {
                        self.skipped_key()?;
                    }
                    break;
                }
                self.stack.pop();
            }
        }
    }

    /// A key inside a skipped object: any valid string (serde_json ignores it undecoded).
    fn skipped_key(&mut self) -> Scanned<()> {
        self.expect(b'"')?;
        self.string()?;
        self.expect(b':')
    }

    /// A scalar field's value written into `f` if `leaf` accepts it ([`Filter::leaf`]).
    /// A plain decimal of at most 300 bytes is a finite double, which [`Leaf::Number`]
    /// accepts, so it is copied without a second look.
    #[inline]
    fn leaf(&mut self, f: &mut Filter<'_>, leaf: Leaf) -> Scanned<bool> {
        self.peek();
        let start = self.i;
        if matches!(self.bytes().get(start), Some(b'-' | b'0'..=b'9')) {
            let plain = self.number()?;
            let token = self.text.get(start..self.i).ok_or(Bail)?;
            if plain && token.len() <= 300 && matches!(leaf, Leaf::Number) {
                f.out.push_str(token);
                return Ok(true);
            }
            return Ok(f.leaf(leaf, token));
        }
        let raw = self.raw()?;
        Ok(f.leaf(leaf, raw))
    }

    /// A whole array (after `[`) of plain decimals of at most 300 bytes each (which
    /// [`Leaf::Number`] accepts) written compactly (no whitespace): its text from the `[`,
    /// consumed. Anything else: `None`, and nothing is consumed.
    fn compact_plain_numbers(&mut self) -> Option<&'a str> {
        let start = self.i;
        let b = self.bytes();
        if b.get(self.i) != Some(&b']') {
            loop {
                let sample = self.i;
                if !matches!(b.get(sample), Some(b'-' | b'0'..=b'9'))
                    || self.number() != Ok(true)
                    || self.i - sample > 300
                {
                    self.i = start;
                    return None;
                }
                match b.get(self.i) {
                    Some(b',') => self.i += 1,
                    Some(b']') => break,
                    _ => {
                        self.i = start;
                        return None;
                    }
                }
            }
        }
        self.i += 1;
        self.text.get(start - 1..self.i)
    }

    /// One value, skipped; its text.
    #[inline]
    fn raw(&mut self) -> Scanned<&'a str> {
        self.peek();
        let start = self.i;
        // Numbers first: they are most of what is kept (series samples, metrics).
        let b = self.bytes();
        if matches!(b.get(start), Some(b'-' | b'0'..=b'9')) {
            self.number()?;
        } else {
            self.skip()?;
        }
        self.text.get(start..self.i).ok_or(Bail)
    }

    /// The rest of an object of the wrong shape (after `{`), dropped. Its own keys are
    /// decoded by serde_json (an escaped one may be refused), so they go through [`Scan::key`].
    fn drain_object(&mut self) -> Scanned<()> {
        if self.empty(b'}') {
            return Ok(());
        }
        loop {
            self.key()?;
            self.skip()?;
            if !self.next(b'}')? {
                return Ok(());
            }
        }
    }

    /// The rest of an array of the wrong shape (after `[`), dropped.
    fn drain_array(&mut self) -> Scanned<()> {
        if self.empty(b']') {
            return Ok(());
        }
        loop {
            self.skip()?;
            if !self.next(b']')? {
                return Ok(());
            }
        }
    }

    /// A scalar where a container is expected, refused. serde_json converts it first (a
    /// number to a double, an escaped string decoded), which can fail: only the forms that
    /// surely convert are taken here.
    fn refused_scalar(&mut self) -> Scanned<()> {
        match self.peek().ok_or(Bail)? {
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'"' => {
                self.i += 1;
                if self.string()? { Err(Bail) } else { Ok(()) }
            }
            b'-' | b'0'..=b'9' => {
                let start = self.i;
                self.number()?;
                let token = self.text.get(start..self.i).ok_or(Bail)?;
                if allow::plain_decimal(token) { Ok(()) } else { Err(Bail) }
            }
            _ => Err(Bail),
        }
    }
}

/// An object's members against `obj` (after `{`); `root` appends the anonymization block.
fn object(f: &mut Filter<'_>, sc: &mut Scan<'_>, obj: &'static Object, root: bool) -> Scanned<()> {
    f.out.push('{');
    let mut first = true;
    // As in the serde path: a repeated key never writes a repeated member.
    let mut seen = 0u64;
    if !sc.empty(b'}') {
        loop {
            let name = sc.key()?;
            match find(obj, name) {
                None => {
                    sc.skip()?;
                    f.remove_child(name);
                }
                Some(index) => {
                    let field = &obj.fields[index];
                    let bit = if field.node.is_pseudonym() { 1 << 63 } else { 1 << index };
                    if seen & bit != 0 {
                        sc.skip()?;
                        f.remove_child(field.name);
                    } else {
                        let mark = f.out.len();
                        if !first {
                            f.out.push(',');
                        }
                        f.out.push_str(field.out_key);
                        let kept = match field.node {
                            Node::Leaf(leaf) => sc.leaf(f, leaf)?,
                            Node::Pseudonym(domain) => {
                                let raw = sc.raw()?;
                                f.pseudonym(domain, raw)
                            }
                            Node::KeptPseudonym(domain) => {
                                let raw = sc.raw()?;
                                f.kept_pseudonym(domain, raw)
                            }
                            node => {
                                let len = f.enter(field.name);
                                let kept = value(f, sc, node)?;
                                f.path.truncate(len);
                                kept
                            }
                        };
                        if kept {
                            first = false;
                            seen |= bit;
                        } else {
                            f.out.truncate(mark);
                            f.remove_child(field.name);
                        }
                    }
                }
            }
            if !sc.next(b'}')? {
                break;
            }
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

/// The value of a container field: written if its shape matches `node` (or it is `null`).
fn value(f: &mut Filter<'_>, sc: &mut Scan<'_>, node: Node) -> Scanned<bool> {
    match sc.peek().ok_or(Bail)? {
        b'n' => {
            sc.literal(b"null")?;
            f.out.push_str("null");
            Ok(true)
        }
        b'{' => {
            sc.i += 1;
            let obj = match node {
                Node::Object(obj) => obj,
                Node::Streams => &STREAMS_BY_TYPE,
                _ => return sc.drain_object().map(|()| false),
            };
            object(f, sc, obj, false).map(|()| true)
        }
        b'[' => {
            sc.i += 1;
            match node {
                Node::Records(obj) => records(f, sc, obj)?,
                Node::Series(leaf) => series(f, sc, leaf)?,
                Node::Streams => stream_list(f, sc)?,
                _ => return sc.drain_array().map(|()| false),
            }
            Ok(true)
        }
        _ => sc.refused_scalar().map(|()| false),
    }
}

/// An array of objects (after `[`); elements that are not objects are removed.
fn records(f: &mut Filter<'_>, sc: &mut Scan<'_>, obj: &'static Object) -> Scanned<()> {
    let activities = std::ptr::eq(obj, &ACTIVITY);
    f.out.push('[');
    let mut first = true;
    if !sc.empty(b']') {
        for index in 0.. {
            let len = f.enter_index(index);
            let mark = f.out.len();
            if !first {
                f.out.push(',');
            }
            let kept = match sc.peek().ok_or(Bail)? {
                b'{' => {
                    sc.i += 1;
                    object(f, sc, obj, false)?;
                    true
                }
                b'[' => {
                    sc.i += 1;
                    sc.drain_array()?;
                    false
                }
                _ => {
                    sc.refused_scalar()?;
                    false
                }
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
            if !sc.next(b']')? {
                break;
            }
        }
    }
    f.out.push(']');
    Ok(())
}

/// A time series (after `[`); a sample of the wrong type becomes `null` to keep positions.
fn series(f: &mut Filter<'_>, sc: &mut Scan<'_>, leaf: Leaf) -> Scanned<()> {
    if matches!(leaf, Leaf::Number)
        && let Some(text) = sc.compact_plain_numbers()
    {
        // Exactly what the sample-by-sample loop below writes for it, in one copy.
        f.out.push_str(text);
        return Ok(());
    }
    f.out.push('[');
    if !sc.empty(b']') {
        for index in 0.. {
            if index > 0 {
                f.out.push(',');
            }
            if !sc.leaf(f, leaf)? {
                f.out.push_str("null");
                f.remove_index(index);
            }
            if !sc.next(b']')? {
                break;
            }
        }
    }
    f.out.push(']');
    Ok(())
}

/// A stream list (after `[`): each element's members are borrowed until its `type` is known.
fn stream_list(f: &mut Filter<'_>, sc: &mut Scan<'_>) -> Scanned<()> {
    f.out.push('[');
    let mut first = true;
    if !sc.empty(b']') {
        for index in 0.. {
            let len = f.enter_index(index);
            let entry = match sc.peek().ok_or(Bail)? {
                b'{' => {
                    sc.i += 1;
                    Some(stream_entry(f, sc)?)
                }
                b'[' => {
                    sc.i += 1;
                    sc.drain_array()?;
                    None
                }
                _ => {
                    sc.refused_scalar()?;
                    None
                }
            };
            let kept = match entry {
                Some(entry) => f.stream_entry(entry, first, |f, node, raw| {
                    let mut sc = Scan { text: raw, i: 0, stack: Vec::new() };
                    value(f, &mut sc, node)
                })?,
                None => false,
            };
            if kept {
                first = false;
            } else {
                f.remove_here();
            }
            f.path.truncate(len);
            if !sc.next(b']')? {
                break;
            }
        }
    }
    f.out.push(']');
    Ok(())
}

/// A stream list element's members (after `{`), borrowed.
fn stream_entry<'a>(f: &Filter<'_>, sc: &mut Scan<'a>) -> Scanned<StreamEntry<'a>> {
    let mut entry = StreamEntry { raws: [None; 5], removed: Vec::new(), removed_count: 0 };
    if !sc.empty(b'}') {
        loop {
            let name = sc.key()?;
            match find(&STREAM_ENTRY, name) {
                Some(index) if entry.raws[index].is_none() => entry.raws[index] = Some(sc.raw()?),
                Some(index) => {
                    sc.skip()?;
                    entry.removed_count += 1;
                    entry.removed.extend(f.removed_child_path(STREAM_ENTRY.fields[index].name));
                }
                None => {
                    sc.skip()?;
                    entry.removed_count += 1;
                    entry.removed.extend(f.removed_child_path(name));
                }
            }
            if !sc.next(b'}')? {
                break;
            }
        }
    }
    Ok(entry)
}
