// The page imports one Strava export ZIP in headless Chromium, as a rider would (the importer
// in its worker, the document back as bytes), then uploads it as a Blob through `POST
// /api/rider` of a local `kompass serve` whose limits let it in. Prints one JSON line: the
// import's wall time (file chosen → "activities read"), the upload's (click → "Uploaded"),
// the stored file's size, and the peak RSS of this script's child processes, sampled every
// 250 ms: Chromium's processes and the server (idle during the import, busy during the upload).
// Usage (after scripts/build-wasm.sh and cargo build -p kompass; npm ci in tests/e2e):
//   node bench/wasm/import_page.mjs ARCHIVE.zip [--no-upload]
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { launch, openPage, startServe, secret, tempDir, waitForText } from '../../tests/e2e/harness.mjs';

const archive = path.resolve(process.argv[2]);
const upload = !process.argv.includes('--no-upload');
const dir = tempDir('import-page');
const dataDir = path.join(dir, 'data');
const server = await startServe({
  cwd: dir,
  env: {
    DATA_DIRECTORY: dataDir,
    KOMPASS_SERVER_SECRET: secret(),
    S3_STORAGE_ENABLED: 'false',
    // The 500 MB export gives a ~620 MB document: let it through (defaults: 50 / 100).
    S3_MAX_FILE_SIZE_MB: '4096',
    S3_MAX_USER_STORAGE_MB: '8192',
  },
});
const browser = await launch();

/** RSS of a process and all its descendants, from /proc. */
function treeRss(root) {
  const children = new Map();
  const rss = new Map();
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ppid = Number(fields[1]);
      rss.set(Number(pid), Number(fields[21]) * 4096);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(Number(pid));
    } catch {
      /* gone */
    }
  }
  let total = 0;
  const stack = [root];
  while (stack.length) {
    const p = stack.pop();
    total += rss.get(p) ?? 0;
    stack.push(...(children.get(p) ?? []));
  }
  return total;
}

// Playwright launches Chromium as a child of this process, as startServe does the server.
let peak = 0;
const sampler = setInterval(() => (peak = Math.max(peak, treeRss(process.pid) - process.memoryUsage().rss)), 250);
try {
  const { page, errors } = await openPage(browser);
  await page.goto(server.pageUrl);
  await waitForText(page, '#signin-status', 'Signed in as');
  const t0 = performance.now();
  await page.setInputFiles('#file', archive);
  await waitForText(page, '#load-status', 'activities read', 60 * 60 * 1000);
  const importSeconds = (performance.now() - t0) / 1000;
  const importPeak = peak;
  const status = await page.textContent('#load-status');
  let uploadSeconds = null;
  let storedBytes = null;
  if (upload) {
    await waitForText(page, '#precheck', 'fits', 60000);
    const t1 = performance.now();
    await page.click('#upload');
    await waitForText(page, '#upload-status', 'Uploaded users/', 60 * 60 * 1000);
    uploadSeconds = (performance.now() - t1) / 1000;
    const files = path.join(dataDir, 'fitness', 'dev-rider');
    storedBytes = statSync(path.join(files, readdirSync(files)[0])).size;
  }
  console.log(JSON.stringify({
    archive_bytes: statSync(archive).size,
    import_seconds: importSeconds,
    archive_mb_s: statSync(archive).size / 1e6 / importSeconds,
    status,
    chromium_peak_rss_import_bytes: importPeak,
    upload_seconds: uploadSeconds,
    stored_bytes: storedBytes,
    chromium_peak_rss_bytes: peak,
    page_errors: errors,
  }));
} finally {
  clearInterval(sampler);
  await browser.close();
  await server.stop();
}
