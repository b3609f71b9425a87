// The map: MapLibre over a base layer of the world's countries that ships inside the bundle (world-atlas
// 110m, converted from TopoJSON), so the page needs no tile server and no internet. A table is drawn from
// its vector tiles, which need the key: transformRequest adds the Authorization header to requests for
// this server's API (and only those). The map is on `window.map` for the browser test.

import * as maplibregl from 'maplibre-gl';
import 'maplibre-gl/dist/maplibre-gl.css';
import { feature } from 'topojson-client';
import countries from 'world-atlas/countries-110m.json';
import { authorization } from './api.js';

/* global WORKER_URL */
// Set by build.mjs: MapLibre would look for its worker beside its own module, which the bundle replaced.
maplibregl.setWorkerUrl(WORKER_URL);

/** The layers a table is drawn with, by geometry. */
export const TABLE_LAYERS = ['table-fill', 'table-line', 'table-circle'];

/**
 * The countries as GeoJSON. world-atlas rings cross the antimeridian (they are made for d3's spherical
 * clipping); drawn flat they would streak across the map, so each ring's longitudes are unwrapped.
 */
function baseCountries() {
  const collection = feature(countries, countries.objects.countries);
  const unwrap = (ring) => {
    for (let i = 1; i < ring.length; i++) {
      const d = ring[i][0] - ring[i - 1][0];
      if (d > 180) ring[i][0] -= 360;
      else if (d < -180) ring[i][0] += 360;
    }
  };
  for (const f of collection.features) {
    const g = f.geometry;
    if (!g) continue;
    (g.type === 'Polygon' ? [g.coordinates] : g.coordinates).forEach((polygon) => polygon.forEach(unwrap));
  }
  return collection;
}

const style = {
  version: 8,
  sources: { countries: { type: 'geojson', data: baseCountries() } },
  layers: [
    { id: 'sea', type: 'background', paint: { 'background-color': '#dce9f2' } },
    { id: 'countries', type: 'fill', source: 'countries', paint: { 'fill-color': '#f4f1ea' } },
    { id: 'borders', type: 'line', source: 'countries', paint: { 'line-color': '#b9b4a8', 'line-width': 0.6 } },
  ],
};

let map;
let popup = null; // the open feature popup, closed when another table is shown

export function setUpMap() {
  map = new maplibregl.Map({
    container: 'map',
    style,
    center: [0, 20],
    zoom: 0.6,
    attributionControl: { compact: true, customAttribution: 'Countries: Natural Earth via world-atlas' },
    transformRequest: (url) =>
      url.startsWith(`${location.origin}/api/`) ? { url, headers: { Authorization: authorization() } } : { url },
  });
  map.addControl(new maplibregl.NavigationControl({ showCompass: false }));
  map.on('click', TABLE_LAYERS, (e) => {
    const f = e.features[0];
    if (!f) return;
    popup?.remove();
    popup = new maplibregl.Popup({ maxWidth: '320px' }).setLngLat(e.lngLat).setDOMContent(attributes(f)).addTo(map);
  });
  for (const layer of TABLE_LAYERS) {
    map.on('mouseenter', layer, () => (map.getCanvas().style.cursor = 'pointer'));
    map.on('mouseleave', layer, () => (map.getCanvas().style.cursor = ''));
  }
  window.map = map;
}

/** A feature's properties as a two-column table (text only: values come from the user's data). */
function attributes(f) {
  const table = document.createElement('table');
  table.className = 'attributes';
  for (const [k, v] of Object.entries({ cartodb_id: f.id, ...f.properties })) {
    const row = table.insertRow();
    row.insertCell().textContent = k;
    row.insertCell().textContent = v == null ? '' : String(v);
  }
  return table;
}

const isType = (...types) => ['match', ['geometry-type'], types, true, false];

/** Draws `table` (a summary from /api/v1/tables) from its vector or PNG tiles, fitted to its bbox. */
export function showTable(table) {
  const run = () => {
    popup?.remove();
    for (const layer of [...TABLE_LAYERS, 'table-raster']) if (map.getLayer(layer)) map.removeLayer(layer);
    if (map.getSource('table')) map.removeSource('table');
    window.mapTable = table.name;
    const name = encodeURIComponent(table.name);
    const fit = () => {
      if (!table.bbox) return;
      const [w, s, e, n] = table.bbox;
      map.fitBounds([[w, s], [e, n]], { padding: 40, maxZoom: 12, animate: false });
    };
    if (table.kind === 'raster') {
      // PNG tiles coloured by the server (a ramp for one band, RGB for three).
      map.addSource('table', {
        type: 'raster',
        tiles: [`${location.origin}/api/v1/tables/${name}/tiles/{z}/{x}/{y}.png`],
        tileSize: 256,
        maxzoom: 18,
      });
      map.addLayer({ id: 'table-raster', type: 'raster', source: 'table', paint: { 'raster-opacity': 0.85 } });
      fit();
      return;
    }
    map.addSource('table', {
      type: 'vector',
      tiles: [`${location.origin}/api/v1/tables/${name}/tiles/{z}/{x}/{y}.mvt`],
      maxzoom: 16,
    });
    const on = { source: 'table', 'source-layer': table.name };
    map.addLayer({ id: 'table-fill', type: 'fill', ...on, filter: isType('Polygon', 'MultiPolygon'),
      paint: { 'fill-color': '#d9480f', 'fill-opacity': 0.45 } });
    map.addLayer({ id: 'table-line', type: 'line', ...on, filter: isType('Polygon', 'MultiPolygon', 'LineString', 'MultiLineString'),
      paint: { 'line-color': '#a61e4d', 'line-width': 1.5 } });
    map.addLayer({ id: 'table-circle', type: 'circle', ...on, filter: isType('Point', 'MultiPoint'),
      paint: { 'circle-color': '#d9480f', 'circle-radius': 6, 'circle-stroke-color': '#fff', 'circle-stroke-width': 1.5 } });
    fit();
  };
  if (map.isStyleLoaded()) run();
  else map.once('load', run);
}
