// The page at /: the key, the ways to import, the live list of imports, and the tables on a map.

import './style.css';
import { key } from './api.js';
import { setUpImports, track } from './imports.js';
import { setUpMap } from './map.js';
import { setUpSending } from './send.js';
import { refreshTables } from './tables.js';

const $ = (id) => document.getElementById(id);

function showKeyState() {
  $('key-state').textContent = key.get() ? 'Key kept for this tab.' : 'Enter your API key to start.';
  document.body.classList.toggle('keyless', !key.get());
}

$('key-form').addEventListener('submit', (event) => {
  event.preventDefault();
  key.set($('key').value.trim());
  $('key').value = '';
  showKeyState();
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
