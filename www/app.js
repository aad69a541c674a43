// The KOMpass upload page: sign in with an API token, scrub a Strava export in wasm on this
// device, show what was removed and kept, precheck the quota, send the scrubbed bytes to the
// server's rider route (POST /api/rider) with progress, and show the stored files and usage.
// Rider data never goes through an upload URL: the server scrubs it again with its pseudonym
// key, names it fitness_data_{timestamp}.json and stores it. SHA-256, names and summaries
// come from the wasm module (the core), not from JavaScript copies.
//
// The token comes from the URL fragment (`#token=...`, never sent to a server, removed from
// the address bar at once) or from the token field, and lives in sessionStorage (this tab).
//
// Ids: on a server the core replaces athlete and activity ids with keyed HMAC pseudonyms.
// That key (KOMPASS_PSEUDONYM_KEY) must never reach a browser, so the page scrubs without
// one and the ids are dropped; the server adds the keyed user_hash of the token's user.

import { groupRemoved, keptFields } from './paths.js';
import { closeRoom, offerRoom } from './account.js';

const TOKEN_KEY = 'kompass-token';
const $ = (id) => document.getElementById(id);

// The wasm module (loaded in main, so that a missing build is reported on the page).
let wasm = null;

const state = {
  token: null,
  user: null,
  usage: null,
  // The server-signed allowance (GET /api/allowance): what this rider may still upload, the
  // one fact the page prechecks against (through the core); the sealed string the edge
  // presigner takes as `allowance`.
  allowance: null,
  allowanceRefetched: false,
  allowanceError: null,
  scrubbed: null, // { body: Blob, size, sha256: hex, report, summary }
  wasmReady: false,
  busy: false,
  // The server's refusal (507) of the scrubbed upload, until the rider's files change.
  refused: null,
};

/* ---------- formatting ---------- */

function humanBytes(n) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

function percent(p) {
  return `${p < 0.1 && p > 0 ? p.toFixed(3) : p.toFixed(1)} %`;
}

function setText(id, text, kind) {
  const el = $(id);
  el.textContent = text;
  el.classList.remove('ok', 'warn', 'error');
  if (kind) el.classList.add(kind);
}

function cell(text, className) {
  const td = document.createElement('td');
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

/* ---------- API ---------- */

class ApiError extends Error {
  constructor(status, body) {
    super(body && body.error ? body.error : `the server answered ${status}`);
    this.status = status;
    this.body = body;
  }
}

async function api(path, options = {}) {
  const headers = { ...(options.headers || {}), Authorization: `Bearer ${state.token}` };
  if (options.json !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(path, {
    method: options.method || 'GET',
    headers,
    body: options.json !== undefined ? JSON.stringify(options.json) : undefined,
    cache: 'no-store',
  });
  const text = await res.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = { error: text };
  }
  if (!res.ok) {
    if (res.status === 401) signedOut(body && body.error);
    throw new ApiError(res.status, body);
  }
  return body;
}

/* ---------- sign in ---------- */

function tokenFromFragment() {
  const params = new URLSearchParams(location.hash.slice(1));
  const token = params.get('token');
  if (token) {
    // Out of the address bar, the history and any bookmark at once.
    history.replaceState(null, '', location.pathname + location.search);
  }
  return token;
}

async function signIn(token) {
  state.token = token.trim();
  setText('signin-status', 'Checking the token…');
  try {
    const usage = await api('/api/usage');
    sessionStorage.setItem(TOKEN_KEY, state.token);
    state.user = usage.user;
    setText('signin-status', `Signed in as ${usage.user}.`, 'ok');
    $('signout').hidden = false;
    $('token').value = '';
    $('storage').hidden = false;
    showUsage(usage);
    await loadAllowance();
    await refreshFiles();
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 401)) {
      setText('signin-status', `Could not check the token: ${e.message}`, 'error');
    }
  }
  updatePrecheck();
}

function signedOut(reason) {
  sessionStorage.removeItem(TOKEN_KEY);
  state.token = null;
  state.user = null;
  state.usage = null;
  state.allowance = null;
  $('signout').hidden = true;
  $('storage').hidden = true;
  setText(
    'signin-status',
    reason ? `Not signed in: ${reason}` : 'Not signed in: paste a token from `kompass token --user U`.',
    reason ? 'error' : undefined,
  );
  updatePrecheck();
}

