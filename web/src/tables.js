// The user's tables: a list to pick from; the picked table on the map and its first rows beside it.

import { api } from './api.js';
import { showTable } from './map.js';

const $ = (id) => document.getElementById(id);

/** Lists the tables again (after a key is set, and whenever an import completes). */
export async function refreshTables() {
  let listed;
  try {
    listed = await api('GET', '/api/v1/tables');
  } catch {
    return;
  }
  const list = $('tables');
  list.replaceChildren(
    ...listed.tables.map((t) => {
      const li = document.createElement('li');
      const button = document.createElement('button');
      button.type = 'button';
      button.className = 'table';
      button.dataset.name = t.name;
      button.textContent = t.name;
      button.addEventListener('click', () => openTable(t.name));
      const about = document.createElement('span');
      about.textContent = ` ${t.rows} rows${t.geometry_types.length ? `, ${t.geometry_types.join(', ').toLowerCase()}` : ''}`;
      li.append(button, about);
      return li;
    }),
  );
}

/** Shows table `name` on the map and its first rows in the table beside it. */
export async function openTable(name) {
  const detail = await api('GET', `/api/v1/tables/${encodeURIComponent(name)}`);
  document.querySelectorAll('button.table').forEach((b) => b.classList.toggle('open', b.dataset.name === name));
  showTable(detail);
  renderRows(detail);
}

/** A cell's text: geometries by their type, objects as JSON. */
function cellText(value) {
  if (value == null) return '';
  if (typeof value === 'object' && typeof value.type === 'string' && 'coordinates' in value) return value.type;
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

function renderRows(detail) {
  const columns = detail.columns.map((c) => c.name).filter((c) => c !== 'the_geom_webmercator');
  const table = document.createElement('table');
  table.id = 'first-rows';
  const caption = table.createCaption();
  caption.textContent = `${detail.name}: first ${detail.first_rows.length} of ${detail.rows} rows`;
  const head = table.createTHead().insertRow();
  for (const c of columns) head.append(Object.assign(document.createElement('th'), { textContent: c }));
  const body = table.createTBody();
  for (const row of detail.first_rows) {
    const tr = body.insertRow();
    for (const c of columns) tr.insertCell().textContent = cellText(row[c]);
  }
  $('rows').replaceChildren(table);
}
