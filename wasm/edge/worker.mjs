// KOMpass edge presigner: a standard module worker (`export default { fetch(request, env) }`)
// for Cloudflare's workerd and any runtime with the same shape (tested in workerd and Node 20).
//
//   POST /   Authorization: Bearer TOKEN      (minted by `kompass token`, KOMPASS_SERVER_SECRET)
//   {"type": "routes", "name": "ride.json", "size": 1234, "sha256": "<64 hex>",
//    "content_type"?: "application/json", "expires_secs"?: 300,
//    "usage"?: {"user_bytes": N, "bucket_bytes": N}, "allowance"?: "<from GET /api/allowance>"}
//   200 {"url", "method": "PUT", "headers", "key", "expires_at", "precheck": {...}}
//   400 bad request · 401 no or bad token · 403 not yours to ask for · 413 refused by precheck
//   405 not POST · 500 misconfigured (the log says what to set)
//
// The user comes from the token only: the key is users/{token user}/{type}/{name}, validated
// by the core, and a body naming a user or key is refused. The URL is bound to the exact size
// and SHA-256 (both signed), so S3 accepts only the bytes that passed the precheck.
//
// Admission: the edge has no inventory (listing the bucket per request would spend the scarce
// PUT-class request budget), so it admits only against facts it can trust (the core's
// admission::allowance): the per-file limit, and an `allowance` the server signed with
// KOMPASS_SERVER_SECRET (`GET /api/allowance`: bytes and PUTs the user may still spend, until
// it expires), charged per allowance as this instance grants uploads. Without an allowance it
// grants a user at most the user quota per instance. A reported `usage` can only make the
// precheck stricter, never admit more. Bound for a lying or replaying client: per instance,
// an allowance's bytes until it expires (or one quota without one).
//
// Environment: AWS_S3_BUCKET, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION,
// AWS_ENDPOINT_URL, KOMPASS_SERVER_SECRET, S3_MAX_FILE_SIZE_MB, S3_MAX_USER_STORAGE_MB,
// S3_MAX_TOTAL_STORAGE_GB, S3_CLEANUP_THRESHOLD_PERCENT (validated by the core's Config;
// S3_STORAGE_ENABLED defaults to true here, since presigning needs S3).

import { initSync, Config, objectKey, precheck } from './pkg/kompass_wasm.js';

// What this instance granted per account (an allowance, or a user without one).
const spentBy = new Map();

const DEFAULT_EXPIRES_SECS = 300;
// An upload URL is bound to its bytes, but a short life still limits what a leaked one can do.
const MAX_EXPIRES_SECS = 3600;
const FIELDS = new Set(['type', 'name', 'size', 'sha256', 'content_type', 'expires_secs', 'usage', 'allowance']);
const NOT_YOURS = new Set(['user', 'user_id', 'key', 'prefix']);
// Rider data is stored only by the server (POST /api/rider of kompass serve), which scrubs it
// again with the pseudonym key; the core's presigner refuses it too (the scrub policy).
const SERVER_ONLY_TYPES = new Set(['fitness']);

let ready;
const configs = new WeakMap();

/** Instantiates the module once: workerd hands the imported .wasm over compiled; Node reads it. */
async function loadWasm() {
  let module;
  try {
    module = (await import('./pkg/kompass_wasm_bg.wasm')).default;
  } catch {
    const { readFile } = await import('node:fs/promises');
    module = await readFile(new URL('./pkg/kompass_wasm_bg.wasm', import.meta.url));
  }
  initSync({ module });
}

function configFor(env) {
  let config = configs.get(env);
  if (!config) {
    config = new Config({ S3_STORAGE_ENABLED: 'true', ...env });
    configs.set(env, config);
  }
  return config;
}

const CORS = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'POST, OPTIONS',
  'access-control-allow-headers': 'authorization, content-type',
  'access-control-max-age': '600',
};

function reply(status, body, headers = {}) {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json', 'cache-control': 'no-store', ...CORS, ...headers },
  });
}

const BEARER = { 'www-authenticate': 'Bearer realm="kompass"' };
const fail = (status, error, extra = {}, headers = {}) => reply(status, { error, ...extra }, headers);

function misconfigured(error) {
  // The details (which variable, what to set) go to the operator's log, not to callers.
  console.error(`kompass edge presigner: ${error.message}`);
  return fail(500, 'the presigner is misconfigured: its log says which variables to set');
}