/* ---------- load and scrub ---------- */

async function loadFile(file) {
  if (!file) return;
  if (isZip(file)) return loadExportZip(file);
  $('import-review').hidden = true;
  $('json-review').hidden = false;
  if (!state.wasmReady) {
    setText('load-status', 'The scrubber is not loaded, so nothing can be read: see the message above.', 'error');
    return;
  }
  state.scrubbed = null;
  state.refused = null; // a refusal was for the previous file
  $('review').hidden = true;
  $('send').hidden = true;
  setText('upload-status', '');
  $('progress').value = 0;
  setText('load-status', `Scrubbing ${file.name} (${humanBytes(file.size)}) on this device…`);
  let input;
  let original;
  try {
    input = new Uint8Array(await file.arrayBuffer());
    const result = wasm.scrub(input); // keyless: ids are dropped
    try {
      original = JSON.parse(new TextDecoder().decode(input));
    } catch {
      original = undefined; // the scrubber accepted it; descriptions are then left out
    }
    const bytes = new TextEncoder().encode(result.document);
    state.scrubbed = {
      body: new Blob([bytes], { type: 'application/json' }),
      size: bytes.length,
      sha256: wasm.sha256Hex(bytes),
      summary: wasm.summarizeRider(result.document),
      report: result.report,
    };
    showReview(file, original, result);
    setText(
      'load-status',
      `${file.name}: ${result.report.removed_count} fields removed, ${humanBytes(bytes.length)} left to upload.`,
      'ok',
    );
  } catch (e) {
    setText('load-status', `${file.name} could not be scrubbed: ${e.message}`, 'error');
    return;
  }
  $('send').hidden = false;
  updatePrecheck();
}

// The core's summary of the scrubbed document (the same one the server's rider history shows).
function riderSummaryText(summary) {
  if (!summary) return '';
  const power = summary.has_power_data ? 'with power data' : 'without power data';
  return ` Rider data: ${summary.activity_count} activities ${power}, ${Math.round(summary.completeness * 100)} % complete (${summary.sections.join(', ') || 'no sections'}).`;
}

function showReview(file, original, { document: doc, report }) {
  const r = report;
  const kept = [];
  if (r.activities_kept || r.activities_removed) {
    kept.push(`${r.activities_kept} activities kept` + (r.activities_removed ? `, ${r.activities_removed} removed` : ''));
  }
  $('scrub-summary').textContent =
    `${file.name}: ${humanBytes(r.input_bytes)} read, ${humanBytes(r.output_bytes)} kept; ` +
    `${r.removed_count} fields removed.` +
    (kept.length ? ` ${kept.join('')}.` : '') +
    ' Athlete and activity ids are dropped, not sent.' +
    riderSummaryText(state.scrubbed && state.scrubbed.summary);

  const removedBody = $('removed').tBodies[0];
  removedBody.replaceChildren();
  for (const g of groupRemoved(original, r.removed)) {
    const tr = document.createElement('tr');
    tr.append(cell(g.pattern || '(the whole document)', 'path'), cell(String(g.count), 'num'), cell([...g.held].join('; ')));
    removedBody.append(tr);
  }
  if (!r.removed.length) {
    const tr = document.createElement('tr');
    tr.append(cell('nothing: the file holds only fields known to be safe'));
    removedBody.append(tr);
  }

  const list = $('removed-list');
  list.replaceChildren();
  const LIMIT = 2000;
  for (const p of r.removed.slice(0, LIMIT)) {
    const li = document.createElement('li');
    li.textContent = p;
    list.append(li);
  }
  if (r.removed.length > LIMIT) {
    const li = document.createElement('li');
    li.textContent = `… and ${r.removed.length - LIMIT} more`;
    list.append(li);
  }

  const keptBody = $('kept').tBodies[0];
  keptBody.replaceChildren();
  for (const k of keptFields(JSON.parse(doc))) {
    const tr = document.createElement('tr');
    tr.append(cell(k.pattern, 'path'), cell(String(k.count), 'num'));
    keptBody.append(tr);
  }
  const PREVIEW = 20000;
  const pretty = JSON.stringify(JSON.parse(doc), null, 2);
  $('preview').textContent = pretty.length > PREVIEW ? pretty.slice(0, PREVIEW) + '\n…' : pretty;
  $('review').hidden = false;
}

