// Shared set-up for the edge presigner tests: the S3 server from the environment, API tokens
// minted per the documented format, and the two runtimes the worker runs in.
import { createHash, createHmac, randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { Miniflare } from 'miniflare';

import { initSync, Config } from '../pkg/kompass_wasm.js';

const EDGE = fileURLToPath(new URL('..', import.meta.url));

const missing = ['AWS_ENDPOINT_URL', 'AWS_S3_BUCKET', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']
  .filter((v) => !process.env[v]);
if (missing.length) {
  throw new Error(`missing ${missing.join(', ')}: the edge tests need a running S3 server (scripts/s3-server.sh start, then export its env)`);
}

export const SERVER_SECRET = 'edge-test-server-secret-0123456789abcdef';

/** The worker's environment: the test S3 server, the token secret and a 1 MiB file limit. */
export function workerEnv(overrides = {}) {
  const env = {
    AWS_ENDPOINT_URL: process.env.AWS_ENDPOINT_URL,
    AWS_REGION: process.env.AWS_REGION ?? 'us-east-1',
    AWS_S3_BUCKET: process.env.AWS_S3_BUCKET,
    AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY,
    KOMPASS_SERVER_SECRET: SERVER_SECRET,
    S3_MAX_FILE_SIZE_MB: '1',
    S3_MAX_USER_STORAGE_MB: '10',
    ...overrides,
  };
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k];
  return env;
}

const b64url = (bytes) => Buffer.from(bytes).toString('base64url');

/**
 * An API token as `kompass token` mints it, written here from the documented format rather
 * than by the module under test: base64url(payload JSON) "." base64url(HMAC-SHA256 over
 * "kompass-api-token.v1." + encoded payload), payload {"v":1,"sub":USER,"exp":UNIX_SECONDS}.
 */
export function mintToken(user, { expiresIn = 600, secret = SERVER_SECRET, payload } = {}) {
  const encoded = b64url(JSON.stringify(payload ?? { v: 1, sub: user, exp: Math.floor(Date.now() / 1000) + expiresIn }));
  const tag = createHmac('sha256', secret).update('kompass-api-token.v1.').update(encoded).digest();
  return `${encoded}.${b64url(tag)}`;
}

/**
 * An allowance as the server signs it (`GET /api/allowance`), from the documented format: the
 * token's format under the context "kompass-edge-allowance.v1.", payload
 * {"user","bytes","puts","expires_at" (unix ms),"id"}.
 */
export function mintAllowance(user, { bytes, puts, expiresIn = 300, id = 1, secret = SERVER_SECRET }) {
  const payload = { user, bytes, puts, expires_at: Date.now() + expiresIn * 1000, id };
  const encoded = b64url(JSON.stringify(payload));
  const tag = createHmac('sha256', secret).update('kompass-edge-allowance.v1.').update(encoded).digest();
  return `${encoded}.${b64url(tag)}`;
}

export const sha256Hex = (bytes) => createHash('sha256').update(bytes).digest('hex');

/** A unique file name, so runs and runtimes never collide in the shared bucket. */
export const uniqueName = (stem = 'ride') => `${stem}-${randomUUID()}.json`;

/** Random bytes of a given length, as an upload body. */
export function body(length) {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = (i * 131 + 7) & 0xff;
  bytes.set(new TextEncoder().encode(randomUUID()).subarray(0, Math.min(36, length)));
  return bytes;
}

let wasmReady;
/** A presigned GET (the module's Config, with the test server's credentials) to read an object back. */
export async function presignedGet(key) {
  if (!wasmReady) {
    initSync({ module: await readFile(new URL('../pkg/kompass_wasm_bg.wasm', import.meta.url)) });
    wasmReady = true;
  }
  const config = new Config({ S3_STORAGE_ENABLED: 'true', ...workerEnv() });
  try {
    return config.presignGet({ key, expires_secs: 60 }, Date.now()).url;
  } finally {
    config.free();
  }
}

/** The worker in Cloudflare's workerd, through miniflare. */
export async function startWorkerd(env) {
  const mf = new Miniflare({
    modulesRoot: EDGE,
    modules: [
      { type: 'ESModule', path: `${EDGE}/worker.mjs` },
      { type: 'ESModule', path: `${EDGE}/pkg/kompass_wasm.js` },
      { type: 'CompiledWasm', path: `${EDGE}/pkg/kompass_wasm_bg.wasm` },
    ],
    compatibilityDate: '2025-06-01',
    bindings: env,
  });
  await mf.ready;
  return {
    name: 'workerd',
    fetch: (url, init) => mf.dispatchFetch(url, init),
    close: () => mf.dispose(),
  };
}

/** The worker imported into this Node process and called as a runtime would. */
export async function startNode(env) {
  const { default: worker } = await import('../worker.mjs');
  return {
    name: 'node',
    fetch: (url, init) => worker.fetch(new Request(url, init), env),
    close: async () => {},
  };
}
