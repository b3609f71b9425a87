// The user's imports, polled every second. GET /api/v1/imports lists only unfinished ones, so the ids
// this tab started are kept in sessionStorage too: a finished import stays in the list with its outcome.
// Each import's element is made once and updated in place, so a click on Cancel is not lost to a redraw.

import { api } from './api.js';

const TRACKED = 'geoimport.imports';
const FINAL = new Set(['complete', 'failure']);

const tracked = () => JSON.parse(sessionStorage.getItem(TRACKED) || '[]');

/** Remembers an import this tab started (newest first). */
export function track(id) {
  if (!id) return;
  const ids = tracked().filter((x) => x !== id);
  sessionStorage.setItem(TRACKED, JSON.stringify([id, ...ids].slice(0, 200)));
  poll();
}

const statuses = new Map(); // id -> last status; a final one is not asked for again
const elements = new Map(); // id -> its <li>
let onComplete = () => {};
let polling = false;

/** Starts polling; `completed(status)` runs once for each import seen ending complete. */
export function setUpImports(completed) {
  onComplete = completed;
  poll();
  setInterval(poll, 1000);
}

async function poll() {
  if (polling) return;
  polling = true;
  try {
    const { imports: unfinished } = await api('GET', '/api/v1/imports');
    const ids = [...new Set([...tracked(), ...unfinished])];
    await Promise.all(ids.filter((id) => !FINAL.has(statuses.get(id)?.state)).map(refresh));
    render(ids);
  } catch {
    // No key yet, or the server is away: the next tick tries again.
  } finally {
    polling = false;
  }
}

async function refresh(id) {
  const before = statuses.get(id);
  try {
    const status = await api('GET', `/api/v1/imports/${encodeURIComponent(id)}`);
    statuses.set(id, status);
    if (status.state === 'complete' && before?.state !== 'complete') onComplete(status);
  } catch (error) {
    if (error.status === 404) statuses.set(id, { id, state: 'failure', display_name: id, gone: true });
  }
}

function render(ids) {
  const list = document.getElementById('imports');
  ids.forEach((id, i) => {
    const status = statuses.get(id);
    if (!status) return;
    let li = elements.get(id);
    if (!li) {
      li = make(id);
      elements.set(id, li);
    }
    update(li, status);
    if (list.children[i] !== li) list.insertBefore(li, list.children[i] || null);
  });
}

function part(li, tag, cls) {
  const el = document.createElement(tag);
  el.className = cls;
  li.append(el);
  return el;
}

function make(id) {
  const li = document.createElement('li');
  li.className = 'import';
  li.dataset.id = id;
  for (const [tag, cls] of [['strong', 'name'], ['span', 'state'], ['progress', 'bar'], ['span', 'rows']]) {
    part(li, tag, cls);
  }
  const cancel = part(li, 'button', 'cancel');
  cancel.type = 'button';
  cancel.textContent = 'Cancel';
  cancel.addEventListener('click', async () => {
    cancel.disabled = true;
    try {
      statuses.set(id, await api('POST', `/api/v1/imports/${encodeURIComponent(id)}/cancel`));
      render([...elements.keys()]);
    } catch {
      cancel.disabled = false;
    }
  });
  part(li, 'div', 'warnings');
  const error = part(li, 'div', 'error');
  part(error, 'strong', 'title');
  part(error, 'p', 'explanation');
  return li;
}

/** The fraction done from the status's progress: rows against their total, else bytes; null if unknown. */
function fraction(progress) {
  if (!progress) return null;
  if (progress.rows_total) return progress.rows_done / progress.rows_total;
  if (progress.bytes_total) return progress.bytes_done / progress.bytes_total;
  return null;
}

function update(li, s) {
  const q = (cls) => li.querySelector(`.${cls}`);
  li.dataset.state = s.state;
  q('name').textContent = s.table_name || s.display_name || s.id;
  q('state').textContent = s.state;
  const bar = q('bar');
  const done = s.state === 'complete' ? 1 : fraction(s.progress);
  bar.hidden = s.state === 'failure';
  if (done === null) bar.removeAttribute('value');
  else bar.value = Math.min(done, 1);
  const p = s.progress || {};
  q('rows').textContent =
    s.rows_imported != null
      ? `${s.rows_imported} rows`
      : p.rows_done != null
        ? `${p.rows_done}${p.rows_total ? ` / ${p.rows_total}` : ''} rows`
        : p.bytes_done != null
          ? `${p.bytes_done}${p.bytes_total ? ` / ${p.bytes_total}` : ''} bytes`
          : '';
  q('cancel').hidden = FINAL.has(s.state);
  const warnings = s.warnings && Object.entries(s.warnings);
  q('warnings').textContent = warnings?.length
    ? `Warnings: ${warnings.map(([k, v]) => `${k}: ${JSON.stringify(v)}`).join('; ')}`
    : '';
  const error = q('error');
  error.hidden = s.state !== 'failure';
  const text = s.get_error_text;
  q('title').textContent = s.gone ? 'Not found' : text ? `${text.title} (${s.error_code})` : '';
  q('explanation').textContent = s.gone ? 'The server no longer knows this import.' : text ? text.what_about : '';
}