/* ---------- import a Strava bulk export (ZIP) ---------- */

// The importer (ZIP, inflate, CSV, GPX/TCX/FIT parsers) is its own wasm module, www/pkg-import,
// fetched only when a ZIP is chosen, so the page's first load stays small; it runs in a worker
// (import-worker.js), one per import. It reads the archive entry by entry and returns the same
// scrubbed document shape as the JSON path; nothing of the archive leaves the device but that
// document. The document comes back as bytes (a large export's is longer than the longest
// string a JS engine makes) with its SHA-256, and is sent as a Blob: it is never turned into
// text, parsed or copied into the page's own wasm.

function isZip(file) {
  return /\.zip$/i.test(file.name) || file.type === 'application/zip' || file.type === 'application/x-zip-compressed';
}

/** importStravaExport of `file` in a worker that ends with the import (and frees its memory). */
function importInWorker(file, onProgress) {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./import-worker.js', import.meta.url), { type: 'module' });
    const end = (settle, value) => {
      worker.terminate();
      settle(value);
    };
    worker.onmessage = ({ data }) => {
      if (data.progress) onProgress(data.progress);
      else if (data.result) end(resolve, data.result);
      else end(reject, Object.assign(new Error(data.error.message), { name: data.error.name }));
    };
    worker.onerror = (e) => {
      e.preventDefault();
      end(reject, new Error(`the importer could not run (${e.message || 'its module did not load'})`));
    };
    worker.onmessageerror = () => end(reject, new Error('the importer\'s answer could not be read'));
    worker.postMessage(file);
  });
}

async function loadExportZip(file) {
  state.scrubbed = null;
  state.refused = null; // a refusal was for the previous file
  $('review').hidden = true;
  $('send').hidden = true;
  setText('upload-status', '');
  $('progress').value = 0;
  const bar = $('import-progress');
  bar.value = 0;
  bar.hidden = false;
  setText('load-status', `Reading ${file.name} (${humanBytes(file.size)}) on this device…`);
  let result;
  try {
    result = await importInWorker(file, (p) => {
      bar.value = p.bytes_total ? Math.round((p.bytes_done / p.bytes_total) * 100) : 0;
    });
  } catch (e) {
    bar.hidden = true;
    setText('load-status', `${file.name} could not be imported: ${e.message}`, 'error');
    return;
  }
  bar.value = 100;
  const doc = result.document;
  state.scrubbed = {
    body: new Blob([doc], { type: 'application/json' }),
    size: doc.length,
    sha256: result.sha256,
    summary: null, // the import report says what the document holds
    report: result.report,
  };
  showImportReview(file, result);
  const r = result.report;
  setText(
    'load-status',
    `${file.name}: ${r.activities} activities read (${r.activities_with_streams} with their recorded samples), ` +
      `${humanBytes(doc.length)} left to upload.`,
    'ok',
  );
  $('send').hidden = false;
  updatePrecheck();
}

function showImportReview(file, { document: doc, report: r }) {
  $('json-review').hidden = true;
  $('import-review').hidden = false;
  $('scrub-summary').textContent =
    `${file.name}: ${humanBytes(r.archive_bytes)} archive, ${r.samples.toLocaleString('en')} samples kept in ` +
    `${r.activities} activities. Positions, names, titles, descriptions, devices, photos and everything ` +
    'else not needed for training are removed here, before anything is sent.';
  const list = (id, items) => {
    const ul = $(id);
    ul.replaceChildren();
    for (const text of items) {
      const li = document.createElement('li');
      li.textContent = text;
      ul.append(li);
    }
  };
  list('import-removed', r.removed.length ? r.removed.map((x) => x.text) : ['nothing']);
  $('import-skipped-block').hidden = !r.skipped.length;
  list('import-skipped', r.skipped.map((s) => `${s.count} × ${s.reason}`));
  list('import-paths', r.removed.flatMap((x) => x.paths.map((p) => `${x.kind}: ${p}`)));
  $('import-preview').textContent = previewText(doc);
  $('review').hidden = false;
}

