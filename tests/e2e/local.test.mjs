// kompass serve with local storage (no S3 at all): the browser scrubs the fixture in wasm,
// sends it to the server's rider route, and the file on disk holds no PII and the keyed
// user_hash the server added.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import {
  FIXTURE,
  assertScrubbed,
  loadReviewUpload,
  openPage,
  read,
  startLocalWithBrowser,
  waitForText,
} from './harness.mjs';

describe('kompass serve, local storage', () => {
  let server;
  let browser;
  let dataDir;

  before(async () => {
    ({ server, browser, dataDir } = await startLocalWithBrowser('local'));
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('the sign-in link scrubs, uploads and stores no PII', async () => {
    const { page, requests, errors, context } = await openPage(browser);
    await page.goto(server.pageUrl);
    await waitForText(page, '#signin-status', 'Signed in as dev-rider');
    assert.ok(!page.url().includes('token'), `the token leaves the address bar: ${page.url()}`);

    const key = await loadReviewUpload(page, 'dev-rider');

    // Stored on disk, under the token's user, with none of the PII.
    const dir = path.join(dataDir, 'fitness', 'dev-rider');
    const files = readdirSync(dir);
    assert.equal(files.length, 1, `one stored file: ${files}`);
    assert.equal(files[0], key.split('/').pop());
    assertScrubbed(read(path.join(dir, files[0])), 'dev-rider');

    // The upload went to the server's rider route, with the wasm SHA-256 of the bytes; no
    // upload URL was asked for.
    assert.deepEqual(requests.filter((r) => r.method === 'PUT'), []);
    assert.equal(requests.filter((r) => r.url.endsWith('/api/presign')).length, 0);
    const posts = requests.filter((r) => r.method === 'POST' && r.url === `${server.origin}/api/rider`);
    assert.equal(posts.length, 1, JSON.stringify(requests.map((r) => `${r.method} ${r.url}`)));
    assert.match(posts[0].headers['x-kompass-sha256'], /^[0-9a-f]{64}$/);
    // The token travels only in the Authorization header: no request line carries it.
    for (const r of requests) assert.ok(!r.url.includes(server.token), `token in a request URL: ${r.url}`);
    const api = requests.filter((r) => r.url.startsWith(`${server.origin}/api/`));
    assert.ok(api.length >= 3);
    for (const r of api) assert.equal(r.headers.authorization, `Bearer ${server.token}`);
    // Nor does the server log it.
    assert.ok(server.stderr().includes('POST /api/rider 201'), server.stderr());
    assert.ok(!server.stderr().includes(server.token), 'the token is not logged');

    // Usage: one fitness file, coloured by its alert level.
    await waitForText(page, '#usage', 'fitness (1 file)');
    const level = await page.$eval('#usage .usage-row[data-type="fitness"]', (r) => r.dataset.level);
    assert.equal(level, 'normal');
    assert.equal(await page.$eval('#usage .usage-row[data-type="fitness"] .fill', (f) => f.className), 'fill level-normal');
    assert.deepEqual(errors, []);
    await context.close();
  });

  test('a pasted token signs in from the keyboard; a bad one is refused', async () => {
    const { page, errors, context } = await openPage(browser);
    await page.goto(server.origin + '/');
    await waitForText(page, '#signin-status', 'Not signed in');
    await page.focus('#token');
    await page.keyboard.type('not-a-token');
    await page.keyboard.press('Enter');
    await waitForText(page, '#signin-status', 'malformed');
    await page.fill('#token', '');
    await page.focus('#token');
    await page.keyboard.type(server.token);
    await page.keyboard.press('Enter');
    await waitForText(page, '#signin-status', 'Signed in as dev-rider');
    // The file picker, then the upload button, are reachable with Tab.
    await page.focus('#file');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'file');
    // The stored file of the first test is listed (same user, same server).
    await waitForText(page, '#files', 'fitness_data_');
    // The 401 of the bad token is logged by Chromium as a failed resource; nothing else.
    assert.deepEqual(errors.filter((e) => !e.includes('401')), []);
    await context.close();
  });

  test('a file dropped on the drop zone is scrubbed', async () => {
    const { page, context } = await openPage(browser);
    await page.goto(server.pageUrl);
    await waitForText(page, '#signin-status', 'Signed in');
    const text = read(FIXTURE);
    const dataTransfer = await page.evaluateHandle((content) => {
      const dt = new DataTransfer();
      dt.items.add(new File([content], 'export.json', { type: 'application/json' }));
      return dt;
    }, text);
    await page.dispatchEvent('#dropzone', 'drop', { dataTransfer });
    await waitForText(page, '#load-status', 'export.json:');
    assert.ok((await page.textContent('#removed')).includes('/basic_info/firstname'));
    await context.close();
  });

  test('the page is served with a strict Content-Security-Policy', async () => {
    const res = await fetch(server.origin + '/');
    assert.equal(res.status, 200);
    const csp = res.headers.get('content-security-policy');
    assert.match(csp, /script-src 'self' 'wasm-unsafe-eval'/);
    assert.match(csp, /connect-src 'self';/);
    const wasm = await fetch(server.origin + '/pkg/kompass_wasm_bg.wasm');
    assert.equal(wasm.headers.get('content-type'), 'application/wasm');
    assert.ok(existsSync(dataDir));
  });
});
