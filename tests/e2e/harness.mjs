// Shared helpers for the end-to-end tests: start `kompass serve`, launch headless Chromium,
// drive the page, and check stored bytes for PII.

import { spawn } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(HERE, '../..');
export const FIXTURE = path.join(HERE, 'fixtures', 'strava-export.json');

/** The kompass binary: KOMPASS_BIN, else the debug build in CARGO_TARGET_DIR or target/. */
export function kompassBin() {
  if (process.env.KOMPASS_BIN) return process.env.KOMPASS_BIN;
  const target = process.env.CARGO_TARGET_DIR || path.join(REPO, 'target');
  return path.join(target, 'debug', 'kompass');
}

/** Strings of the fixture that identify or locate the rider: none may be stored. */
export const PII = [
  'Brigitte', // first name (also inside an activity name)
  'Zaunk', // last name and user name
  'brigitte', // user name, e-mail
  'Oberammergau', // city
  'Bayern',
  'Germany',
  '47.597123', // start coordinates (also in the latlng stream)
  '11.064987',
  '47.601234', // end coordinates
  '11.070456',
  '47.590011',
  '47.598001', // a latlng stream sample
  'ki{aHo`pbA', // the encoded polyline
  'qxVbvZ', // summary polylines
  '48151623', // the athlete id (sequential: a plain hash would be reversible)
  '9182736450', // an activity id
  'Garmin', // device name
  'garmin_push', // external id
  'cloudfront', // profile picture URLs
  'example.org',
  'Europe/Berlin', // time zone
  'Kofel', // activity name
  '07:12:44', // start_date_local
  'b1234567', // gear id
];

/** The pseudonym key the test servers hold (never the page). */
export const PSEUDONYM_KEY = 'e2e-pseudonym-key-0123456789abcdef';
export const PSEUDONYM_KEY_ID = 'e2e1';

/** The keyed user_hash of `user`, computed here independently of the core:
 * `{key id}:hex(HMAC-SHA256(key, "user:" + user))`. */
export function userHash(user) {
  return `${PSEUDONYM_KEY_ID}:${createHmac('sha256', PSEUDONYM_KEY).update(`user:${user}`).digest('hex')}`;
}

/** Asserts that `text` (a stored document) holds none of the fixture's PII, its data, and
 * the keyed user_hash of `user` that the server added. */
export function assertScrubbed(text, user) {
  for (const s of PII) assert.ok(!text.includes(s), `stored data contains ${JSON.stringify(s)}:\n${text}`);
  assert.ok(!text.includes('measurement_preference'), 'account metadata is dropped');
  const doc = JSON.parse(text);
  assert.equal(doc.anonymization.pii_removed, true);
  assert.equal(doc.anonymization.key_id, PSEUDONYM_KEY_ID, 'scrubbed again by the server, with its key');
  assert.equal(doc.anonymization.pseudonym, 'hmac-sha256');
  assert.equal(doc.activities.length, 2);
  assert.equal(doc.activities[0].average_watts, 187.6, 'performance data is kept');
  assert.deepEqual(doc.activities[0].streams.watts.data, [180, 195, 210]);
  assert.equal(doc.basic_info.ftp, 242);
  assert.equal(doc.basic_info.user_hash, userHash(user), 'the keyed user_hash of the token\'s user');
  assert.equal(doc.basic_info.id, undefined);
}

/** The spec's rider data name: fitness_data_{YYYYmmdd_HHMMSS}.json (then _2, _3, ...). */
export const RIDER_NAME = /^fitness_data_\d{8}_\d{6}(_[1-9]\d*)?\.json$/;

/** A fresh temporary directory. */
export function tempDir(name) {
  return mkdtempSync(path.join(tmpdir(), `kompass-e2e-${name}-`));
}

/** 32 random bytes as hex (a server secret). */
export function secret() {
  return randomBytes(32).toString('hex');
}

/**
 * Starts `kompass serve --addr 127.0.0.1:0` in `cwd` (a temp dir: no .env) with exactly
 * `env` (plus PATH and HOME), and waits for the sign-in link it prints.
 */