/**
 * The start of a document (UTF-8 bytes) to show: laid out when it is small; when it is large
 * (it may be longer than a JS string can be), only its first bytes, as they are.
 */
function previewText(doc) {
  const PREVIEW = 20000;
  if (doc.length <= 1 << 20) {
    const pretty = JSON.stringify(JSON.parse(new TextDecoder().decode(doc)), null, 2);
    return pretty.length > PREVIEW ? pretty.slice(0, PREVIEW) + '\n…' : pretty;
  }
  return new TextDecoder().decode(doc.subarray(0, PREVIEW)) + '\n…';
}

/* ---------- precheck ---------- */

/** Asks the server for a fresh signed allowance (what this rider may still upload). */
async function loadAllowance() {
  try {
    state.allowance = (await api('/api/allowance')).allowance;
    state.allowanceError = null;
  } catch (e) {
    // Not fatal to the page: the precheck says it could not decide, the server still does.
    state.allowance = null;
    state.allowanceError = e.message;
  }
}

/**
 * The page's precheck: the core's decision (wasm `precheckAllowance`) on the allowance the
 * server signed, the same decision the edge makes on it. The texts below only word the
 * core's verdict for the rider; the numbers are the verdict's.
 */
function updatePrecheck() {
  const button = $('upload');
  const s = state.scrubbed;
  button.disabled = true;
  if (!s) return;
  if (!state.token || !state.usage) {
    setText('precheck', 'Sign in to upload.', 'warn');
    return;
  }
  if (!state.allowance) {
    setText('precheck', `Precheck failed: could not get your allowance from the server (${state.allowanceError ?? 'no answer'}).`, 'error');
    return;
  }
  let v;
  try {
    v = wasm.precheckAllowance(s.size, state.allowance, state.usage.limits, Date.now());
  } catch (e) {
    setText('precheck', `Precheck failed: ${e.message}`, 'error');
    return;
  }
  if (v.reason === 'expired') {
    // Allowances live a few minutes: fetch a fresh one and decide again, once (a fresh one
    // that is expired here means this device's clock is off).
    if (state.allowanceRefetched) {
      setText('precheck', 'Precheck failed: the server\'s allowance is already expired here; check this device\'s clock.', 'error');
      return;
    }
    state.allowanceRefetched = true;
    setText('precheck', 'Checking your quota…');
    loadAllowance().then(updatePrecheck);
    return;
  }
  state.allowanceRefetched = false;
  const size = humanBytes(s.size);
  if (state.refused) {
    refuse(state.refused);
    return;
  }
  const limit = humanBytes(state.usage.limits.max_user_bytes);
  if (v.admitted) {
    setText('precheck', `Precheck: ${size} fits within your quota (${humanBytes(v.bytes_left)} of ${limit} left after it).`, 'ok');
  } else if (v.reason === 'file_too_large') {
    setText('precheck', `Precheck: ${v.message}`, 'error');
    return;
  } else if (v.reason === 'no_puts_left') {
    // The month's S3 request budget is spent: the server keeps the upload locally and sends
    // it to S3 once the budget resets; nothing is lost, so Upload stays enabled.
    setText('precheck', `Precheck: ${size} will be kept on the server and sent to S3 when this month's request budget resets.`, 'warn');
  } else if (state.usage.auto_cleanup) {
    // The server may free room by FIFO cleanup of older files; it decides. Upload stays
    // enabled, and the rider's own files are offered too, in the rider's words.
    const text =
      `${size} does not fit in your quota as it is: ${humanBytes(v.left)} of ${limit} is left. ` +
      'The server may make room by removing your oldest files when you upload, or you can delete some of your files below first.';
    setText('precheck', `Precheck: ${text}`, 'warn');
    offerRoom(text);
    button.disabled = state.busy;
    return;
  } else {
    // Deleting the rider's own files is what makes room: offer them.
    refuse(
      `${size} does not fit in your quota: only ${humanBytes(v.left)} of ${limit} is left. ` +
        'Nothing was uploaded. Delete some of your files below to make room, then upload.',
    );
    return;
  }
  closeRoom();
  button.disabled = state.busy;
}

