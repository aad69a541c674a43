// The page imports Strava's bulk export ZIP (tests/strava_export/generate.py's fixture, with
// GPX, TCX and FIT files) in headless Chromium: the importer's wasm module is fetched only when
// the ZIP is chosen, the review lists what was removed in plain words with the places behind a
// disclosure, and the uploaded file on disk holds none of the values the generator planted.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { FIXTURE, REPO, openPage, read, startLocalWithBrowser, waitForText } from './harness.mjs';

const EXPORT = path.join(REPO, 'native/tests/fixtures/strava_bulk_export.zip');
const EXPECTED = JSON.parse(readFileSync(path.join(REPO, 'native/tests/fixtures/strava_bulk_export.expected.json'), 'utf8'));

describe('kompass serve, a Strava bulk export ZIP', () => {
  let server;
  let browser;
  let dataDir;

  before(async () => {
    ({ server, browser, dataDir } = await startLocalWithBrowser('import'));
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('the ZIP is read on the device, reviewed in plain words and uploaded without PII', async () => {
    const { page, requests, errors, context } = await openPage(browser);
    await page.goto(server.pageUrl);
    await waitForText(page, '#signin-status', 'Signed in as dev-rider');
    assert.ok(!requests.some((r) => r.url.includes('/pkg-import/')), 'the importer is not part of the first load');

    await page.setInputFiles('#file', EXPORT);
    await waitForText(page, '#load-status', 'activities read', 30000);
    assert.ok(requests.some((r) => r.url.includes('/pkg-import/kompass_wasm_bg.wasm')), 'the importer loads for a ZIP');
    assert.equal(await page.$eval('#import-progress', (p) => p.value), 100);

    const removed = await page.$$eval('#import-removed li', (lis) => lis.map((li) => li.textContent));
    assert.ok(removed.includes(`${EXPECTED.gps_points} GPS points`), `GPS points listed: ${removed}`);
    assert.ok(removed.includes('3 photos and videos'), `photos listed: ${removed}`);
    assert.ok(removed.includes(`${EXPECTED.activities.length} activity titles`), `titles listed: ${removed}`);
    assert.equal(await page.isVisible('#import-paths'), false, 'the places are behind a disclosure');
    const paths = await page.textContent('#import-paths');
    assert.ok(paths.includes('activities.csv: Activity Name'), paths);
    assert.equal(await page.isVisible('#json-review'), false);

    const shown = await page.textContent('#review');
    for (const s of EXPECTED.sentinels) assert.ok(!shown.includes(s), `the review shows a planted value`);

    await waitForText(page, '#precheck', 'fits');
    await page.click('#upload');
    await waitForText(page, '#upload-status', 'Uploaded users/');

    const dir = path.join(dataDir, 'fitness', 'dev-rider');
    const files = readdirSync(dir);
    assert.equal(files.length, 1, `one stored file: ${files}`);
    const stored = read(path.join(dir, files[0]));
    for (const s of EXPECTED.sentinels) assert.ok(!stored.includes(s), 'a planted value was stored');
    const doc = JSON.parse(stored);
    assert.equal(doc.activities.length, EXPECTED.activities.length);
    assert.deepEqual(doc.activities[0].streams.heartrate.data, EXPECTED.activities[0].samples.heartrate);
    assert.equal(doc.anonymization.pii_removed, true);

    // The page still takes JSON, after a ZIP too: the JSON review comes back.
    await page.setInputFiles('#file', FIXTURE);
    await waitForText(page, '#load-status', 'fields removed');
    assert.equal(await page.isVisible('#json-review'), true);
    assert.equal(await page.isVisible('#import-review'), false);
    assert.deepEqual(errors, []);
    await context.close();
  });
});
