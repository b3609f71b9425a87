// Builds the page geoimport serves at / into dist/: index.html and assets/ with content-hashed names, so
// the server can let browsers keep an asset for good (its name changes with its bytes) and ask for
// index.html every time. Run with `npm run build` after `npm ci`; scripts/lib/web.sh does both.
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import * as esbuild from 'esbuild';

// Built beside dist, then only changed files are copied in: cargo rebuilds the server when a file of
// dist changes (build.rs), so an unchanged page must leave dist untouched.
const out = 'dist.new';
rmSync(out, { recursive: true, force: true });
mkdirSync(`${out}/assets`, { recursive: true });

const hashOf = (bytes) => createHash('sha256').update(bytes).digest('hex').slice(0, 10);

// MapLibre starts its worker from a file of its own, which it finds beside its module
// (import.meta.url); once bundled, that is ours, so the worker is copied under a hashed name and
// named to MapLibre with setWorkerUrl (WORKER_URL below).
const workerSource = 'node_modules/maplibre-gl/dist/maplibre-gl-worker.mjs';
const workerName = `maplibre-gl-worker-${hashOf(readFileSync(workerSource))}.mjs`;
copyFileSync(workerSource, `${out}/assets/${workerName}`);

const result = await esbuild.build({
  entryPoints: ['src/main.js'],
  bundle: true,
  format: 'esm',
  minify: true,
  target: 'es2022',
  outdir: `${out}/assets`,
  entryNames: '[name]-[hash]',
  metafile: true,
  define: { WORKER_URL: JSON.stringify(`/assets/${workerName}`) },
  legalComments: 'linked',
  logLevel: 'warning',
});

const outputs = Object.keys(result.metafile.outputs).map((p) => basename(p));
const js = outputs.find((n) => n.startsWith('main-') && n.endsWith('.js'));
const css = outputs.find((n) => n.startsWith('main-') && n.endsWith('.css'));
if (!js || !css) throw new Error(`esbuild made no main js and css: ${outputs.join(', ')}`);
const html = readFileSync('index.html', 'utf8').replace('%MAIN_JS%', `/assets/${js}`).replace('%MAIN_CSS%', `/assets/${css}`);
writeFileSync(`${out}/index.html`, html);
sync(out, 'dist');
rmSync(out, { recursive: true, force: true });
console.log(`web/dist: index.html, ${[...outputs, workerName].join(', ')}`);

/** Makes `to` hold exactly the files of `from`, writing only those whose bytes differ. */
function sync(from, to) {
  const files = (dir) =>
    existsSync(dir) ? readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile())
      .map((e) => relative(dir, join(e.parentPath ?? e.path, e.name))) : [];
  const wanted = new Set(files(from));
  for (const f of files(to)) if (!wanted.has(f)) rmSync(join(to, f));
  for (const f of wanted) {
    const bytes = readFileSync(join(from, f));
    const target = join(to, f);
    if (existsSync(target) && readFileSync(target).equals(bytes)) continue;
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, bytes);
  }
}
