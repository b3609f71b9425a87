// Drives the web page in Debian's Chromium (headless) as a user would, for tests/it/web.rs: enters the
// key, picks a CSV, drops a zipped shapefile, picks a broken GeoJSON, waits for all three to end, opens
// each table on the map and clicks a feature, then opens the raster the test imported before (PNG tiles). Asserts what only the browser can see (features rendered by
// MapLibre, the upload bar, where the key went) and prints what the page showed as one JSON line, which the
// Rust test compares with the API. Environment: GEOIMPORT_URL, GEOIMPORT_API_KEY, PLAYWRIGHT (the path of
// playwright-core's index.mjs, in web/node_modules), FILES (three paths, one a line), SCREENSHOTS (a folder),
// CHROMIUM (default /usr/bin/chromium).

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';

const { chromium } = await import(process.env.PLAYWRIGHT);
const base = process.env.GEOIMPORT_URL;
const [csv, zip, broken] = process.env.FILES.split('\n');
const shots = process.env.SCREENSHOTS;
const LAYERS = ['table-fill', 'table-line', 'table-circle'];
const tileStatuses = new Set(); // the HTTP statuses of tile answers, to tell why a map stayed empty

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium' });
try {
  const seen = await run(await browser.newPage({ viewport: { width: 1280, height: 800 } }));
  console.log(JSON.stringify(seen));
} finally {
  await browser.close();
}

async function run(page) {
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  // A tile the browser cannot decode is only a console error: counted, and must not happen.
  const undecodable = [];
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    console.error(`console: ${m.text()}`);
    if (m.text().includes('could not be decoded')) undecodable.push(m.text());
  });
  const requests = { tiles: 0, tilesWithoutKey: 0, urlsWithKey: 0 };
  page.on('request', async (r) => {
    if (r.url().includes('api_key') || r.url().includes(process.env.GEOIMPORT_API_KEY)) requests.urlsWithKey++;
    if (r.url().endsWith('.mvt')) {
      requests.tiles++;
      if (!(await r.allHeaders()).authorization?.startsWith('Basic ')) requests.tilesWithoutKey++;
    }
  });

  page.on('response', (r) => r.url().endsWith('.mvt') && tileStatuses.add(r.status()));
  // A raster's PNG tiles, by answer.
  const pngs = { ok: 0, other: 0, withoutKey: 0 };
  page.on('response', async (r) => {
    if (!r.url().endsWith('.png')) return;
    r.status() === 200 ? pngs.ok++ : pngs.other++;
    if (!(await r.request().allHeaders()).authorization?.startsWith('Basic ')) pngs.withoutKey++;
  });

  await page.goto(`${base}/`);
  // A wrong key is told at once and not kept.
  await page.fill('#key', 'not-a-key');
  await page.click('#key-form button[type=submit]');
  await page.waitForFunction(() => document.getElementById('key-state').textContent.includes('not accepted'));
  assert.equal(await page.evaluate(() => sessionStorage.getItem('geoimport.key')), null);
  await page.fill('#key', process.env.GEOIMPORT_API_KEY);
  await page.click('#key-form button[type=submit]');
  await page.waitForFunction(() => document.getElementById('key-state').textContent.includes('kept'));

  // Pick the CSV; the upload bar ends full.
  await page.setInputFiles('#file', csv);
  await waitForImports(page, 1);
  await page.waitForFunction(() => document.getElementById('upload-text').textContent === 'sent');
  const bar = await page.$eval('#upload-bar', (b) => [b.value, b.max]);
  assert.ok(bar[1] > 0 && bar[0] === bar[1], `upload bar ${bar}`);
  // Drop the zipped shapefile, as a drag from the desktop would.
  await drop(page, zip);
  await waitForImports(page, 2);
  await page.setInputFiles('#file', broken);
  await waitForImports(page, 3);

  await page.waitForFunction(
    () => {
      const n = (s) => document.querySelectorAll(`#imports li[data-state=${s}]`).length;
      return n('complete') === 2 && n('failure') === 1;
    },
    null,
    { timeout: 120_000 },
  );
  const imports = await page.$$eval('#imports li', (lis) =>
    lis.map((li) => {
      const text = (cls) => li.querySelector(`.${cls}`).textContent;
      return { id: li.dataset.id, state: li.dataset.state, name: text('name'), rows: text('rows'),
        title: text('title'), explanation: text('explanation'), cancel_hidden: li.querySelector('.cancel').hidden };
    }),
  );
  assert.ok(imports.every((i) => i.cancel_hidden), 'an ended import offers no cancel');
  const failed = page.locator('#imports li[data-state=failure]');
  await failed.scrollIntoViewIfNeeded();
  await failed.screenshot({ path: join(shots, 'web-failure.png') });

  const tables = {};
  // The table list is refreshed when an import completes.
  await page.waitForFunction(() => document.querySelectorAll('button.table').length === 3);
  tables.prism_tour = await openTable(page, 'prism_tour');
  tables.prism_tour.popup = await clickFeature(page, tables.prism_tour.at);
  await page.locator('#tables-section').screenshot({ path: join(shots, 'web-points.png') });
  tables.squares = await openTable(page, 'squares');
  await page.screenshot({ path: join(shots, 'web-page.png'), fullPage: true });
  // The raster imported beforehand: drawn from its PNG tiles.
  await page.click('button.table[data-name=dem]');
  await page.waitForFunction(
    () => window.mapTable === 'dem' && map.getSource('table')?.type === 'raster' && map.isSourceLoaded('table') &&
      map.areTilesLoaded(),
    null,
    { timeout: 30_000 },
  );
  await page.waitForFunction(() => document.querySelector('#first-rows caption')?.textContent.startsWith('dem:'));
  await page.locator('#tables-section').screenshot({ path: join(shots, 'web-raster.png') });
  tables.dem = { pngs_ok: pngs.ok, pngs_other: pngs.other, pngs_without_key: pngs.withoutKey };

  assert.deepEqual(errors, [], 'the page threw');
  assert.deepEqual(undecodable, [], 'a tile could not be decoded');
  const cookies = await page.evaluate(() => document.cookie);
  return { imports, tables, cookies, tile_requests: requests.tiles, tiles_without_key: requests.tilesWithoutKey,
    urls_with_key: requests.urlsWithKey };
}

