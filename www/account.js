// "Your data" (issue 12): download and delete stored files, rider history, an export of
// everything, and "delete all my data" with a confirmation. A module of its own: it reads the
// token app.js keeps for this tab (sessionStorage) and calls the account routes of
// `kompass serve`; it holds no policy (the server decides what a token may reach).

const TOKEN_KEY = 'kompass-token';
const $ = (id) => document.getElementById(id);
let user = null;

function humanBytes(n) {
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

function say(text, kind) {
  const el = $('account-status');
  el.textContent = text;
  el.className = kind || '';
}

async function call(path, options = {}) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (!token) throw new Error('sign in first');
  const headers = { Authorization: `Bearer ${token}` };
  if (options.json !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(path, {
    method: options.method || 'GET',
    headers,
    body: options.json !== undefined ? JSON.stringify(options.json) : undefined,
    cache: 'no-store',
  });
  if (!res.ok) {
    const body = await res.json().catch(() => null);
    const err = new Error(body && body.error ? body.error : `the server answered ${res.status}`);
    err.status = res.status;
    err.body = body;
    throw err;
  }
  return res;
}

/** Saves a response body as a file, named `name`. */
async function saveAs(res, name) {
  const url = URL.createObjectURL(await res.blob());
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

function button(text, onClick, label) {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = text;
  b.setAttribute('aria-label', label);
  b.addEventListener('click', onClick);
  return b;
}

/**
 * Fills `table` with the user's files, each with a Delete button (and Download unless
 * `deleteOnly`). A delete reloads this section and tells app.js (`kompass:files-changed`),
 * which asks the server for the usage again and prechecks anew.
 */
async function renderFiles(table = $('account-files'), { deleteOnly = false } = {}) {
  const body = table.tBodies[0];
  const files = await (await call('/api/files')).json();
  body.replaceChildren();
  if (!files.length) {
    const tr = document.createElement('tr');
    const td = document.createElement('td');
    td.colSpan = 4;
    td.textContent = 'Nothing stored.';
    tr.append(td);
    body.append(tr);
  }
  for (const f of files) {
    const tr = document.createElement('tr');
    tr.dataset.name = f.name;
    for (const text of [f.name, f.type, humanBytes(f.size)]) {
      const td = document.createElement('td');
      td.textContent = text;
      tr.append(td);
    }
    const actions = document.createElement('td');
    const path = `/api/files/${encodeURIComponent(f.type)}/${encodeURIComponent(f.name)}`;
    if (!deleteOnly) {
      actions.append(button('Download', async () => {
        try {
          await saveAs(await call(path), f.name);
        } catch (e) {
          say(`Could not download ${f.name}: ${e.message}`, 'error');
        }
      }, `Download ${f.name}`));
    }
    const where = deleteOnly ? 'to make room' : '';
    actions.append(button('Delete', async () => {
      if (!window.confirm(`Delete ${f.name}? This cannot be undone.`)) return;
      try {
        await call(path, { method: 'DELETE' });
        document.dispatchEvent(new CustomEvent('kompass:files-changed'));
        // The status is said once the lists show the file gone, so it never runs ahead of them.
        await refreshAccount();
        say(`Deleted ${f.name}.`, 'ok');
      } catch (e) {
        say(`Could not delete ${f.name}: ${e.message}`, 'error');
      }
    }, `Delete ${f.name}${where ? ` ${where}` : ''}`));
    tr.append(actions);
    body.append(tr);
  }
}

/**
 * The upload does not fit (the precheck or the server said so): says `text` and lists the
 * rider's own files to delete right there. app.js decides when; this only shows.
 */
export async function offerRoom(text) {
  $('room-text').textContent = text;
  $('room').hidden = false;
  try {
    await renderFiles($('room-files'), { deleteOnly: true });
  } catch (e) {
    $('room-text').textContent = `${text} (Your files could not be listed: ${e.message}.)`;
  }
}

/** The upload fits again: the offer goes away. */
export function closeRoom() {
  $('room').hidden = true;
  $('room-files').tBodies[0].replaceChildren();
}

async function renderHistory() {
  const list = $('rider-history');
  list.replaceChildren();
  const entries = await (await call('/api/rider/history')).json();
  if (!entries.length) {
    const li = document.createElement('li');
    li.textContent = 'No rider data saved.';
    list.append(li);
  }
  for (const e of entries) {
    const li = document.createElement('li');
    li.dataset.name = e.name;
    li.textContent = `${e.saved_at}: ${e.activity_count} activit${e.activity_count === 1 ? 'y' : 'ies'}, ` +
      `${e.has_power_data ? 'power data' : 'no power data'}, ${humanBytes(e.size)}`;
    list.append(li);
  }
}

/** Reloads the section from the server. */
export async function refreshAccount() {
  try {
    user = (await (await call('/api/me')).json()).user;
    $('erase-user').textContent = user;
    $('account').hidden = false;
    await renderFiles();
    await renderHistory();
  } catch (e) {
    if (e.status !== 401) say(`Could not load your data: ${e.message}`, 'error');
  }
}

async function exportAll() {
  try {
    await saveAs(await call('/api/export'), 'kompass-export.zip');
    say('Export downloaded (every file and a manifest.json with their SHA-256).', 'ok');
  } catch (e) {
    say(`Could not export: ${e.message}`, 'error');
  }
}

async function eraseAll(ev) {
  ev.preventDefault();
  const typed = $('erase-confirm').value.trim();
  if (typed !== user) {
    say('Type your user id exactly to confirm.', 'error');
    return;
  }
  try {
    const report = await (await call('/api/me', { method: 'DELETE', json: { confirm: typed } })).json();
    $('erase-confirm').value = '';
    await refreshAccount();
    say(`Deleted all your data: ${report.removed.length} file(s), ${humanBytes(report.bytes)}.`, 'ok');
  } catch (e) {
    const left = e.body && e.body.report ? ` ${e.body.report.remaining.length} file(s) are left; try again later.` : '';
    say(`Not everything was deleted: ${e.message}.${left}`, 'error');
  }
}

function wire() {
  $('account-refresh').addEventListener('click', refreshAccount);
  $('account-export').addEventListener('click', exportAll);
  $('erase-form').addEventListener('submit', eraseAll);
  $('erase-confirm').addEventListener('input', () => {
    $('erase-submit').disabled = $('erase-confirm').value.trim() !== user;
  });
  // The upload page's own refresh (after an upload, or by hand) refreshes this section too.
  $('refresh')?.addEventListener('click', refreshAccount);
  // app.js marks the page ready once it has signed in (or not).
  const start = () => {
    if (document.body.dataset.ready === 'true') {
      observer.disconnect();
      refreshAccount();
    }
  };
  const observer = new MutationObserver(start);
  observer.observe(document.body, { attributes: true, attributeFilter: ['data-ready'] });
  start();
}

wire();
