// The two built modules (scripts/build-wasm.sh): the page's has no signer and takes no
// secrets; the edge's has everything. Both load in Node from their bytes.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';

const EDGE_ONLY = ['Config', 'presignPut', 'presignGet', 'verifyToken', 'mintToken'];
const SHARED = ['scrub', 'precheck', 'precheckAllowance', 'planCleanup', 'objectKey'];

async function load(dir) {
  const url = new URL(`${dir}/kompass_wasm.js`, import.meta.url);
  const mod = await import(url);
  mod.initSync({ module: await readFile(new URL(`${dir}/kompass_wasm_bg.wasm`, import.meta.url)) });
  return mod;
}

test("the page's module has the browser's functions and nothing that signs", async () => {
  const page = await load('../../../www/pkg');
  for (const name of SHARED) assert.equal(typeof page[name], 'function', name);
  for (const name of EDGE_ONLY) assert.equal(page[name], undefined, name);
  assert.equal(page.objectKey('u1', 'routes', 'a.json'), 'users/u1/routes/a.json');
  const verdict = page.precheck({ size: 11 }, { user_bytes: 0, bucket_bytes: 0 },
    { max_file_bytes: 10, max_user_bytes: 100, max_bucket_bytes: 1000, cleanup_threshold_percent: 70 });
  assert.equal(verdict.reason, 'file_too_large');
  const types = await readFile(new URL('../../../www/pkg/kompass_wasm.d.ts', import.meta.url), 'utf8');
  assert.match(types, /export function precheck\(fileMeta: FileMeta, usage: Usage, limits: Limits/);
  assert.doesNotMatch(types, /presignPut/);
});

test("the edge's module has the signer too", async () => {
  const edge = await load('../pkg');
  for (const name of [...SHARED, ...EDGE_ONLY]) assert.equal(typeof edge[name], 'function', name);
  const types = await readFile(new URL('../pkg/kompass_wasm.d.ts', import.meta.url), 'utf8');
  assert.match(types, /export function presignPut\(s3: S3Access, request: PutRequest, nowMs: number\): Presigned;/);
  assert.match(types, /export interface Presigned \{/);
});
