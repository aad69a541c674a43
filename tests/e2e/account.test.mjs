// "Your data" on the page (issue 12) against kompass serve with local storage: the rider's
// files listed with download and delete, the rider history, the export, and "delete all my
// data" behind a typed confirmation. Files are seeded with the kompass CLI and checked on
// disk, never only through the page.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { FIXTURE, kompassBin, launch, openPage, secret, startServe, tempDir, waitForText } from './harness.mjs';

const KEY = 'e2e-pseudonym-key-0123456789abcdef-0123456789';

describe('the page: your data', () => {
  let server;
  let browser;
  let dataDir;
  let env;
  const cli = (args, input) =>
    execFileSync(kompassBin(), ['--data-dir', dataDir, ...args], { env: { PATH: process.env.PATH, ...env }, input });

  before(async () => {
    const dir = tempDir('account');
    dataDir = path.join(dir, 'data');
    env = { KOMPASS_SERVER_SECRET: secret(), KOMPASS_PSEUDONYM_KEY: KEY, S3_STORAGE_ENABLED: 'false' };
    server = await startServe({ cwd: dir, env: { DATA_DIRECTORY: dataDir, ...env } });
    browser = await launch();
    cli(['save', '--user', 'dev-rider', '--type', 'routes', '--name', 'morning.json', '-'], '{"route":"morning"}');
    cli(['save', '--user', 'dev-rider', '--type', 'routes', '--name', 'evening.json', '-'], '{"route":"evening"}');
    cli(['rider', 'save', '--user', 'dev-rider', FIXTURE]);
    cli(['save', '--user', 'someone-else', '--type', 'routes', '--name', 'theirs.json', '-'], '{"route":"theirs"}');
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('download, delete, history, export and delete-all', async () => {
    const { page, errors, context } = await openPage(browser);
    await page.goto(server.pageUrl);
    await waitForText(page, '#account-files', 'morning.json');
    assert.equal(await page.isVisible('#account'), true);
    const listed = await page.textContent('#account-files');
    assert.ok(listed.includes('evening.json') && listed.includes('fitness_data_'), listed);
    assert.ok(!listed.includes('theirs.json'), 'another user\'s file is not shown');

    // Rider history: one save with its summary.
    await waitForText(page, '#rider-history', 'activit');
    assert.equal(await page.$$eval('#rider-history li[data-name]', (l) => l.length), 1);

    // Download: the exact bytes.
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.click('button[aria-label="Download morning.json"]'),
    ]);
    assert.equal(download.suggestedFilename(), 'morning.json');
    assert.equal(readFileSync(await download.path(), 'utf8'), '{"route":"morning"}');

    // Export: a zip (PK header) of everything.
    const [zip] = await Promise.all([page.waitForEvent('download'), page.click('#account-export')]);
    assert.equal(zip.suggestedFilename(), 'kompass-export.zip');
    assert.equal(readFileSync(await zip.path()).subarray(0, 2).toString(), 'PK');

    // Delete one file, after a confirmation dialog; a dismissed dialog deletes nothing.
    const routes = path.join(dataDir, 'routes', 'dev-rider');
    page.once('dialog', (d) => d.dismiss());
    await page.click('button[aria-label="Delete evening.json"]');
    await page.waitForTimeout(300);
    assert.ok(existsSync(path.join(routes, 'evening.json')), 'dismissed: still stored');
    page.once('dialog', (d) => d.accept());
    await page.click('button[aria-label="Delete evening.json"]');
    await waitForText(page, '#account-status', 'Deleted evening.json');
    assert.ok(!existsSync(path.join(routes, 'evening.json')));
    assert.ok(!(await page.textContent('#account-files')).includes('evening.json'));

    // Delete all: the button stays disabled until the user id is typed exactly.
    assert.equal(await page.isDisabled('#erase-submit'), true);
    await page.fill('#erase-confirm', 'dev-ride');
    assert.equal(await page.isDisabled('#erase-submit'), true);
    await page.fill('#erase-confirm', 'dev-rider');
    assert.equal(await page.isEnabled('#erase-submit'), true);
    await page.click('#erase-submit');
    await waitForText(page, '#account-status', 'Deleted all your data');
    await waitForText(page, '#account-files', 'Nothing stored.');
    for (const t of ['routes', 'fitness']) {
      const d = path.join(dataDir, t, 'dev-rider');
      assert.ok(!existsSync(d) || readdirSync(d).length === 0, `${d} is empty`);
    }
    assert.ok(existsSync(path.join(dataDir, 'routes', 'someone-else', 'theirs.json')), 'others untouched');
    assert.deepEqual(errors, []);
    await context.close();
  });
});

