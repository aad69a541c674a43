// Times importStravaExport of www/pkg-import (the page's importer module) on one archive and
// prints one JSON line: seconds (wall), the result's sizes, the wasm linear memory after the
// import (it never shrinks: the wasm side's peak) and Node's peak RSS. As the page does, the
// document (bytes, a Uint8Array) is then wrapped in a Blob for the upload, so the peak RSS
// includes that copy too.
// Usage: node bench/wasm/import.mjs ARCHIVE.zip
import { readFileSync } from "node:fs";
import { resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const mod = await import(resolve(root, "www/pkg-import/kompass_wasm.js"));
const wasm = mod.initSync({ module: readFileSync(resolve(root, "www/pkg-import/kompass_wasm_bg.wasm")) });
const bytes = new Uint8Array(readFileSync(process.argv[2]));
const t0 = process.hrtime.bigint();
let calls = 0;
const out = mod.importStravaExport(bytes, () => { calls += 1; });
const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
// The API gives bytes: a string could not hold a large export's document (V8's longest string
// is ~537 M characters).
if (!(out.document instanceof Uint8Array)) throw new Error(`the document is a ${typeof out.document}, not a Uint8Array`);
const rssAfterImport = process.resourceUsage().maxRSS * 1024;
const blob = new Blob([out.document], { type: "application/json" });
console.log(JSON.stringify({
  seconds,
  archive_bytes: bytes.length,
  document_bytes: out.document.length,
  blob_bytes: blob.size,
  activities: out.report.activities,
  progress_calls: calls,
  peak_rss_after_import_bytes: rssAfterImport,
  peak_rss_bytes: process.resourceUsage().maxRSS * 1024,
  wasm_memory_bytes: wasm.memory.buffer.byteLength,
}));
