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