/** Upload stays disabled; the rider's files are offered for deletion. */
function refuse(text) {
  $('upload').disabled = true;
  setText('precheck', `Precheck: ${text}`, 'error');
  offerRoom(text);
}

/* ---------- upload ---------- */

function failureText(xhr) {
  const text = xhr.responseText || '';
  try {
    const body = JSON.parse(text);
    if (body && body.error) return body.error;
  } catch {
    /* not JSON: S3 answers XML */
  }
  const m = /<Message>([^<]*)<\/Message>/.exec(text);
  const code = /<Code>([^<]*)<\/Code>/.exec(text);
  if (m || code) return `${code ? code[1] + ': ' : ''}${m ? m[1] : ''}`;
  return `the upload answered ${xhr.status} ${xhr.statusText}`;
}

// XMLHttpRequest, not fetch: only XHR reports upload progress. Rider data goes to the
// server's rider route (never to an upload URL): the server scrubs it again with the
// pseudonym key, adds the keyed user_hash and names it.
function postRider(body, sha256, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', '/api/rider');
    xhr.setRequestHeader('Authorization', `Bearer ${state.token}`);
    xhr.setRequestHeader('Content-Type', 'application/json');
    xhr.setRequestHeader('x-kompass-sha256', sha256);
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) onProgress(e.loaded, e.total);
    };
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        resolve(JSON.parse(xhr.responseText));
      } else {
        if (xhr.status === 401) signedOut(failureText(xhr));
        const err = new Error(failureText(xhr));
        err.status = xhr.status;
        reject(err);
      }
    };
    xhr.onerror = () => reject(new Error('the upload could not reach the server'));
    xhr.send(body);
  });
}

async function upload() {
  const s = state.scrubbed;
  if (!s || state.busy) return;
  state.busy = true;
  $('upload').disabled = true;
  $('progress').value = 0;
  try {
    setText('upload-status', `Uploading ${humanBytes(s.size)} to the server…`);
    const saved = await postRider(s.body, s.sha256, (loaded, total) => {
      $('progress').value = Math.round((loaded / total) * 100);
    });
    $('progress').value = 100;
    const cleaned = saved.cleaned && saved.cleaned.length ? ` ${saved.cleaned.length} older file(s) were cleaned up to make room.` : '';
    const stamp = wasm.parseRiderName(saved.name);
    const when = stamp ? `, saved ${stamp.saved_at}` : '';
    setText(
      'upload-status',
      `Uploaded ${saved.key} (${humanBytes(saved.bytes)}${when}) to ${saved.backend === 's3' ? 'S3' : 'local storage'}; the server scrubbed it again with its key.${cleaned}`,
      'ok',
    );
    await refreshStorage();
  } catch (e) {
    setText('upload-status', `Upload failed: ${e.message}`, 'error');
    if (e.status === 507) {
      // The server's admission refused it (its usage is newer than this page's).
      state.refused = 'The server refused the upload: it does not fit in your storage. Nothing was uploaded. ' +
        'Delete some of your files below to make room, then upload.';
      await refreshStorage();
    }
  } finally {
    state.busy = false;
    updatePrecheck();
  }
}

/* ---------- storage: usage and files ---------- */

const LEVEL_TEXT = { normal: 'normal', cleanup: 'cleanup due', warning: 'warning (80 %)', critical: 'critical (90 %)' };

function usageRow(label, bytes, limit, pct, level, marks) {
  const row = document.createElement('div');
  row.className = 'usage-row';
  const name = document.createElement('span');
  name.className = 'usage-label';
  name.textContent = label;
  const bar = document.createElement('div');
  bar.className = 'bar';
  bar.setAttribute('role', 'img');
  const summary = `${humanBytes(bytes)} of ${humanBytes(limit)}, ${percent(pct)}, ${LEVEL_TEXT[level] || level}`;
  bar.setAttribute('aria-label', `${label}: ${summary}`);
  const fill = document.createElement('div');
  fill.className = `fill level-${level}`;
  fill.style.width = `${Math.min(100, pct)}%`;
  if (bytes > 0) fill.style.minWidth = '2px';
  bar.append(fill);
  for (const m of marks) {
    const mark = document.createElement('div');
    mark.className = 'mark';
    mark.style.left = `${m}%`;
    bar.append(mark);
  }
  const text = document.createElement('span');
  text.className = 'usage-text';
  text.textContent = summary;
  row.append(name, bar, text);
  row.dataset.level = level;
  return row;
}

