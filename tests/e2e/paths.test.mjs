// The page's grouping of removed and kept paths (www/paths.js), under Node.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describe as held, groupRemoved, keptFields, resolve, segments } from '../../www/paths.js';

test('pointer segments unescape ~1 and ~0', () => {
  assert.deepEqual(segments(''), []);
  assert.deepEqual(segments('/a~1b/c~0d/0'), ['a/b', 'c~d', '0']);
});

test('array indices become *, object keys that look like numbers do not', () => {
  const doc = { activities: [{ name: 'x' }, { name: 'y' }], zones: { 0: { a: 1 } } };
  assert.deepEqual(resolve(doc, '/activities/1/name'), { value: 'y', pattern: '/activities/*/name' });
  assert.deepEqual(resolve(doc, '/zones/0/a'), { value: 1, pattern: '/zones/0/a' });
  assert.equal(resolve(doc, '/missing/3').pattern, '/missing/*');
  assert.equal(resolve(doc, '/a~1b').pattern, '/a~1b');
});

test('removed paths group by pattern and describe what they held without the values', () => {
  const doc = {
    basic_info: { firstname: 'Brigitte' },
    activities: [
      { start_latlng: [47.5, 11.0], map: { polyline: 'abc', summary_polyline: 'a' } },
      { start_latlng: [47.6, 11.1] },
    ],
  };
  const groups = groupRemoved(doc, [
    '/basic_info/firstname',
    '/activities/0/start_latlng',
    '/activities/0/map',
    '/activities/1/start_latlng',
  ]);
  assert.deepEqual(
    groups.map((g) => [g.pattern, g.count, [...g.held]]),
    [
      ['/basic_info/firstname', 1, ['text (8 characters)']],
      ['/activities/*/start_latlng', 2, ['list of 2 (number)']],
      ['/activities/*/map', 1, ['object: polyline, summary_polyline']],
    ],
  );
  for (const g of groups) for (const h of g.held) assert.ok(!h.includes('Brigitte') && !h.includes('47.5'));
  // Without the original document the patterns are still grouped.
  assert.equal(groupRemoved(undefined, ['/activities/3/name', '/activities/4/name'])[0].count, 2);
});

test('kept fields count leaves, a series is one leaf', () => {
  const doc = { activities: [{ distance: 1, streams: { watts: { data: [1, 2, 3] } } }, { distance: 2 }], x: null };
  assert.deepEqual(keptFields(doc), [
    { pattern: '/activities/*/distance', count: 2 },
    { pattern: '/activities/*/streams/watts/data', count: 1 },
    { pattern: '/x', count: 1 },
  ]);
  assert.equal(held(undefined), '');
  assert.equal(held({}), 'empty object');
});
