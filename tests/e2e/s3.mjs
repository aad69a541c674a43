// A tiny SigV4 S3 client for the tests (Authorization header, AWS4-HMAC-SHA256), written
// apart from kompass's own signer so that it checks the bucket through an independent path.

import { createHash, createHmac } from 'node:crypto';

const sha256hex = (data) => createHash('sha256').update(data).digest('hex');
const hmac = (key, data) => createHmac('sha256', key).update(data).digest();

/** RFC 3986 encoding, as SigV4 wants it. */
function encode(s) {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

/** The S3 settings from the environment `scripts/s3-server.sh env` prints. */
export function s3Env() {
  const names = ['AWS_ENDPOINT_URL', 'AWS_S3_BUCKET', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'];
  const missing = names.filter((n) => !process.env[n]);
  if (missing.length) return { missing };
  return {
    endpoint: process.env.AWS_ENDPOINT_URL.replace(/\/$/, ''),
    bucket: process.env.AWS_S3_BUCKET,
    region: process.env.AWS_REGION || 'us-east-1',
    accessKeyId: process.env.AWS_ACCESS_KEY_ID,
    secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY,
  };
}

/** Sends one signed request to the bucket (path-style). Returns the fetch Response. */
export async function s3Request(env, { method = 'GET', key = '', query = {}, body = '', headers = {} }) {
  const url = new URL(env.endpoint);
  const path = `/${env.bucket}` + (key ? '/' + key.split('/').map(encode).join('/') : '');
  const now = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
  const date = now.slice(0, 8);
  const payload = Buffer.from(body);
  const payloadHash = sha256hex(payload);
  const all = {
    host: url.host,
    'x-amz-date': now,
    'x-amz-content-sha256': payloadHash,
    ...Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), String(v)])),
  };
  const names = Object.keys(all).sort();
  const canonicalQuery = Object.keys(query)
    .sort()
    .map((k) => `${encode(k)}=${encode(query[k])}`)
    .join('&');
  const canonical = [
    method,
    path,
    canonicalQuery,
    names.map((n) => `${n}:${all[n].trim()}\n`).join(''),
    names.join(';'),
    payloadHash,
  ].join('\n');
  const scope = `${date}/${env.region}/s3/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', now, scope, sha256hex(canonical)].join('\n');
  const signingKey = [date, env.region, 's3', 'aws4_request'].reduce((k, part) => hmac(k, part), 'AWS4' + env.secretAccessKey);
  const signature = createHmac('sha256', signingKey).update(toSign).digest('hex');
  const { host: _host, ...sent } = all;
  sent.authorization = `AWS4-HMAC-SHA256 Credential=${env.accessKeyId}/${scope}, SignedHeaders=${names.join(';')}, Signature=${signature}`;
  return fetch(`${url.origin}${path}${canonicalQuery ? '?' + canonicalQuery : ''}`, {
    method,
    headers: sent,
    body: method === 'GET' || method === 'HEAD' ? undefined : payload,
  });
}

async function expectOk(res, what) {
  if (!res.ok) throw new Error(`${what}: S3 answered ${res.status}: ${await res.text()}`);
  return res;
}

/** PutBucketCors: lets `origin` PUT straight to the bucket (the page's presigned uploads). */
export async function putBucketCors(env, origin) {
  const xml =
    '<CORSConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><CORSRule>' +
    `<AllowedOrigin>${origin}</AllowedOrigin>` +
    '<AllowedMethod>PUT</AllowedMethod><AllowedHeader>*</AllowedHeader>' +
    '<ExposeHeader>ETag</ExposeHeader><MaxAgeSeconds>600</MaxAgeSeconds>' +
    '</CORSRule></CORSConfiguration>';
  const md5 = createHash('md5').update(xml).digest('base64');
  await expectOk(
    await s3Request(env, { method: 'PUT', query: { cors: '' }, body: xml, headers: { 'content-md5': md5, 'content-type': 'application/xml' } }),
    'PutBucketCors',
  );
}

/** The keys under `prefix` (ListObjectsV2, one page is plenty for a test prefix). */
export async function listKeys(env, prefix) {
  const res = await expectOk(await s3Request(env, { query: { 'list-type': '2', prefix } }), 'ListObjectsV2');
  const xml = await res.text();
  return [...xml.matchAll(/<Key>([^<]*)<\/Key>/g)].map((m) => m[1].replace(/&amp;/g, '&'));
}

/** An object's bytes as text. */
export async function getObject(env, key) {
  const res = await expectOk(await s3Request(env, { key }), `GetObject ${key}`);
  return res.text();
}

/** Deletes an object. */
export async function deleteObject(env, key) {
  await expectOk(await s3Request(env, { method: 'DELETE', key }), `DeleteObject ${key}`);
}