function showUsage(u) {
  state.usage = u;
  const box = $('usage');
  box.replaceChildren();
  const marks = [u.limits.cleanup_threshold_percent, 80, 90];
  const heading = document.createElement('p');
  heading.textContent =
    `Quota ${humanBytes(u.limits.max_user_bytes)} per user, files up to ${humanBytes(u.limits.max_file_bytes)}; ` +
    `stored in ${u.backend === 's3' ? 'S3' : 'local storage'}. Marks: cleanup at ${u.limits.cleanup_threshold_percent} %, warning at 80 %, critical at 90 %.`;
  box.append(heading);
  for (const t of u.types) {
    const row = usageRow(`${t.type} (${t.files} file${t.files === 1 ? '' : 's'})`, t.bytes, u.limits.max_user_bytes, t.percent, t.level, marks);
    row.dataset.type = t.type;
    box.append(row);
  }
  const total = usageRow('total', u.quota.used, u.quota.limit, u.quota.percent, u.quota.level, marks);
  total.dataset.type = 'total';
  box.append(total);
  if (u.note) {
    const note = document.createElement('p');
    note.className = 'warn';
    note.textContent = u.note;
    box.append(note);
  }
}

async function refreshFiles() {
  const files = await api('/api/files');
  const body = $('files').tBodies[0];
  body.replaceChildren();
  if (!files.length) {
    const tr = document.createElement('tr');
    const td = cell('No files stored yet.');
    td.colSpan = 5;
    tr.append(td);
    body.append(tr);
  }
  for (const f of files) {
    const tr = document.createElement('tr');
    const when = cell(new Date(f.last_modified).toLocaleString());
    when.title = f.last_modified;
    tr.append(cell(f.name, 'path'), cell(f.type), cell(humanBytes(f.size), 'num'), when, cell(f.backend === 's3' ? 'S3' : 'local'));
    body.append(tr);
  }
}

async function refreshStorage() {
  try {
    showUsage(await api('/api/usage'));
    await loadAllowance();
    await refreshFiles();
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 401)) {
      setText('signin-status', `Could not load your storage: ${e.message}`, 'error');
    }
  }
}

/* ---------- wiring ---------- */

function wire() {
  $('token-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const t = $('token').value.trim();
    if (t) signIn(t);
  });
  $('signout').addEventListener('click', () => signedOut());
  $('file').addEventListener('change', (e) => loadFile(e.target.files[0]));
  $('upload').addEventListener('click', upload);
  $('refresh').addEventListener('click', refreshStorage);
  // A file deleted in "Your data" or from the refusal's list: fresh usage, a fresh precheck.
  document.addEventListener('kompass:files-changed', async () => {
    state.refused = null;
    await refreshStorage();
    updatePrecheck();
  });

  const zone = $('dropzone');
  // A file dropped anywhere else must not make the browser navigate away to it.
  for (const type of ['dragover', 'drop']) window.addEventListener(type, (e) => e.preventDefault());
  zone.addEventListener('dragenter', () => zone.classList.add('over'));
  zone.addEventListener('dragover', (e) => {
    e.preventDefault();
    e.dataTransfer.dropEffect = 'copy';
    zone.classList.add('over');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    zone.classList.remove('over');
    const file = e.dataTransfer.files[0];
    if (file) loadFile(file);
  });
}

async function main() {
  wire();
  try {
    wasm = await import('./pkg/kompass_wasm.js');
    await wasm.default();
    state.wasmReady = true;
  } catch (e) {
    setText('load-status', `The scrubber (wasm) could not load: ${e.message}. Run scripts/build-wasm.sh and reload.`, 'error');
    $('file').disabled = true;
  }
  const token = tokenFromFragment() || sessionStorage.getItem(TOKEN_KEY);
  if (token) await signIn(token);
  else signedOut();
  document.body.dataset.ready = 'true';
}

main();
