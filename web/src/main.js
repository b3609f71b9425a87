// The page at /: the key, the ways to import, the live list of imports, and the tables on a map.

import './style.css';
import { api, key } from './api.js';
import { setUpImports, track } from './imports.js';
import { setUpMap } from './map.js';
import { setUpSending } from './send.js';
import { refreshTables } from './tables.js';

const $ = (id) => document.getElementById(id);

function showKeyState() {
  $('key-state').textContent = key.get() ? 'Key kept for this tab.' : 'Enter your API key to start.';
  document.body.classList.toggle('keyless', !key.get());
}

$('key-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  key.set($('key').value.trim());
  $('key').value = '';
  showKeyState();
  // Asked at once, so a mistyped key is told now rather than by an empty page.
  try {
    await api('GET', '/api/v1/tables');
  } catch (error) {
    key.forget();
    showKeyState();
    $('key-state').textContent = error.message;
    return;
  }
  refreshTables();
});
$('forget-key').addEventListener('click', () => {
  key.forget();
  showKeyState();
});

showKeyState();
setUpMap();
setUpSending(track);
setUpImports(() => refreshTables());
refreshTables();
