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

    /// The literal `word` (`true`, `false`, `null`), compared as one word, not by a call.
    #[inline(always)]
    fn literal<const N: usize>(&mut self, word: &[u8; N]) -> Scanned<()> {
        if self.bytes().get(self.i..self.i + N) == Some(word.as_slice()) {
            self.i += N;
            Ok(())
        } else {
            Err(Bail)
        }
    }

    /// A string body after its opening quote, up to and including the closing one, validated
    /// as serde_json ignores a string; whether it held an escape.
    #[inline]
    fn string(&mut self) -> Scanned<bool> {
        let b = self.bytes();
        let mut i = self.i;
        let mut escaped = false;
        loop {
            i = plain_end(b, i);
            match b.get(i) {
                Some(b'"') => {
                    self.i = i + 1;
                    return Ok(escaped);
                }
                Some(b'\\') => {
                    escaped = true;
                    match b.get(i + 1) {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => i += 2,
                        Some(b'u') => {
                            let hex = b.get(i + 2..i + 6).ok_or(Bail)?;
                            if !hex.iter().all(u8::is_ascii_hexdigit) {
                                return Err(Bail);
                            }
                            i += 6;
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
    /// decimal (no exponent). Digit runs are found eight bytes at a time ([`digits_end`]).
    #[inline]
    fn number(&mut self) -> Scanned<bool> {
        let b = self.bytes();
        let int = self.i + usize::from(b.get(self.i) == Some(&b'-'));
        let mut i = digits_end(b, int);
        // `0` alone, or a non-zero digit first: `01` is not JSON.
        if i == int || (i > int + 1 && b.get(int) == Some(&b'0')) {
            return Err(Bail);
        }
        if b.get(i) == Some(&b'.') {
            let frac = i + 1;
            i = digits_end(b, frac);
            if i == frac {
                return Err(Bail);
            }
        }
        let plain = !matches!(b.get(i), Some(b'e' | b'E'));
        if !plain {
            i += 1;
            if matches!(b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            let exp = i;
            i = digits_end(b, exp);
            if i == exp {
                return Err(Bail);
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
        // The innermost open container is `object`; the ones around it are on the stack.
        let base = self.stack.len();
        let mut depth = 0usize;
        let mut object = false;
        loop {
            match self.peek().ok_or(Bail)? {
                b'{' => {
                    self.i += 1;
                    if !self.empty(b'}') {
                        self.stack.push(object);
                        (depth, object) = (depth + 1, true);
                        self.skipped_key()?;
                        continue;
                    }
                }
                b'[' => {
                    self.i += 1;
                    // A dropped series (altitude, grade): checked whole, not number by number.
                    if let Some(end) = plain_number_list_end(self.bytes(), self.i) {
                        self.i = end;
                    } else if !self.empty(b']') {
                        self.stack.push(object);
                        (depth, object) = (depth + 1, false);
                        continue;
                    }
                }
                b'"' => {
                    self.i += 1;
                    self.string()?;
                }
                b'-' | b'0'..=b'9' => {
                    self.number()?;
                    // A run of numbers in an array (samples, coordinates), compactly written:
                    // no dispatch between them. Anything else goes the general way below.
                    if depth > 0 && !object {
                        let b = self.bytes();
                        while b.get(self.i) == Some(&b',')
                            && matches!(b.get(self.i + 1), Some(b'-' | b'0'..=b'9'))
                        {
                            self.i += 1;
                            self.number()?;
                        }
                    }
                }
                b't' => self.literal(b"true")?,
                b'f' => self.literal(b"false")?,
                b'n' => self.literal(b"null")?,
                _ => return Err(Bail),
            }
            // A value ended: close what it ends, or go on to the next element.
            loop {
                if depth == 0 {
                    debug_assert_eq!(self.stack.len(), base);
                    return Ok(());
                }
                if self.next(if object { b'}' } else { b']' })? {
                    if object {
                        self.skipped_key()?;
                    }
                    break;
                }
                object = self.stack.pop().ok_or(Bail)?;
                depth -= 1;
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
        if let Some(end) = plain_number_list_end(b, start) {
            self.i = end;
            return self.text.get(start - 1..end);
        }
        self.compact_plain_numbers_one_by_one()
    }

    /// [`Scan::compact_plain_numbers`], number by number.
    #[inline(never)]
    fn compact_plain_numbers_one_by_one(&mut self) -> Option<&'a str> {
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

/// Eight bytes from `i`, as one little-endian word, if there are eight.
#[inline(always)]
fn word_at(b: &[u8], i: usize) -> Option<u64> {
    let chunk: [u8; 8] = b.get(i..i + 8)?.try_into().ok()?;
    Some(u64::from_le_bytes(chunk))
}

/// `0x01` in every byte of a word, and the top bit of every byte.
const ONES: u64 = u64::MAX / 255;
const HIGH: u64 = ONES << 7;

/// The first `"`, `\` or control character of a string body from `i` (or the end), 8 bytes
/// at a time: dropped free text is most of a rider export's bytes.
#[inline(always)]
fn plain_end(b: &[u8], mut i: usize) -> usize {
    while let Some(c) = word_at(b, i) {
        let ctrl = c.wrapping_sub(ONES * 0x20) & !c;
        let q = c ^ (ONES * u64::from(b'"'));
        let quote = q.wrapping_sub(ONES) & !q;
        let s = c ^ (ONES * u64::from(b'\\'));
        let slash = s.wrapping_sub(ONES) & !s;
        // The lowest flagged byte is exact (a false flag only follows a true one).
        let m = (ctrl | quote | slash) & HIGH;
        if m != 0 {
            return i + (m.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&c) = b.get(i) {
        if c == b'"' || c == b'\\' || c < 0x20 {
            break;
        }
        i += 1;
    }
    i
}

/// The top bit of each byte of `c` that equals `x`, exactly (no false flags between bytes).
#[inline(always)]
fn bytes_eq(c: u64, x: u8) -> u64 {
    const LOW: u64 = !HIGH;
    let t = c ^ (ONES * u64::from(x));
    !(((t & LOW) + LOW) | t) & HIGH
}

/// The end (after its `]`) of an array body from `i` (after `[`, not empty) that is a
/// compactly written list of plain decimals (`-?(0|[1-9][0-9]*)(\.[0-9]+)?`, `,` between,
/// no whitespace, each well under 300 bytes), checked 64 bytes at a time on bit masks
/// instead of number by number; `None` when these rules cannot tell (anything else in the
/// array, an exponent, a long token), and the caller reads it number by number.
///
/// Each byte is classed (digit, `.`, `,`, `-`; the first other byte must be the `]`) into
/// one bit per byte ([`Classes`]), and the grammar is checked on pairs of neighbours, with the
/// last byte's classes carried into the next block: `-` only starts a token and is followed
/// by a digit; `,` and `.` follow a digit, and a digit or `-` follows `,`; a digit follows
/// `.`; `]` follows a digit; no digit follows a token's leading `0`; and no `.` follows a `.`
/// through digits alone (one fraction per token).
fn plain_number_list_end(b: &[u8], mut i: usize) -> Option<usize> {
    // Carried classes of the previous byte (bit 0 of the next block): `[` starts a token.
    let (mut c_digit, mut c_start, mut c_minus, mut c_dot, mut c_zero, mut c_frac) =
        (0u64, 1u64, 0u64, 0u64, 0u64, 0u64);
    // Bytes since the last `,`: long tokens are left to the byte-by-byte path.
    let mut since = 0u32;
    loop {
        let Classes { digit, comma, minus, dot, zero } = Classes::at(b, i);
        // The bytes before the first other byte, which must be the `]`.
        let k = (!(digit | comma | minus | dot)).trailing_zeros();
        if k < 64 && b.get(i + k as usize) != Some(&b']') {
            return None;
        }
        let valid = if k < 64 { (1u64 << k) - 1 } else { u64::MAX };
        let prev = |x: u64, carry: u64| (x << 1) | carry;
        let p_digit = prev(digit, c_digit);
        let p_start = prev(comma, c_start);
        let p_minus = prev(minus, c_minus);
        let p_dot = prev(dot, c_dot);
        let lead_zero = zero & (p_start | p_minus);
        let p_zero = prev(lead_zero, c_zero);
        // A `.` and the digits after it: the first of them (after a `.`, or carried in) is
        // added to the digit runs, and the carry clears exactly the run it starts.
        let first = prev(dot, c_frac) & digit;
        let frac = dot | (digit & !digit.wrapping_add(first));
        let p_frac = prev(frac, c_frac);
        let bad = (minus & !p_start)
            | ((p_minus | p_dot) & !digit)
            | (p_start & !(digit | minus))
            | ((comma | dot) & !p_digit)
            | (digit & p_zero)
            | (dot & p_frac);
        if bad & valid != 0 {
            return None;
        }
        if k < 64 {
            // The `]` follows a digit.
            return ((p_digit >> k) & 1 != 0).then_some(i + k as usize + 1);
        }
        // A token over 300 bytes spans a block end at least 236 bytes after its start.
        since = if comma != 0 { comma.leading_zeros() } else { since + 64 };
        if since > 200 {
            return None;
        }
        (c_digit, c_start, c_minus, c_dot, c_zero, c_frac) =
            (digit >> 63, comma >> 63, minus >> 63, dot >> 63, lead_zero >> 63, frac >> 63);
        i += 64;
    }
}

/// The classes of up to 64 bytes, one bit per byte (bit `j`: the byte at `i + j`), read
/// eight bytes at a time and only up to the first eight holding a byte of none of them
/// (bytes past the input read as NUL, which is of none).
struct Classes {
    digit: u64,
    comma: u64,
    minus: u64,
    dot: u64,
    zero: u64,
}

impl Classes {
    #[inline(always)]
    fn at(b: &[u8], i: usize) -> Classes {
        let mut cl = Classes { digit: 0, comma: 0, minus: 0, dot: 0, zero: 0 };
        for w in 0..8 {
            let at = i + 8 * w;
            let c = word_at(b, at).unwrap_or_else(|| {
                let rest = b.get(at..).unwrap_or_default();
                let mut w = [0u8; 8];
                w[..rest.len()].copy_from_slice(rest);
                u64::from_le_bytes(w)
            });
            let digit = !non_digits(c) & HIGH;
            // `,` `-` `.` are 0x2C, 0x2D, 0x2E: one test for the four bytes 0x2C–0x2F, then
            // their two low bits tell them apart (0x2F, `/`, is neither and stays "other").
            let punct = bytes_eq(c & (ONES * 0xFC), 0x2C);
            let (bit0, bit1) = ((c << 7) & HIGH, (c << 6) & HIGH);
            let comma = punct & !(bit0 | bit1);
            let minus = punct & bit0 & !bit1;
            let dot = punct & bit1 & !bit0;
            let shift = 8 * w;
            cl.digit |= gather(digit) << shift;
            cl.comma |= gather(comma) << shift;
            cl.minus |= gather(minus) << shift;
            cl.dot |= gather(dot) << shift;
            cl.zero |= gather(bytes_eq(c, b'0')) << shift;
            if digit | comma | minus | dot != HIGH {
                break;
            }
        }
        cl
    }
}

/// The top bits of the eight bytes of `m` (its only bits) as eight bits, byte `j` in bit
/// `j`: the multiplication moves each into the top byte without carries.
#[inline(always)]
fn gather(m: u64) -> u64 {
    ((m >> 7).wrapping_mul(0x0102_0408_1020_4080)) >> 56
}

/// The top bit of each byte of `c` that is not an ASCII digit `0`–`9`: set in the byte
/// itself (not ASCII), or from its low seven bits, below `0x30` or from `0x3A` on, computed
/// without carries between bytes (the subtraction is from bytes with their top bit set, the
/// addition to bytes without it, and neither crosses a byte).
#[inline(always)]
fn non_digits(c: u64) -> u64 {
    let at_least_0 = (c | HIGH).wrapping_sub(ONES * 0x30);
    let above_9 = (c & !HIGH).wrapping_add(ONES * 0x46);
    (!at_least_0 | above_9 | c) & HIGH
}

/// The end of the run of ASCII digits from `i`, 8 bytes at a time ([`non_digits`]).
#[inline(always)]
fn digits_end(b: &[u8], mut i: usize) -> usize {
    while let Some(c) = word_at(b, i) {
        let m = non_digits(c);
        if m != 0 {
            return i + (m.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while b.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    i
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
            // The text of the entry's `data` when it was found to be a compact series of
            // plain decimals while it was read (what `series` copies as it is).
            let mut compact = None;
            let entry = match sc.peek().ok_or(Bail)? {
                b'{' => {
                    sc.i += 1;
                    Some(stream_entry(f, sc, &mut compact)?)
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
                    // Read once already: what `value` would write for it, without a second scan.
                    if matches!(node, Node::Series(Leaf::Number))
                        && compact.is_some_and(|c: &str| std::ptr::eq(c, raw))
                    {
                        f.out.push_str(raw);
                        return Ok(true);
                    }
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

/// The index of `data` in [`STREAM_ENTRY`] (sorted by name: `data` comes first).
const DATA: usize = 0;
const _: () = assert!(matches!(STREAM_ENTRY.fields[DATA].name.as_bytes(), b"data"));

/// A stream list element's members (after `{`), borrowed; `compact` is set to the `data`
/// member's text when it is a compact series of plain decimals.
fn stream_entry<'a>(
    f: &Filter<'_>,
    sc: &mut Scan<'a>,
    compact: &mut Option<&'a str>,
) -> Scanned<StreamEntry<'a>> {
    let mut entry = StreamEntry { raws: [None; 5], removed: Vec::new(), removed_count: 0 };
    if !sc.empty(b'}') {
        loop {
            let name = sc.key()?;
            match find(&STREAM_ENTRY, name) {
                Some(DATA) if entry.raws[DATA].is_none() => {
                    let raw = match sc.peek() {
                        Some(b'[') => {
                            sc.i += 1;
                            match sc.compact_plain_numbers() {
                                Some(text) => {
                                    *compact = Some(text);
                                    text
                                }
                                None => {
                                    sc.i -= 1;
                                    sc.raw()?
                                }
                            }
                        }
                        _ => sc.raw()?,
                    };
                    entry.raws[DATA] = Some(raw);
                }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Wherever the word-at-a-time list check takes an array, reading it number by number
    /// takes the same array to the same end; and it takes the common forms.
    #[test]
    fn the_list_check_agrees_with_reading_number_by_number() {
        const ALPHABET: &[u8] = b"0123456789.-,]e x";
        let mut rng = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut taken = 0;
        let mut cases: Vec<String> = [
            "1,2,3]",
            "0,-0,0.5,-0.25,10.125]",
            "45.499604,-56.353744999999996]",
            "01,2]",
            "1.2.3,4]",
            "1..2]",
            "1,,2]",
            "1,]",
            "-,1]",
            "1-2]",
            "1.,2]",
            ".5,1]",
            "1e5,2]",
            "00]",
            "-01]",
            "0.0.0]",
            "12345678,12345678.12345678,1]",
        ]
        .iter()
        .map(|s| format!("{s}{}", " ".repeat(9)))
        .collect();
        for _ in 0..200_000 {
            let len = (next() % 40) as usize;
            let mut t: Vec<u8> = (0..len)
                .map(|_| {
                    let r = next();
                    // Mostly digits, as in a series.
                    if r % 3 == 0 {
                        ALPHABET[(r / 3 % ALPHABET.len() as u64) as usize]
                    } else {
                        b'0' + (r % 10) as u8
                    }
                })
                .collect();
            t.push(b']');
            t.extend(std::iter::repeat_n(b' ', (next() % 12) as usize));
            cases.push(String::from_utf8(t).unwrap());
        }
        for body in &cases {
            let text = format!("[{body}");
            let fast = plain_number_list_end(text.as_bytes(), 1);
            let mut sc = Scan { text: &text, i: 1, stack: Vec::new() };
            let slow = sc.compact_plain_numbers_one_by_one().map(|_| sc.i);
            if let Some(end) = fast {
                taken += 1;
                assert_eq!(Some(end), slow, "{text:?}");
            }
        }
        assert!(taken > 5_000, "the list check took only {taken} arrays");
        for common in ["[1,2,3]         ", "[45.499604,-56.353744999999996,0,-0.5]  "] {
            assert!(plain_number_list_end(common.as_bytes(), 1).is_some(), "{common:?}");
        }
    }

    /// The same agreement for arrays that span several 64-byte blocks: long lists, long
    /// tokens (up to past the 300-byte limit), and a wrong byte at any position.
    #[test]
    fn the_list_check_agrees_across_blocks() {
        let mut rng = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let (mut taken, mut long_refused) = (0, 0);
        for round in 0..40_000 {
            let mut t = String::new();
            let tokens = 1 + (next() % 60) as usize;
            for n in 0..tokens {
                if n > 0 {
                    t.push(',');
                }
                if next() % 2 == 0 {
                    t.push('-');
                }
                // Mostly short tokens; now and then one of 200 to 320 bytes.
                let int = if next() % 50 == 0 {
                    200 + (next() % 120) as usize
                } else {
                    1 + (next() % 6) as usize
                };
                t.push(char::from(b'1' + (next() % 9) as u8));
                for _ in 1..int {
                    t.push(char::from(b'0' + (next() % 10) as u8));
                }
                if next() % 2 == 0 {
                    t.push('.');
                    for _ in 0..1 + next() % 8 {
                        t.push(char::from(b'0' + (next() % 10) as u8));
                    }
                }
            }
            t.push(']');
            let mut t = t.into_bytes();
            // Half the arrays get one byte changed somewhere (to a byte of the grammar or not).
            if round % 2 == 1 {
                let at = (next() % t.len() as u64) as usize;
                t[at] = b"0123456789.-,]e x0"[(next() % 18) as usize];
            }
            let pad = (next() % 70) as usize;
            let text = format!("[{}{}", String::from_utf8(t).unwrap(), " ".repeat(pad));
            let fast = plain_number_list_end(text.as_bytes(), 1);
            let mut sc = Scan { text: &text, i: 1, stack: Vec::new() };
            let slow = sc.compact_plain_numbers_one_by_one().map(|_| sc.i);
            match fast {
                Some(end) => {
                    taken += 1;
                    assert_eq!(Some(end), slow, "{text:?}");
                }
                // Only a long token (or an empty list, which it is never given) may make it
                // leave a valid list to the slow path.
                None if slow.is_some() && !text.starts_with("[]") => {
                    let longest = text.split([',', '[', ']']).map(str::len).max().unwrap_or(0);
                    assert!(longest > 130, "a valid list refused: {text:?}");
                    long_refused += 1;
                }
                None => {}
            }
        }
        assert!(taken > 10_000, "the list check took only {taken} arrays");
        assert!(long_refused > 100, "only {long_refused} long tokens");
    }

    /// The word-at-a-time scans stop exactly where a byte-by-byte loop stops, whichever byte
    /// comes at whichever position (inside a word, across words, in the tail).
    #[test]
    fn word_scans_agree_with_byte_loops() {
        let plain = |c: u8| c != b'"' && c != b'\\' && c >= 0x20;
        for len in 0..20 {
            for at in 0..len {
                for v in 0..=255u8 {
                    for fill in [b'7', b'a'] {
                        let mut buf = vec![fill; len];
                        buf[at] = v;
                        for start in 0..=len {
                            let naive_digits = start
                                + buf[start..].iter().take_while(|c| c.is_ascii_digit()).count();
                            assert_eq!(digits_end(&buf, start), naive_digits, "{buf:?} {start}");
                            let naive_plain =
                                start + buf[start..].iter().take_while(|&&c| plain(c)).count();
                            assert_eq!(plain_end(&buf, start), naive_plain, "{buf:?} {start}");
                        }
                    }
                }
            }
        }
    }
}
