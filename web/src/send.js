// The ways to start an import: a dropped or picked file (with a bar of the bytes sent), a URL, a database
// connector, and a sync table. Each import started here is handed to `track` so the list keeps it.

import { api, upload } from './api.js';

const $ = (id) => document.getElementById(id);

function showError(error) {
  $('send-error').textContent = error ? error.message : '';
}

async function sendFile(file, track) {
  showError(null);
  $('upload').hidden = false;
  $('upload-name').textContent = file.name;
  const bar = $('upload-bar');
  const text = $('upload-text');
  bar.value = 0;
  try {
    const answer = await upload(file, (sent, total) => {
      bar.max = total || 1;
      bar.value = sent;
      text.textContent = `${Math.round((100 * sent) / (total || 1))}% of ${total} bytes`;
    });
    text.textContent = 'sent';
    track(answer.item_queue_id);
  } catch (error) {
    text.textContent = 'not sent';
    showError(error);
  }
}

/** Sends each file of a drop or a pick, one after the other. */
async function sendFiles(files, track) {
  for (const file of files) await sendFile(file, track);
}

/** Runs `start(form)` on submit, showing its error; resets the form when it worked. */
function onSubmit(id, start) {
  const form = $(id);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    showError(null);
    try {
      await start(new FormData(form));
    } catch (error) {
      showError(error);
    }
  });
}

export function setUpSending(track) {
  const drop = $('drop');
  const input = $('file');
  input.addEventListener('change', () => {
    sendFiles([...input.files], track);
    input.value = '';
  });
  drop.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' || e.key === ' ') input.click();
  });
  drop.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    sendFiles([...e.dataTransfer.files], track);
  });

  onSubmit('url-form', async (data) => {
    const answer = await api('POST', '/api/v1/imports', { url: data.get('url') });
    track(answer.item_queue_id);
  });
  onSubmit('connector-form', async (data) => {
    let connector;
    try {
      connector = JSON.parse(data.get('connector'));
    } catch (error) {
      throw new Error(`The connector is not JSON: ${error.message}`);
    }
    const answer = await api('POST', '/api/v1/imports', { connector });
    track(answer.item_queue_id);
  });
  onSubmit('sync-form', async (data) => {
    const answer = await api('POST', '/api/v1/synchronizations', {
      url: data.get('url'),
      interval: Number(data.get('interval')),
    });
    // A sync's first run is an ordinary import.
    const first = answer.data_import && answer.data_import.item_queue_id;
    if (first) track(first);
  });
}