/** Waits until the list shows `n` imports. */
async function waitForImports(page, n) {
  await page.waitForFunction((n) => document.querySelectorAll('#imports li').length === n, n, { timeout: 30_000 });
}

/** Dispatches a drop of the file at `path` on the drop zone, with the bytes in a DataTransfer. */
async function drop(page, path) {
  const bytes = readFileSync(path).toString('base64');
  await page.evaluate(
    ([name, b64]) => {
      const data = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const transfer = new DataTransfer();
      transfer.items.add(new File([data], name, { type: 'application/zip' }));
      document.getElementById('drop').dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true, cancelable: true }));
    },
    [basename(path), bytes],
  );
}

/** Opens table `name` and waits for its tiles to be drawn; what MapLibre rendered and the rows shown. */
async function openTable(page, name) {
  await page.click(`button.table[data-name=${name}]`);
  await page
    .waitForFunction(
      ([name, layers]) =>
        window.mapTable === name && map.getSource('table') && map.isSourceLoaded('table') && map.areTilesLoaded() &&
        map.queryRenderedFeatures({ layers }).length > 0,
      [name, LAYERS],
      { timeout: 30_000 },
    )
    .catch((e) => {
      throw new Error(`${name}: no feature rendered in 30 s (tile answers: ${[...tileStatuses]}): ${e.message}`);
    });
  await page.waitForFunction((name) => document.querySelector('#first-rows caption')?.textContent.startsWith(`${name}:`), name);
  return page.evaluate((layers) => {
    const byId = new Map();
    for (const f of map.queryRenderedFeatures({ layers })) byId.set(f.id, f);
    const features = [...byId.values()];
    const g = features[0].geometry;
    // A point to click: the point itself, or the middle of a polygon's first ring.
    const ring = g.type === 'Point' ? [g.coordinates] : g.coordinates[0].slice(0, -1);
    const at = ring.reduce(([x, y], [a, b]) => [x + a / ring.length, y + b / ring.length], [0, 0]);
    return {
      rendered: features.map((f) => f.properties),
      types: features.map((f) => f.geometry.type),
      first_rows: document.querySelectorAll('#first-rows tbody tr').length,
      at,
    };
  }, LAYERS);
}

/** Clicks the map at longitude/latitude `at`; the popup's text. */
async function clickFeature(page, at) {
  const [x, y] = await page.evaluate((at) => {
    const p = map.project(at);
    return [p.x, p.y];
  }, at);
  await page.locator('#map canvas').click({ position: { x, y } });
  const popup = page.locator('.maplibregl-popup-content');
  await popup.waitFor();
  return popup.textContent();
}