// A rider near the quota (issue 12): the refusal, from the precheck or from the server's 507,
// disables Upload and offers the rider's own files to delete right there; once one is
// deleted the upload fits and goes through. Auto-cleanup is off, so the quota is hard.
describe('the page: a refusal offers the rider\'s files to delete', () => {
  let server;
  let browser;
  let dataDir;
  let env;
  const cli = (args, input) =>
    execFileSync(kompassBin(), ['--data-dir', dataDir, ...args], { env: { PATH: process.env.PATH, ...env }, input });
  // 9,500 bytes: stored alone it fits the 10.2 KiB quota (0.01 MiB), beside the scrubbed
  // fixture it does not.
  const big = (name) => cli(['save', '--user', 'dev-rider', '--type', 'routes', '--name', name, '-'], `"${'x'.repeat(9498)}"`);
  const routes = () => path.join(dataDir, 'routes', 'dev-rider');
  const fitness = () => {
    const d = path.join(dataDir, 'fitness', 'dev-rider');
    return existsSync(d) ? readdirSync(d) : [];
  };

  before(async () => {
    const dir = tempDir('room');
    dataDir = path.join(dir, 'data');
    env = {
      KOMPASS_SERVER_SECRET: secret(),
      KOMPASS_PSEUDONYM_KEY: KEY,
      S3_STORAGE_ENABLED: 'false',
      S3_MAX_USER_STORAGE_MB: '0.01',
      S3_AUTO_CLEANUP_ENABLED: 'false',
    };
    server = await startServe({ cwd: dir, env: { DATA_DIRECTORY: dataDir, ...env } });
    browser = await launch();
    cli(['save', '--user', 'dev-rider', '--type', 'routes', '--name', 'small.json', '-'], '{"route":"small"}');
    big('big.json');
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('precheck refusal, then the server\'s 507: delete from the offered list, then upload', async () => {
    const { page, errors, context, requests } = await openPage(browser);
    page.on('dialog', (d) => d.accept());
    await page.goto(server.pageUrl);
    await waitForText(page, '#signin-status', 'Signed in');
    await page.setInputFiles('#file', FIXTURE);
    await waitForText(page, '#load-status', 'fields removed');

    // The precheck refuses: Upload disabled, the rider's own files offered, nobody else's.
    await waitForText(page, '#precheck', 'does not fit in your quota');
    assert.match(await page.textContent('#precheck'), /of 10\.2 KiB/);
    // Decided on the allowance the server signed: what it says is left is what the page says.
    const allowances = () => requests.filter((r) => new URL(r.url).pathname === '/api/allowance').length;
    assert.ok(allowances() >= 1, 'the page asked for a signed allowance');
    const get = async (p) => (await fetch(`${server.origin}${p}`, { headers: { authorization: `Bearer ${server.token}` } })).json();
    const [answer, usage] = [await get('/api/allowance'), await get('/api/usage')];
    assert.equal(answer.bytes, usage.quota.limit - usage.quota.used, 'the quota minus the stored files');
    assert.match(await page.textContent('#precheck'), new RegExp(`only ${answer.bytes} B of 10\\.2 KiB is left`));
    const before = allowances();
    assert.equal(await page.isDisabled('#upload'), true);
    assert.equal(await page.isVisible('#room'), true);
    await waitForText(page, '#room-files', 'big.json');
    assert.ok((await page.textContent('#room-files')).includes('small.json'));

    await page.click('button[aria-label="Delete big.json to make room"]');
    await waitForText(page, '#precheck', 'fits within your quota');
    assert.ok(allowances() > before, 'a fresh allowance once the files changed');
    assert.equal(await page.isEnabled('#upload'), true);
    assert.equal(await page.isHidden('#room'), true);
    assert.ok(!existsSync(path.join(routes(), 'big.json')), 'deleted on disk');
    assert.ok(existsSync(path.join(routes(), 'small.json')), 'only the chosen file');

    // Another device fills the quota after this page's precheck: the server answers 507.
    big('big2.json');
    await page.click('#upload');
    await waitForText(page, '#upload-status', 'Upload failed');
    await waitForText(page, '#room-files', 'big2.json');
    assert.equal(await page.isDisabled('#upload'), true);
    assert.match(await page.textContent('#precheck'), /Delete some of your files below/);
    assert.deepEqual(fitness(), [], 'nothing stored by the refused upload');

    await page.click('button[aria-label="Delete big2.json to make room"]');
    await waitForText(page, '#precheck', 'fits within your quota');
    assert.equal(await page.isEnabled('#upload'), true);
    await page.click('#upload');
    await waitForText(page, '#upload-status', 'Uploaded');
    assert.equal(fitness().length, 1);
    // Chromium logs the refused request itself; nothing else may fail.
    assert.deepEqual(errors.filter((e) => !/status of 507/.test(e)), []);
    await context.close();
  });
});

// The precheck goes through the core's decision on the allowance alone: an allowance that
// leaves nothing (here served in place of the server's) refuses even though the usage the
// page shows has room, and one past its expiry is fetched again.
describe('the page: the precheck decides on the signed allowance', () => {
  let server;
  let browser;

  before(async () => {
    const dir = tempDir('allowance');
    server = await startServe({
      cwd: dir,
      env: { DATA_DIRECTORY: path.join(dir, 'data'), KOMPASS_SERVER_SECRET: secret(), KOMPASS_PSEUDONYM_KEY: KEY, S3_STORAGE_ENABLED: 'false', S3_AUTO_CLEANUP_ENABLED: 'false' },
    });
    browser = await launch();
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('an allowance with no bytes left refuses; an expired one is replaced by a fresh one', async () => {
    const { page, errors, context } = await openPage(browser);
    // The allowance's payload as the server seals it; the page never checks the MAC (it has
    // no secret), the edge and the server do.
    const sealed = (fields) =>
      `${Buffer.from(JSON.stringify({ user: 'dev-rider', puts: 50, id: 1, ...fields })).toString('base64url')}.${'A'.repeat(43)}`;
    let served = 0;
    const queue = [];
    let next = sealed({ bytes: 0, expires_at: Date.now() + 300000 });
    await page.route('**/api/allowance', async (route) => {
      served += 1;
      await route.fulfill({ json: { allowance: queue.shift() ?? next, bytes: 0, puts: 50, expires_at: '' } });
    });
    await page.goto(server.pageUrl);
    await waitForText(page, '#signin-status', 'Signed in');
    await page.setInputFiles('#file', FIXTURE);
    await waitForText(page, '#load-status', 'fields removed');
    await waitForText(page, '#precheck', 'does not fit in your quota');
    assert.match(await page.textContent('#precheck'), /only 0 B of 100\.0 MiB is left/);
    assert.equal(await page.isDisabled('#upload'), true);

    // An expired allowance first: the page asks again and decides on the fresh one.
    queue.push(sealed({ bytes: 0, expires_at: Date.now() - 1 }));
    next = sealed({ bytes: 50 * 1024 * 1024, expires_at: Date.now() + 300000 });
    const before = served;
    await page.evaluate(() => document.dispatchEvent(new Event('kompass:files-changed')));
    await waitForText(page, '#precheck', 'fits within your quota');
    assert.equal(served - before, 2, 'the expired allowance, then a fresh one');
    assert.equal(await page.isEnabled('#upload'), true);
    assert.deepEqual(errors, []);
    await context.close();
  });
});

// With auto-cleanup on, the precheck cannot know what the server may free: Upload stays
// enabled, the rider's files are offered anyway, and when the server then refuses (min-keep
// holds the rider's two routes files) Upload is disabled until a file is deleted.
describe('the page: auto-cleanup on, a refusal from the server', () => {
  let server;
  let browser;
  let dataDir;
  let env;
  const cli = (args, input) =>
    execFileSync(kompassBin(), ['--data-dir', dataDir, ...args], { env: { PATH: process.env.PATH, ...env }, input });

  before(async () => {
    const dir = tempDir('room-auto');
    dataDir = path.join(dir, 'data');
    env = {
      KOMPASS_SERVER_SECRET: secret(),
      KOMPASS_PSEUDONYM_KEY: KEY,
      S3_STORAGE_ENABLED: 'false',
      S3_MAX_USER_STORAGE_MB: '0.01',
    };
    server = await startServe({ cwd: dir, env: { DATA_DIRECTORY: dataDir, ...env } });
    browser = await launch();
    cli(['save', '--user', 'dev-rider', '--type', 'routes', '--name', 'small.json', '-'], '{"route":"small"}');
    cli(['save', '--user', 'dev-rider', '--type', 'routes', '--name', 'big.json', '-'], `"${'x'.repeat(9498)}"`);
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('Upload stays enabled with the files offered; the 507 disables it until one is deleted', async () => {
    const { page, errors, context } = await openPage(browser);
    page.on('dialog', (d) => d.accept());
    await page.goto(server.pageUrl);
    await waitForText(page, '#signin-status', 'Signed in');
    await page.setInputFiles('#file', FIXTURE);
    await waitForText(page, '#load-status', 'fields removed');
    await waitForText(page, '#precheck', 'may make room');
    assert.doesNotMatch(await page.textContent('#precheck'), /S3_MAX_USER_STORAGE_MB|this user/, 'spoken to the rider');
    assert.equal(await page.isEnabled('#upload'), true);
    await waitForText(page, '#room-files', 'big.json');

    await page.click('#upload');
    await waitForText(page, '#upload-status', 'Upload failed');
    assert.equal(await page.isDisabled('#upload'), true);
    assert.ok(existsSync(path.join(dataDir, 'routes', 'dev-rider', 'big.json')), 'nothing deleted for a refused upload');

    await page.click('button[aria-label="Delete big.json to make room"]');
    await waitForText(page, '#precheck', 'fits within your quota');
    assert.equal(await page.isEnabled('#upload'), true);
    await page.click('#upload');
    await waitForText(page, '#upload-status', 'Uploaded');
    assert.deepEqual(errors.filter((e) => !/status of 507/.test(e)), []);
    await context.close();
  });
});