async function presign(request, env) {
  await (ready ??= loadWasm());
  let config;
  try {
    config = configFor(env);
  } catch (e) {
    return misconfigured(e);
  }

  const auth = /^Bearer +([A-Za-z0-9._-]+)$/.exec((request.headers.get('authorization') ?? '').trim());
  if (!auth) {
    return fail(401, 'send the API token as "Authorization: Bearer TOKEN" (mint one with `kompass token`)', {}, BEARER);
  }
  let claims;
  try {
    claims = config.verifyToken(auth[1], Date.now());
  } catch (e) {
    return e.name === 'ConfigError' ? misconfigured(e) : fail(401, e.message, {}, BEARER);
  }

  let body;
  try {
    body = await request.json();
  } catch {
    return fail(400, 'the body must be JSON: {"type", "name", "size", "sha256"}');
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    return fail(400, 'the body must be a JSON object: {"type", "name", "size", "sha256"}');
  }
  const foreign = Object.keys(body).filter((k) => NOT_YOURS.has(k));
  if (foreign.length) {
    return fail(403, `do not send ${foreign.join(', ')}: the user comes from your API token, the key from type and name`);
  }
  const unknown = Object.keys(body).filter((k) => !FIELDS.has(k));
  if (unknown.length) {
    return fail(400, `unknown field ${unknown.join(', ')}: send type, name, size, sha256 and optionally content_type, expires_secs, usage, allowance`);
  }
  const { type, name, size, sha256, content_type = null, expires_secs = DEFAULT_EXPIRES_SECS } = body;
  if (typeof type !== 'string' || typeof name !== 'string' || typeof sha256 !== 'string') {
    return fail(400, 'type, name and sha256 must be strings');
  }
  if (!Number.isSafeInteger(size) || size < 0) {
    return fail(400, 'size must be the file length in bytes, a whole number');
  }
  if (!Number.isSafeInteger(expires_secs) || expires_secs < 1 || expires_secs > MAX_EXPIRES_SECS) {
    return fail(400, `expires_secs must be a whole number of seconds from 1 to ${MAX_EXPIRES_SECS}`);
  }
  if (SERVER_ONLY_TYPES.has(type)) {
    return fail(403, `${type} data is stored only by the server, which scrubs it with the pseudonym key: send it to POST /api/rider; the edge presigns other uploads`);
  }

  let key;
  try {
    key = objectKey(claims.user, type, name);
  } catch (e) {
    return fail(400, e.message);
  }

  let verdict;
  try {
    verdict = precheck({ size, user: claims.user }, body.usage ?? { user_bytes: 0, bucket_bytes: 0 }, config.limits);
  } catch (e) {
    return fail(400, e.message.replace(/^usage: /, 'usage must be {"user_bytes", "bucket_bytes"}: '));
  }
  if (!verdict.admitted) {
    return fail(413, verdict.message, { reason: verdict.reason, precheck: verdict });
  }
  const allowance = body.allowance ?? null;
  if (allowance !== null && typeof allowance !== 'string') {
    return fail(400, 'allowance must be the string GET /api/allowance returned');
  }
  const now = Date.now();
  let account, admitted;
  try {
    account = config.edgeAccount(claims.user, allowance, now);
    admitted = config.edgeAdmit(claims.user, size, allowance, spentBy.get(account) ?? { bytes: 0, puts: 0 }, now);
  } catch (e) {
    return e.name === 'ConfigError' ? misconfigured(e) : fail(403, `allowance refused: ${e.message}`);
  }
  if (!admitted.admitted) {
    return fail(413, admitted.message, { reason: admitted.reason, precheck: verdict });
  }

  try {
    const presigned = config.presignPut({ key, size, sha256, expires_secs, content_type }, now);
    spentBy.set(account, admitted.spent);
    return reply(200, { ...presigned, precheck: verdict });
  } catch (e) {
    return e.name === 'ConfigError' ? misconfigured(e) : fail(400, e.message);
  }
}

export default {
  async fetch(request, env) {
    if (request.method === 'OPTIONS') return new Response(null, { status: 204, headers: CORS });
    if (request.method !== 'POST') return fail(405, 'use POST', {}, { allow: 'POST, OPTIONS' });
    return presign(request, env);
  },
};
