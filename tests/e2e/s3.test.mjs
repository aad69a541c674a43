// kompass serve with S3 (SeaweedFS from scripts/s3-server.sh): the browser sends the scrubbed
// rider data to the server's rider route (never to a presigned URL), the server scrubs it
// again with its key and stores it in the bucket, and the object holds no PII.
// Needs the AWS_* variables `scripts/s3-server.sh env` prints; fails without them unless
// KOMPASS_SKIP_S3=1.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
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

  test('the browser sends rider data to the server, which stores it in S3 with no PII', async () => {
    const { page, requests, errors, context } = await openPage(browser);
    await page.goto(server.pageUrl);
    await waitForText(page, '#signin-status', `Signed in as ${user}`);
    await waitForText(page, '#usage', 'stored in S3');

    const key = await loadReviewUpload(page, user);
    uploaded.push(key);

    // Rider data went through the server, never straight to the bucket.
    assert.deepEqual(requests.filter((r) => r.method === 'PUT'), []);
    assert.ok(!requests.some((r) => r.url.startsWith(new URL(env.endpoint).origin)), 'no request to the bucket');
    const posts = requests.filter((r) => r.method === 'POST' && r.url === `${server.origin}/api/rider`);
    assert.equal(posts.length, 1);

    // The object is in the bucket, under the token's user, with no PII and the keyed
    // user_hash; nothing stored locally.
    const keys = await listKeys(env, `users/${user}/`);
    assert.deepEqual(keys, [key]);
    assertScrubbed(await getObject(env, key), user);
    assert.ok(!existsSync(path.join(dataDir, 'fitness')) || readdirSync(path.join(dataDir, 'fitness')).length === 0);

    // The page lists it from S3, and usage counts it at once (the granted upload is recorded).
    await waitForText(page, '#files', 'S3');
    await waitForText(page, '#usage', 'fitness (1 file)');
    assert.deepEqual(errors, []);
    await context.close();
  });

  test('no presigned URL for rider data; a route URL refuses bytes of another size', async () => {
    const token = server.token;
    const body = Buffer.from('{"basic_info":{"firstname":"Brigitte"}}');
    const scrubbedLike = Buffer.from('{"basic_info":{"ftp":242}}');
    const presign = (type) =>
      fetch(`${server.origin}/api/presign`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          type,
          name: 'bound.json',
          size: scrubbedLike.length,
          sha256: createHash('sha256').update(scrubbedLike).digest('hex'),
        }),
      });
    // Rider data: refused in S3 mode too, pointing at the rider route.
    const refused = await presign('fitness');
    assert.equal(refused.status, 400);
    const why = await refused.json();
    assert.equal(why.code, 'rider_route');
    assert.match(why.error, /POST \/api\/rider/);
    assert.equal(why.url, undefined);
    // A route: the URL is bound to the size and SHA-256 of the bytes.
    const res = await presign('routes');
    assert.equal(res.status, 200, await res.clone().text());
    const answer = await res.json();
    assert.equal(answer.backend, 's3');
    assert.equal(answer.key, `users/${user}/routes/bound.json`);
    const headers = { ...answer.headers };
    delete headers['content-length'];
    const wrongSize = await fetch(answer.url, { method: 'PUT', headers, body });
    assert.ok(wrongSize.status >= 400, `a wrong size is refused: ${wrongSize.status}`);
    const right = await fetch(answer.url, { method: 'PUT', headers, body: scrubbedLike });
    assert.equal(right.status, 200, await right.text());
    uploaded.push(answer.key);
    assert.deepEqual((await listKeys(env, `users/${user}/routes/bound`)).length, 1);
    assert.deepEqual(await listKeys(env, `users/${user}/fitness/bound`), []);
  });
});
