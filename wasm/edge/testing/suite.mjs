// The edge presigner's behaviour, run once per runtime (test/workerd.test.mjs, test/node.test.mjs)
// against the real S3 server named by AWS_ENDPOINT_URL, which verifies SigV4.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { body, mintAllowance, mintToken, presignedGet, sha256Hex, uniqueName, workerEnv } from './harness.mjs';

const EDGE_URL = 'https://edge.example/presign';
const randomSuffix = () => Math.random().toString(36).slice(2, 10);

export function presignerSuite(runtime, start) {
  describe(`edge admission in ${runtime}: only trusted facts`, () => {
    let rt;
    // The spec's limits: 50 MiB per file, 100 MiB per user.
    before(async () => { rt = await start(workerEnv({ S3_MAX_FILE_SIZE_MB: '50', S3_MAX_USER_STORAGE_MB: '100' })); });
    after(async () => { await rt?.close(); });
    const MIB = 1024 * 1024;
    const ask = async (user, extra) => {
      const res = await rt.fetch(EDGE_URL, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${mintToken(user)}` },
        body: JSON.stringify({ type: 'routes', name: uniqueName(), size: 50 * MIB, sha256: sha256Hex(body(8)), ...extra }),
      });
      return { status: res.status, json: await res.json() };
    };

    test('200 presigns of 50 MiB by a user who reports no usage are not admitted past the quota', async () => {
      const user = `liar-${randomSuffix()}`;
      let admitted = 0;
      for (let i = 0; i < 200; i++) {
        const { status, json } = await ask(user, { usage: { user_bytes: 0, bucket_bytes: 0 } });
        if (status === 200) admitted++;
        else assert.equal(status, 413, JSON.stringify(json));
      }
      assert.equal(admitted * 50 * MIB, 100 * MIB, `${admitted} admitted`);
    });

    test('a signed allowance bounds bytes and uploads; a forged or foreign one is refused', async () => {
      const user = `allowed-${randomSuffix()}`;
      const allowance = mintAllowance(user, { bytes: 60 * MIB, puts: 5, id: Date.now() });
      let { status, json } = await ask(user, { allowance });
      assert.equal(status, 200, JSON.stringify(json));
      ({ status, json } = await ask(user, { allowance }));
      assert.equal(status, 413, JSON.stringify(json));
      assert.equal(json.reason, 'over_allowance');
      ({ status, json } = await ask(user, { allowance, size: 10 * MIB }));
      assert.equal(status, 200, JSON.stringify(json));
      ({ status } = await ask(user, { allowance: mintAllowance(user, { bytes: 10_000 * MIB, puts: 5, secret: 'x'.repeat(40) }) }));
      assert.equal(status, 403);
      ({ status, json } = await ask(`other-${randomSuffix()}`, { allowance }));
      assert.equal(status, 413, JSON.stringify(json));
      assert.equal(json.reason, 'not_yours');
    });
  });


  describe(`edge presigner in ${runtime}`, () => {
    let rt;
    before(async () => { rt = await start(workerEnv()); });
    after(async () => { await rt?.close(); });

    /** POSTs `json` (or a raw string) to the worker as `user` (a token string, or none). */
    async function ask(json, { token = mintToken('rider-1'), method = 'POST', headers = {} } = {}) {
      const init = { method, headers: { 'content-type': 'application/json', ...headers } };
      if (token) init.headers.authorization = `Bearer ${token}`;
      if (method !== 'GET' && method !== 'OPTIONS') init.body = typeof json === 'string' ? json : JSON.stringify(json);
      const res = await rt.fetch(EDGE_URL, init);
      const text = await res.text();
      return { status: res.status, headers: res.headers, json: text ? JSON.parse(text) : null };
    }

    const upload = (bytes, extra = {}) => ({
      type: 'routes', name: uniqueName(), size: bytes.length, sha256: sha256Hex(bytes), ...extra,
    });

    const put = (presigned, bytes, headers = presigned.headers) =>
      fetch(presigned.url, { method: presigned.method, headers, body: bytes });

    test('a presigned PUT accepts the exact bytes, which then read back', async () => {
      const bytes = body(2048);
      const request = upload(bytes, { content_type: 'application/json' });
      const before = Date.now();
      const { status, json } = await ask(request);
      assert.equal(status, 200, JSON.stringify(json));
      assert.equal(json.key, `users/rider-1/routes/${request.name}`);
      assert.equal(json.method, 'PUT');
      assert.deepEqual(json.headers, {
        'content-length': '2048',
        'content-type': 'application/json',
        'x-amz-checksum-sha256': Buffer.from(request.sha256, 'hex').toString('base64'),
      });
      assert.ok(json.url.startsWith(`${process.env.AWS_ENDPOINT_URL}/${process.env.AWS_S3_BUCKET}/users/rider-1/routes/`));
      const expires = Date.parse(json.expires_at);
      assert.ok(Math.abs(expires - (before + 300_000)) < 5_000, json.expires_at);
      assert.equal(json.precheck.verdict, 'admit');

      const res = await put(json, bytes);
      assert.equal(res.status, 200, await res.text());
      const back = await fetch(await presignedGet(json.key));
      assert.equal(back.status, 200);
      assert.deepEqual(new Uint8Array(await back.arrayBuffer()), bytes);
    });

    test("another user's key cannot be asked for", async () => {
      const bytes = body(16);
      const attempts = [
        [{ ...upload(bytes), user: 'rider-2' }, 403],
        [{ ...upload(bytes), key: 'users/rider-2/routes/x.json' }, 403],
        [upload(bytes, { name: '../../rider-2/routes/x.json' }), 400],
        [upload(bytes, { name: '..' }), 400],
        [upload(bytes, { name: 'x\\..\\rider-2' }), 400],
        [upload(bytes, { name: 'x\u2215rider-2' }), 400],
        [upload(bytes, { type: '../rider-2/routes' }), 400],
        [upload(bytes, { type: 'models' }), 400],
      ];
      for (const [request, expected] of attempts) {
        const { status, json } = await ask(request);
        assert.equal(status, expected, `${JSON.stringify(request)} → ${JSON.stringify(json)}`);
        assert.equal(json.url, undefined);
        assert.match(json.error, /\w/);
      }
      // A name with an encoded slash stays a name, under the caller's own prefix.
      const { status, json } = await ask(upload(bytes, { name: 'x%2F..%2Frider-2.json' }));
      assert.equal(status, 200, JSON.stringify(json));
      assert.equal(json.key, 'users/rider-1/routes/x%2F..%2Frider-2.json');
      assert.ok(json.url.includes('/users/rider-1/routes/x%252F..%252Frider-2.json?'), json.url);

      // Rider-2's payload under rider-1's signature, and a token from another secret.
      const forged = `${mintToken('rider-2').split('.')[0]}.${mintToken('rider-1').split('.')[1]}`;
      for (const token of [forged, mintToken('rider-2', { secret: 'not-the-server-secret-0123456789abcdef' })]) {
        const res = await ask(upload(bytes), { token });
        assert.equal(res.status, 401);
        assert.match(res.json.error, /signature/);
      }
    });

    test('no token, a malformed token and an expired token are 401', async () => {
      const request = upload(body(8));
      let res = await ask(request, { token: null });
      assert.equal(res.status, 401);
      assert.match(res.json.error, /Authorization: Bearer/);
      assert.match(res.headers.get('www-authenticate'), /^Bearer/);
      res = await ask(request, { token: 'not-a-token' });
      assert.equal(res.status, 401);
      assert.match(res.json.error, /malformed/);
      res = await ask(request, { token: mintToken('rider-1', { expiresIn: -1 }) });
      assert.equal(res.status, 401);
      assert.match(res.json.error, /expired/);
    });

    test('a tampered URL is refused by S3', async () => {
      const bytes = body(64);
      const { json } = await ask(upload(bytes));
      const tampered = [
        json.url.replace('/users/rider-1/', '/users/rider-2/'),
        json.url.replace('X-Amz-Expires=300', 'X-Amz-Expires=3000'),
        json.url.replace(/X-Amz-Signature=([0-9a-f])/, (_, c) => `X-Amz-Signature=${c === '0' ? '1' : '0'}`),
      ];
      for (const url of tampered) {
        assert.notEqual(url, json.url);
        const res = await put({ ...json, url }, bytes);
        assert.equal(res.status, 403, `${url}: ${await res.text()}`);
      }
      const probe = await fetch(await presignedGet(json.key.replace('rider-1', 'rider-2')));
      assert.equal(probe.status, 404);
    });

    test('an expired URL is refused by S3', async () => {
      const bytes = body(32);
      const { status, json } = await ask(upload(bytes, { expires_secs: 1 }));
      assert.equal(status, 200, JSON.stringify(json));
      await sleep(2_100);
      const res = await put(json, bytes);
      assert.equal(res.status, 403, await res.text());
      assert.equal((await fetch(await presignedGet(json.key))).status, 404);
    });

    test('a body other than the presigned one is refused by S3', async () => {
      const bytes = body(100);
      const { json } = await ask(upload(bytes));
      // Another size: the signed content-length no longer matches.
      const { 'content-length': _, ...rest } = json.headers;
      for (const other of [body(101), body(99)]) {
        const res = await put(json, other, rest);
        assert.equal(res.status, 403, `${other.length} bytes: ${await res.text()}`);
      }
      // The same size, other bytes: S3 checks the body against the signed checksum.
      const other = body(100);
      assert.notDeepEqual(other, bytes);
      let res = await put(json, other);
      assert.equal(res.status, 400);
      assert.match(await res.text(), /BadDigest/);
      // Leaving out the checksum header breaks the signature.
      res = await put(json, bytes, { 'content-length': json.headers['content-length'] });
      assert.equal(res.status, 403);
      assert.equal((await fetch(await presignedGet(json.key))).status, 404);
    });

    test('an upload the precheck refuses gets 413 with its reason, before any URL', async () => {
      let res = await ask({ type: 'routes', name: uniqueName(), size: 1024 * 1024 + 1, sha256: sha256Hex(body(1)) });
      assert.equal(res.status, 413);
      assert.equal(res.json.reason, 'file_too_large');
      assert.match(res.json.error, /S3_MAX_FILE_SIZE_MB/);
      assert.equal(res.json.url, undefined);

      const bytes = body(1000);
      res = await ask(upload(bytes, { usage: { user_bytes: 10 * 1024 * 1024 - 999, bucket_bytes: 0 } }));
      assert.equal(res.status, 413);
      assert.equal(res.json.reason, 'user_quota_exceeded');
      assert.match(res.json.error, /rider-1/);

      res = await ask(upload(bytes, { usage: { user_bytes: 7 * 1024 * 1024, bucket_bytes: 7 * 1024 * 1024 } }));
      assert.equal(res.status, 200);
      assert.equal(res.json.precheck.verdict, 'admit_cleanup_due');
    });

    test('malformed requests are 400 with a reason', async () => {
      const bytes = body(10);
      const cases = [
        ['{not json', /JSON/],
        ['[1,2]', /object/],
        [upload(bytes, { sha256: 'abc' }), /64 hex/],
        [upload(bytes, { size: -1 }), /size/],
        [upload(bytes, { size: 1.5 }), /size/],
        [upload(bytes, { size: '10' }), /size/],
        [upload(bytes, { name: 7 }), /strings/],
        [upload(bytes, { expires_secs: 0 }), /expires_secs/],
        [upload(bytes, { expires_secs: 86_400 }), /expires_secs/],
        [upload(bytes, { bucket: 'other' }), /unknown field bucket/],
        [upload(bytes, { usage: { user_bytes: 'lots' } }), /usage/],
        [upload(bytes, { content_type: 'text/plain\r\nx-evil: 1' }), /content type/],
      ];
      for (const [request, message] of cases) {
        const res = await ask(request);
        assert.equal(res.status, 400, `${JSON.stringify(request)} → ${JSON.stringify(res.json)}`);
        assert.match(res.json.error, message);
      }
    });

    test('rider data is left to the server, which scrubs it with the pseudonym key', async () => {
      const res = await ask(upload(body(10), { type: 'fitness' }));
      assert.equal(res.status, 403);
      assert.match(res.json.error, /server/);
      assert.match(res.json.error, /POST \/api\/rider/);
      assert.equal(res.json.url, undefined, 'no URL is issued for rider data');
    });

    test('only POST presigns; a preflight is answered for the page', async () => {
      let res = await ask(null, { method: 'GET' });
      assert.equal(res.status, 405);
      assert.equal(res.headers.get('allow'), 'POST, OPTIONS');
      res = await ask(null, { method: 'OPTIONS', token: null });
      assert.equal(res.status, 204);
      assert.match(res.headers.get('access-control-allow-headers'), /authorization/);
    });

    test('a misconfigured worker answers 500 without naming its secrets', async () => {
      for (const overrides of [
        { KOMPASS_SERVER_SECRET: undefined },
        { KOMPASS_SERVER_SECRET: 'short' },
        { S3_MAX_FILE_SIZE_MB: 'lots' },
        { AWS_SECRET_ACCESS_KEY: undefined },
      ]) {
        const broken = await start(workerEnv(overrides));
        try {
          const res = await broken.fetch(EDGE_URL, {
            method: 'POST',
            headers: { authorization: `Bearer ${mintToken('rider-1')}` },
            body: JSON.stringify(upload(body(4))),
          });
          const text = await res.text();
          assert.equal(res.status, 500, `${JSON.stringify(overrides)}: ${text}`);
          assert.match(JSON.parse(text).error, /misconfigured/);
          assert.ok(!text.includes(process.env.AWS_SECRET_ACCESS_KEY) && !text.includes('short'), text);
        } finally {
          await broken.close();
        }
      }
    });
  });
}