export async function startServe({ env, cwd, devUser = 'dev-rider' }) {
  const child = spawn(kompassBin(), ['serve', '--addr', '127.0.0.1:0', '--dev-user', devUser], {
    cwd,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      KOMPASS_WWW_DIR: path.join(REPO, 'www'),
      KOMPASS_LOG: 'info',
      KOMPASS_PSEUDONYM_KEY: PSEUDONYM_KEY,
      KOMPASS_PSEUDONYM_KEY_ID: PSEUDONYM_KEY_ID,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const pageUrl = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve printed no page URL in 20 s:\n${stdout}\n${stderr}`)), 20000);
    child.stdout.on('data', (d) => {
      stdout += d;
      const m = /^(http:\/\/\S+\/#token=\S+)$/m.exec(stdout);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`serve exited with ${code}:\n${stdout}\n${stderr}`));
    });
  });
  const url = new URL(pageUrl);
  return {
    pageUrl,
    origin: url.origin,
    token: url.hash.slice('#token='.length),
    stdout: () => stdout,
    stderr: () => stderr,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGINT');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * `kompass serve` on local storage only (no S3) in a fresh temp dir named after `name`, and a
 * browser: the set-up of the local-storage suites.
 */
export async function startLocalWithBrowser(name) {
  const dir = tempDir(name);
  const dataDir = path.join(dir, 'data');
  const server = await startServe({
    cwd: dir,
    env: { DATA_DIRECTORY: dataDir, KOMPASS_SERVER_SECRET: secret(), S3_STORAGE_ENABLED: 'false' },
  });
  try {
    return { server, browser: await launch(), dataDir };
  } catch (e) {
    await server.stop();
    throw e;
  }
}

/** Headless Debian Chromium (never a downloaded browser). */
export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--no-first-run',
    ],
  });
}

/** A page that records its requests and console errors. */
export async function openPage(browser) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const requests = [];
  const errors = [];
  page.on('request', (r) => requests.push({ method: r.method(), url: r.url(), headers: r.headers() }));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(String(e)));
  return { page, requests, errors, context };
}

/** Waits until `selector`'s text contains `text` (or fails with what it says instead). */
export async function waitForText(page, selector, text, timeout = 15000) {
  try {
    await page.waitForFunction(
      ([s, t]) => document.querySelector(s)?.textContent.includes(t),
      [selector, text],
      { timeout },
    );
  } catch (e) {
    const got = await page.textContent(selector).catch(() => '(missing)');
    throw new Error(`${selector} never said ${JSON.stringify(text)}; it says ${JSON.stringify(got)}`);
  }
}

/**
 * The whole page flow: load the fixture, check what the page lists as removed and kept,
 * upload, and wait for the stored-files table to show it. Returns the uploaded key.
 */
export async function loadReviewUpload(page, user) {
  await page.setInputFiles('#file', FIXTURE);
  await waitForText(page, '#load-status', 'fields removed');

  const removed = await page.textContent('#removed');
  for (const p of [
    '/basic_info/firstname',
    '/basic_info/lastname',
    '/basic_info/email',
    '/activities/*/name',
    '/activities/*/start_latlng',
    '/activities/*/end_latlng',
    '/activities/*/map',
    '/activities/*/streams/latlng',
  ]) {
    assert.ok(removed.includes(p), `the removed table lists ${p}: ${removed}`);
  }
  assert.match(removed, /polyline/, 'the removed map is shown with its polylines');
  const every = await page.$$eval('#removed-list li', (lis) => lis.map((li) => li.textContent));
  for (const p of ['/basic_info/firstname', '/activities/0/start_latlng', '/activities/0/map', '/activities/1/map']) {
    assert.ok(every.includes(p), `every removed path lists ${p}`);
  }
  const kept = await page.textContent('#kept');
  for (const p of ['/activities/*/average_watts', '/basic_info/ftp', '/activities/*/streams/watts/data']) {
    assert.ok(kept.includes(p), `the kept table lists ${p}`);
  }
  const preview = await page.textContent('#preview');
  for (const s of PII) assert.ok(!preview.includes(s), `the upload preview has no ${s}`);

  await waitForText(page, '#precheck', 'fits');
  assert.equal(await page.isEnabled('#upload'), true);
  await page.click('#upload');
  await waitForText(page, '#upload-status', 'Uploaded users/');
  assert.equal(await page.$eval('#progress', (p) => p.value), 100);
  const status = await page.textContent('#upload-status');
  const key = /Uploaded (users\/\S+\.json)/.exec(status)[1];
  assert.ok(key.startsWith(`users/${user}/fitness/fitness_data_`), key);
  assert.match(key.split('/').pop(), RIDER_NAME);
  await waitForText(page, '#files', key.split('/').pop());
  return key;
}

/** Reads a file as text. */
export function read(p) {
  return readFileSync(p, 'utf8');
}
