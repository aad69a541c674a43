// The page imports Strava's bulk export ZIP (tests/strava_export/generate.py's fixture, with
// GPX, TCX and FIT files) in headless Chromium: the importer's wasm module is fetched only when
// the ZIP is chosen, the review lists what was removed in plain words with the places behind a
// disclosure, and the uploaded file on disk holds none of the values the generator planted.
// The document comes back from wasm as bytes and goes up as a Blob, byte for byte the native
// importer's (a large export's document is longer than the longest JS string: no string path).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { FIXTURE, REPO, kompassBin, openPage, read, startLocalWithBrowser, tempDir, waitForText } from './harness.mjs';

const EXPORT = path.join(REPO, 'native/tests/fixtures/strava_bulk_export.zip');
/** What `kompass rider import --dry-run` writes for the export: the native importer's document. */
function nativeDocument() {
  const out = execFileSync(kompassBin(), ['--data-dir', tempDir('import-native'), 'rider', 'import', '--dry-run', EXPORT], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, S3_STORAGE_ENABLED: 'false' },
  });
  // The CLI ends its output with a newline; the document is what comes before it.
  return out.subarray(0, out[out.length - 1] === 0x0a ? out.length - 1 : out.length);
}

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
    // What the page hands XMLHttpRequest for POST /api/rider: its type and its bytes.
    await page.addInitScript(() => {
      window.__riderBodies = [];
      const open = XMLHttpRequest.prototype.open;
      const send = XMLHttpRequest.prototype.send;
      XMLHttpRequest.prototype.open = function (method, url, ...rest) {
        this.__rider = method === 'POST' && String(url).endsWith('/api/rider');
        return open.call(this, method, url, ...rest);
      };
      XMLHttpRequest.prototype.send = function (body) {
        if (this.__rider) {
          const seen = { type: Object.prototype.toString.call(body), bytes: null };
          window.__riderBodies.push(seen);
          if (body instanceof Blob) body.arrayBuffer().then((b) => (seen.bytes = Array.from(new Uint8Array(b))));
        }
        return send.call(this, body);
      };
    });
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

    // The page sent a Blob whose bytes are the native importer's document, with its SHA-256.
    const native = nativeDocument();
    await page.waitForFunction(() => window.__riderBodies.length === 1 && window.__riderBodies[0].bytes);
    const [sent] = await page.evaluate(() => window.__riderBodies);
    assert.equal(sent.type, '[object Blob]', 'the document is uploaded as a Blob');
    assert.ok(Buffer.from(sent.bytes).equals(native), 'the uploaded bytes are the native import\'s');
    const post = requests.find((r) => r.method === 'POST' && r.url.endsWith('/api/rider'));
    assert.equal(post.headers['x-kompass-sha256'], createHash('sha256').update(native).digest('hex'));

    // The importer's API gives bytes (a Uint8Array), never a string, and their SHA-256.
    const api = await page.evaluate(async (zip) => {
      const mod = await import(new URL('pkg-import/kompass_wasm.js', location.href).href);
      await mod.default();
      const r = mod.importStravaExport(new Uint8Array(zip));
      return { isBytes: r.document instanceof Uint8Array, type: typeof r.document, bytes: Array.from(r.document), sha256: r.sha256 };
    }, Array.from(readFileSync(EXPORT)));
    assert.equal(api.isBytes, true, `the document came back as ${api.type}, not a Uint8Array`);
    assert.ok(Buffer.from(api.bytes).equals(native), 'wasm and native documents differ');
    assert.equal(api.sha256, post.headers['x-kompass-sha256']);

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
