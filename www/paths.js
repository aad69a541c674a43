// JSON pointers of a scrub report, grouped for people: "/activities/3/name" and
// "/activities/7/name" are one row "/activities/*/name ×2". Pure functions (no DOM), so
// they can be tested under Node.

/** The unescaped segments of a JSON pointer ("" is the whole document). */
export function segments(pointer) {
  if (pointer === '') return [];
  return pointer.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function escapeSegment(s) {
  return s.replace(/~/g, '~0').replace(/\//g, '~1');
}

/**
 * Follows `pointer` into `doc`. Returns the value found (undefined when absent) and the
 * pointer's pattern: array indices become "*", object keys stay (even when they are digits).
 */
export function resolve(doc, pointer) {
  let value = doc;
  const parts = [];
  for (const seg of segments(pointer)) {
    if (Array.isArray(value)) {
      parts.push('*');
      value = value[Number(seg)];
    } else if (value !== null && typeof value === 'object') {
      parts.push(escapeSegment(seg));
      value = Object.prototype.hasOwnProperty.call(value, seg) ? value[seg] : undefined;
    } else {
      // Past the known document: guess from the segment's shape.
      parts.push(/^(0|[1-9]\d*)$/.test(seg) ? '*' : escapeSegment(seg));
      value = undefined;
    }
  }
  return { value, pattern: parts.length ? '/' + parts.join('/') : '' };
}

/** What a removed value held, without repeating the value itself. */
export function describe(value) {
  if (value === undefined) return '';
  if (value === null) return 'null';
  if (Array.isArray(value)) {
    const kinds = [...new Set(value.map((v) => (Array.isArray(v) ? 'list' : v === null ? 'null' : typeof v)))];
    return `list of ${value.length}` + (kinds.length ? ` (${kinds.join(', ')})` : '');
  }
  if (typeof value === 'object') {
    const keys = Object.keys(value);
    const shown = keys.slice(0, 8).join(', ');
    return keys.length ? `object: ${shown}${keys.length > 8 ? ', …' : ''}` : 'empty object';
  }
  if (typeof value === 'string') return `text (${[...value].length} characters)`;
  return typeof value;
}

/**
 * Groups removed pointers by pattern, in first-seen order:
 * [{ pattern, count, held: Set of descriptions }].
 */
export function groupRemoved(original, removed) {
  const groups = new Map();
  for (const pointer of removed) {
    const { value, pattern } = resolve(original, pointer);
    let g = groups.get(pattern);
    if (!g) {
      g = { pattern, count: 0, held: new Set() };
      groups.set(pattern, g);
    }
    g.count += 1;
    const d = describe(value);
    if (d && g.held.size < 3) g.held.add(d);
  }
  return [...groups.values()];
}

/**
 * The kept fields of a scrubbed document: leaf patterns with counts, in document order. An
 * array of plain values (a time series) is one leaf, not one per sample.
 */
export function keptFields(doc) {
  const counts = new Map();
  const walk = (value, pattern) => {
    if (Array.isArray(value)) {
      if (value.every((v) => v === null || typeof v !== 'object')) {
        counts.set(pattern, (counts.get(pattern) || 0) + 1);
        return;
      }
      for (const v of value) walk(v, pattern + '/*');
    } else if (value !== null && typeof value === 'object') {
      for (const [k, v] of Object.entries(value)) walk(v, pattern + '/' + escapeSegment(k));
    } else {
      counts.set(pattern, (counts.get(pattern) || 0) + 1);
    }
  };
  walk(doc, '');
  return [...counts.entries()].map(([pattern, count]) => ({ pattern, count }));
}
