// kompass serve with S3 (SeaweedFS from scripts/s3-server.sh): the browser PUTs the scrubbed
// bytes straight to the bucket through a presigned URL, and the object holds no PII.
// Needs the AWS_* variables `scripts/s3-server.sh env` prints; fails without them unless
// KOMPASS_SKIP_S3=1.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { assertScrubbed, launch, loadReviewUpload, openPage, secret, startServe, tempDir, waitForText } from './harness.mjs';
import { deleteObject, getObject, listKeys, putBucketCors, s3Env } from './s3.mjs';

const env = s3Env();
const skip = process.env.KOMPASS_SKIP_S3 === '1';
if (env.missing && !skip) {
  throw new Error(
    `${env.missing.join(', ')} not set: the S3 end-to-end test needs the S3 test server. Run ` +
      '`scripts/s3-server.sh start` and `set -a; . <(scripts/s3-server.sh env); set +a` first, ' +
      'or set KOMPASS_SKIP_S3=1 to skip it',
  );
}

describe('kompass serve, S3 storage', { skip: skip && 'KOMPASS_SKIP_S3=1 (no S3 test server)' }, () => {
  // A user of its own, so that runs sharing the bucket never see each other's objects.
  const user = `e2e-${Date.now()}-${randomBytes(3).toString('hex')}`;
  let server;
  let browser;
  let dataDir;
  const uploaded = [];

  before(async () => {
    const dir = tempDir('s3');
    dataDir = path.join(dir, 'data');
    server = await startServe({
      cwd: dir,
      devUser: user,
      env: {
        DATA_DIRECTORY: dataDir,
        KOMPASS_SERVER_SECRET: secret(),
        S3_STORAGE_ENABLED: 'true',
        AWS_ENDPOINT_URL: env.endpoint,
        AWS_S3_BUCKET: env.bucket,
        AWS_REGION: env.region,
        AWS_ACCESS_KEY_ID: env.accessKeyId,
        AWS_SECRET_ACCESS_KEY: env.secretAccessKey,
      },
    });
    // The browser PUTs cross-origin, straight to the bucket: allow this page's origin.
    await putBucketCors(env, server.origin);
    browser = await launch();
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
    for (const key of uploaded) await deleteObject(env, key).catch(() => {});
  });

  test('the browser uploads straight to S3 and the object holds no PII', async () => {
    const { page, requests, errors, context } = await openPage(browser);
    await page.goto(server.pageUrl);
    await waitForText(page, '#signin-status', `Signed in as ${user}`);
    await waitForText(page, '#usage', 'stored in S3');

    const key = await loadReviewUpload(page, user);
    uploaded.push(key);

    // The PUT went to the bucket (presigned), not through the server.
    const puts = requests.filter((r) => r.method === 'PUT');
    assert.equal(puts.length, 1, JSON.stringify(puts));
    const put = new URL(puts[0].url);
    assert.equal(put.origin, new URL(env.endpoint).origin);
    assert.equal(decodeURIComponent(put.pathname), `/${env.bucket}/${key}`);
    assert.equal(put.searchParams.get('X-Amz-Algorithm'), 'AWS4-HMAC-SHA256');
    assert.match(put.searchParams.get('X-Amz-SignedHeaders'), /content-length.*x-amz-checksum-sha256/);
    assert.ok(puts[0].headers['x-amz-checksum-sha256'], 'the checksum header is sent');

    // The object is in the bucket, under the token's user, with no PII; nothing stored locally.
    const keys = await listKeys(env, `users/${user}/`);
    assert.deepEqual(keys, [key]);
    assertScrubbed(await getObject(env, key));
    assert.ok(!existsSync(path.join(dataDir, 'fitness')) || readdirSync(path.join(dataDir, 'fitness')).length === 0);

    // The page lists it from S3, and usage counts it at once (the granted upload is recorded).
    await waitForText(page, '#files', 'S3');
    await waitForText(page, '#usage', 'fitness (1 file)');
    assert.deepEqual(errors, []);
    await context.close();
  });

  test('a PUT of bytes of another size to the presigned URL is refused by S3', async () => {
    // The URL is bound to the size and SHA-256 of the scrubbed bytes: unscrubbed bytes fail.
    const token = server.token;
    const body = Buffer.from('{"basic_info":{"firstname":"Brigitte"}}');
    const scrubbedLike = Buffer.from('{"basic_info":{"ftp":242}}');
    const res = await fetch(`${server.origin}/api/presign`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        type: 'fitness',
        name: 'bound.json',
        size: scrubbedLike.length,
        sha256: (await import('node:crypto')).createHash('sha256').update(scrubbedLike).digest('hex'),
      }),
    });
    assert.equal(res.status, 200, await res.clone().text());
    const answer = await res.json();
    assert.equal(answer.backend, 's3');
    assert.equal(answer.key, `users/${user}/fitness/bound.json`);
    const headers = { ...answer.headers };
    delete headers['content-length'];
    const wrongSize = await fetch(answer.url, { method: 'PUT', headers, body });
    assert.ok(wrongSize.status >= 400, `a wrong size is refused: ${wrongSize.status}`);
    const right = await fetch(answer.url, { method: 'PUT', headers, body: scrubbedLike });
    assert.equal(right.status, 200, await right.text());
    uploaded.push(answer.key);
    assert.deepEqual((await listKeys(env, `users/${user}/fitness/bound`)).length, 1);
  });
});
