// The annotation view: label the picks in pick order (a mask per image, LiteMedSAM proposing it from a drawn
// box, corrected by brush and eraser; or a class per image), every change saved to IndexedDB at once; train a
// head in the worker on the labels made; score the unlabelled pool for the next batch; export and import labels
// in the CLI's layout. All computation is medpick-core's (wasm, in worker.js); this file is the UI.
import * as store from './labels.js';

const $ = (id) => document.getElementById(id);
const A = {
  rows: [], canSegment: false, project: 'default', queue: [], scores: new Map(), cur: -1, labels: new Map(),
  tool: 'box', undo: new Map(), redo: new Map(), img: null, overlay: null, mask: null, drag: null, classes: [],
  head: null, busy: false,
  // The row whose image and mask are on the canvas (edits apply to it), and the latest `go` (a slower earlier
  // one must not replace what a later one showed).
  shown: null, opening: 0, loading: false,
};
let rpc = null;
let ui = null;

const hook = (patch) => { window.__MEDPICK.annot = { ...(window.__MEDPICK.annot ?? {}), ...patch }; };
const msg = (id, text, cls = '') => { $(id).textContent = text; $(id).className = cls; };
const task = () => document.querySelector('input[name=task]:checked').value;
const row = () => A.shown;

/** Wire the view once: `call` is the worker RPC, `download(name, data, type)` saves a file. */
export function setup(call, download) {
  rpc = call;
  ui = { download };
  const cv = $('canvas');
  cv.addEventListener('mousedown', down);
  window.addEventListener('mousemove', move);
  window.addEventListener('mouseup', (e) => up(e).catch(report));
  for (const b of document.querySelectorAll('[data-tool]')) b.addEventListener('click', () => setTool(b.dataset.tool));
  $('undo').addEventListener('click', () => history(true));
  $('redo').addEventListener('click', () => history(false));
  $('clearmask').addEventListener('click', () => { if (A.shown && !A.loading) edit(() => A.mask.fill(0)).catch(report); });
  $('prev').addEventListener('click', () => go(A.cur - 1).catch(report));
  $('next').addEventListener('click', () => go(A.cur + 1).catch(report));
  $('classes').addEventListener('change', () => setClasses($('classes').value).catch(report));
  for (const r of document.querySelectorAll('input[name=task]')) r.addEventListener('change', () => { renderTools(); go(A.cur).catch(report); });
  $('train').addEventListener('click', () => train().catch((e) => {
    A.busy = false;
    const text = String(e.message ?? e);
    const lost = /GPU device was lost/.test(text) ? ' Reload the page to go on (untick “use WebGPU” to train on the CPU path).' : '';
    msg('trainmsg', `Training stopped: ${text}. Your labels are saved and unchanged.${lost}`, 'error');
    hook({ trainError: text });
  }));
  $('headdl').addEventListener('click', () => ui.download(A.head.name, JSON.stringify(A.head.file, null, 1), 'application/json'));
  $('nextbatch').addEventListener('click', () => nextBatch().catch((e) => { A.busy = false; msg('nextmsg', `${e.message ?? e}`, 'error'); }));
  $('export').addEventListener('click', () => exportLabels().catch(report));
  $('import').addEventListener('change', () => importLabels([...$('import').files]).catch(report));
  document.addEventListener('keydown', keys);
}

function report(e) {
  msg('annstatus', String(e?.message ?? e), 'error');
  hook({ error: String(e?.message ?? e) });
}

/** Open the view over a selection's picks: labels and the queue of an earlier visit come back from IndexedDB. */
export async function start(result, project) {
  const info = await rpc('rows');
  A.rows = info.rows;
  A.canSegment = info.canSegment;
  A.project = project;
  A.labels = await store.load(project);
  const meta = await store.loadMeta(project);
  const byId = new Map(A.rows.map((r) => [r.id, r.row]));
  A.queue = result.picks.map((p) => p.row);
  A.scores = new Map(result.picks.map((p) => [p.row, `${result.strategy} #${p.rank}`]));
  for (const id of meta?.queue ?? []) {
    const r = byId.get(id);
    if (r !== undefined && !A.queue.includes(r)) A.queue.push(r);
  }
  A.classes = meta?.classes ?? [];
  A.undo = new Map();
  A.redo = new Map();
  A.shown = null;
  A.head = null;
  $('headdl').disabled = true;
  if (!A.classes.length) A.classes = folderClasses();
  $('classes').value = A.classes.join(', ');
  const segRadio = document.querySelector('input[name=task][value=seg]');
  segRadio.disabled = !A.canSegment;
  if (!A.canSegment || meta?.task === 'cls') document.querySelector('input[name=task][value=cls]').checked = true;
  $('score').replaceChildren(...['lc', 'entropy', 'margin', 'her', 'coreset'].map((s) => new Option(s, s)));
  $('annot').hidden = false;
  renderTools();
  await go(Math.max(0, A.queue.findIndex((r) => !A.labels.has(A.rows[r].id))));
  hook({ ready: true, restored: A.labels.size, queue: A.queue.map((r) => A.rows[r].id) });
}

// Class names from folder names (class-per-folder datasets), when the ids have two or more parents.
function folderClasses() {
  const parents = new Set(A.rows.map((r) => r.id.split('/').slice(-2, -1)[0]).filter((p) => p && p !== 'images'));
  return parents.size >= 2 && parents.size <= 20 ? [...parents].sort() : [];
}

async function setClasses(text) {
  const names = text.split(',').map((s) => s.trim());
  if (text.trim() === '' ) { A.classes = []; renderTools(); return saveMeta(); }
  const empty = names.findIndex((n) => n === '');
  if (empty >= 0) throw new Error(`class ${empty + 1} is empty: give names separated by commas`);
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup) throw new Error(`class “${dup}” is given twice`);
  A.classes = names;
  renderTools();
  await saveMeta();
  msg('annstatus', `classes: ${names.join(', ')}`);
}

function saveMeta() {
  return store.saveMeta(A.project, { queue: A.queue.map((r) => A.rows[r].id), classes: A.classes, task: task() });
}

function renderTools() {
  const seg = task() === 'seg';
  $('segtools').hidden = !seg;
  $('clstools').hidden = seg;
  $('clstools').replaceChildren(...A.classes.map((c, i) => {
    const b = document.createElement('button');
    b.textContent = `${i + 1}: ${c}`;
    b.dataset.cls = c;
    b.addEventListener('click', () => setLabel(c).catch(report));
    return b;
  }));
  for (const b of document.querySelectorAll('[data-tool]')) b.classList.toggle('on', b.dataset.tool === A.tool);
  renderQueue();
}

function renderQueue() {
  $('queue').replaceChildren(...A.queue.map((r, k) => {
    const li = document.createElement('li');
    const rec = A.labels.get(A.rows[r].id);
    const done = task() === 'seg' ? !!rec?.mask : !!rec?.label;
    li.className = `${k === A.cur ? 'cur' : ''} ${done ? 'done' : ''}`;
    li.textContent = `${done ? '✓' : '·'} ${A.rows[r].id.split('/').pop()}${rec?.label ? ` [${rec.label}]` : ''}`;
    li.title = `${A.rows[r].id} — ${A.scores.get(r) ?? ''}`;
    li.addEventListener('click', () => go(k).catch(report));
    return li;
  }));
}

function setTool(t) {
  A.tool = t;
  renderTools();
}

// --- one image ------------------------------------------------------------------------------------------------
async function go(k) {
  if (!A.queue.length) return;
  k = Math.max(0, Math.min(A.queue.length - 1, k));
  const r = A.rows[A.queue[k]];
  const token = ++A.opening;
  A.loading = true;
  msg('annstatus', `opening ${r.id}…`);
  try {
    const png = await rpc('openRow', { row: r.row });
    const img = await createImageBitmap(new Blob([png], { type: 'image/png' }));
    if (token !== A.opening) return;
    const saved = A.labels.get(r.id)?.mask;
    A.cur = k;
    A.shown = r;
    A.img = img;
    A.mask = saved && saved.width === r.width && saved.height === r.height && saved.data.length === r.width * r.height
      ? saved.data.slice() : new Uint8Array(r.width * r.height);
    A.overlay = new OffscreenCanvas(r.width, r.height);
  } finally {
    if (token === A.opening) A.loading = false;
  }
  const cv = $('canvas');
  const s = Math.min(640 / r.width, 640 / r.height, 4);
  cv.width = Math.round(r.width * s);
  cv.height = Math.round(r.height * s);
  paintOverlay();
  draw();
  renderQueue();
  const rec = A.labels.get(r.id);
  msg('annstatus', `${k + 1} of ${A.queue.length}: ${r.id} (${r.width}×${r.height})${rec?.label ? `, class ${rec.label}` : ''}`);
  hook({ current: r.id, index: k, width: r.width, height: r.height });
}

function paintOverlay() {
  const r = row();
  const data = new ImageData(r.width, r.height);
  for (let i = 0; i < A.mask.length; i++) {
    if (A.mask[i]) { data.data[4 * i] = 255; data.data[4 * i + 1] = 40; data.data[4 * i + 2] = 40; data.data[4 * i + 3] = 110; }
  }
  A.overlay.getContext('2d').putImageData(data, 0, 0);
}

function draw() {
  const cv = $('canvas');
  const g = cv.getContext('2d');
  g.imageSmoothingEnabled = false;
  g.drawImage(A.img, 0, 0, cv.width, cv.height);
  if (task() === 'seg') g.drawImage(A.overlay, 0, 0, cv.width, cv.height);
  if (A.drag?.tool === 'box' && A.drag.p1) {
    const s = cv.width / row().width;
    const [x0, y0] = A.drag.p0, [x1, y1] = A.drag.p1;
    g.strokeStyle = '#2da44e';
    g.lineWidth = 2;
    g.strokeRect(Math.min(x0, x1) * s, Math.min(y0, y1) * s, Math.abs(x1 - x0) * s, Math.abs(y1 - y0) * s);
  }
}

// Image pixel coordinates of a mouse event, clamped to the image.
function at(e) {
  const cv = $('canvas');
  const b = cv.getBoundingClientRect();
  const r = row();
  const x = ((e.clientX - b.left) / b.width) * r.width;
  const y = ((e.clientY - b.top) / b.height) * r.height;
  return [Math.max(0, Math.min(r.width, x)), Math.max(0, Math.min(r.height, y))];
}

function down(e) {
  if (task() !== 'seg' || !A.img || A.busy || A.loading) return;
  e.preventDefault();
  const p = at(e);
  A.drag = { tool: A.tool, p0: p, p1: null };
  if (A.tool !== 'box') {
    pushUndo();
    stamp(p, p);
  }
}

function move(e) {
  if (!A.drag) return;
  const p = at(e);
  if (A.drag.tool === 'box') A.drag.p1 = p;
  else { stamp(A.drag.p1 ?? A.drag.p0, p); A.drag.p1 = p; }
  draw();
}

async function up(e) {
  const d = A.drag;
  if (!d) return;
  A.drag = null;
  if (d.tool !== 'box') { await saveMask(); return; }
  const p1 = d.p1 ?? at(e);
  const box = [Math.min(d.p0[0], p1[0]), Math.min(d.p0[1], p1[1]), Math.max(d.p0[0], p1[0]), Math.max(d.p0[1], p1[1])];
  if (box[2] - box[0] < 2 || box[3] - box[1] < 2) { draw(); return; }
  A.busy = true;
  msg('annstatus', 'LiteMedSAM is proposing a mask…');
  try {
    const r = row();
    const out = await rpc('segment', { row: r.row, box });
    if (row() !== r) return;
    pushUndo();
    const m = new Uint8Array(out.mask);
    for (let i = 0; i < m.length; i++) if (m[i]) A.mask[i] = 1;
    await saveMask();
    msg('annstatus', `mask proposed for box ${box.map((v) => v.toFixed(0)).join(',')}: ${out.area} pixels, predicted IoU ${out.iou.toFixed(3)} (${out.ms.toFixed(0)} ms). Correct it with the brush or eraser, or draw another box.`);
    hook({ lastBox: { id: r.id, area: out.area, iou: out.iou, ms: out.ms } });
  } finally {
    A.busy = false;
  }
}

// Paint (brush) or erase a stroke from a to b with the brush radius, in image pixels.
function stamp(a, b) {
  const r = row();
  const rad = Number($('brush').value);
  const v = A.drag?.tool === 'eraser' ? 0 : 1;
  const steps = Math.max(1, Math.ceil(Math.hypot(b[0] - a[0], b[1] - a[1]) / Math.max(1, rad / 2)));
  for (let s = 0; s <= steps; s++) {
    const cx = a[0] + ((b[0] - a[0]) * s) / steps, cy = a[1] + ((b[1] - a[1]) * s) / steps;
    for (let y = Math.max(0, Math.floor(cy - rad)); y < Math.min(r.height, Math.ceil(cy + rad)); y++) {
      for (let x = Math.max(0, Math.floor(cx - rad)); x < Math.min(r.width, Math.ceil(cx + rad)); x++) {
        if ((x + 0.5 - cx) ** 2 + (y + 0.5 - cy) ** 2 <= rad * rad) A.mask[y * r.width + x] = v;
      }
    }
  }
  paintOverlay();
}

function pushUndo() {
  const id = row().id;
  if (!A.undo.has(id)) A.undo.set(id, []);
  A.undo.get(id).push(A.mask.slice());
  A.redo.set(id, []);
}

async function edit(fn) {
  pushUndo();
  fn();
  await saveMask();
}

function history(back) {
  if (A.loading || A.busy) return;
  const id = row()?.id;
  const from = (back ? A.undo : A.redo).get(id) ?? [];
  if (!from.length) return;
  if (!(back ? A.redo : A.undo).has(id)) (back ? A.redo : A.undo).set(id, []);
  (back ? A.redo : A.undo).get(id).push(A.mask.slice());
  A.mask = from.pop();
  saveMask().catch(report);
}

async function saveMask() {
  const r = row();
  if (A.mask.length !== r.width * r.height) throw new Error(`${r.id}: the mask has ${A.mask.length} pixels, the image ${r.width}×${r.height}: not saved`);
  paintOverlay();
  draw();
  const rec = { ...(A.labels.get(r.id) ?? {}) };
  rec.mask = A.mask.some((v) => v) ? { width: r.width, height: r.height, data: A.mask.slice() } : undefined;
  await store.save(A.project, r.id, rec);
  if (rec.mask || rec.label) A.labels.set(r.id, rec); else A.labels.delete(r.id);
  renderQueue();
  hook({ saved: (window.__MEDPICK.annot?.saved ?? 0) + 1, labels: countLabels() });
}

async function setLabel(c) {
  const r = row();
  // A class key pressed while the view moves on to the next image labels nothing (never the image being left).
  if (!r || A.loading) return;
  A.loading = true;
  let moved = false;
  try {
    const rec = { ...(A.labels.get(r.id) ?? {}), label: c };
    await store.save(A.project, r.id, rec);
    A.labels.set(r.id, rec);
    hook({ saved: (window.__MEDPICK.annot?.saved ?? 0) + 1, labels: countLabels() });
    if (A.cur + 1 < A.queue.length) {
      moved = true;
      await go(A.cur + 1);
    } else renderQueue();
  } finally {
    if (!moved) A.loading = false;
  }
}

function countLabels() {
  let masks = 0, classes = 0;
  for (const v of A.labels.values()) { if (v.mask) masks++; if (v.label) classes++; }
  return { masks, classes };
}

function keys(e) {
  if ($('annot').hidden || e.target.closest?.('input, select, textarea')) return;
  const k = e.key.toLowerCase();
  if ((e.ctrlKey || e.metaKey) && k === 'z') { e.preventDefault(); history(!e.shiftKey); return; }
  if ((e.ctrlKey || e.metaKey) && k === 'y') { e.preventDefault(); history(false); return; }
  if (k === 'arrowright') go(A.cur + 1).catch(report);
  else if (k === 'arrowleft') go(A.cur - 1).catch(report);
  else if (task() === 'seg' && { b: 1, r: 1, e: 1 }[k]) setTool({ b: 'box', r: 'brush', e: 'eraser' }[k]);
  else if (task() === 'cls' && /^[1-9]$/.test(k) && A.classes[Number(k) - 1]) setLabel(A.classes[Number(k) - 1]).catch(report);
}

// --- the labels as the worker takes them ------------------------------------------------------------------------
function labelledMasks() {
  const meta = [], parts = [];
  for (const r of A.rows) {
    const m = A.labels.get(r.id)?.mask;
    if (m) { meta.push({ row: r.row, width: m.width, height: m.height }); parts.push(m.data); }
  }
  const masks = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) { masks.set(p, off); off += p.length; }
  return { meta, masks };
}

function labelledClasses() {
  return A.rows.filter((r) => A.labels.get(r.id)?.label).map((r) => ({ row: r.row, label: A.labels.get(r.id).label }));
}

// --- training -----------------------------------------------------------------------------------------------
async function train() {
  if (A.busy) return;
  A.busy = true;
  const epochs = Number($('epochs').value), batch = Number($('batch').value), seed = Number($('seed').value);
  const seg = task() === 'seg';
  msg('trainmsg', 'training…');
  hook({ training: true });
  let out;
  const t0 = performance.now();
  if (seg) {
    const { meta, masks } = labelledMasks();
    if (!meta.length) throw new Error('no image has a mask yet: draw at least one');
    const holdOut = $('holdout').checked ? 5 : 0;
    out = await rpc('trainSeg', { labels: meta, masks, epochs, batch, seed, holdOut }, (p) => {
      msg('trainmsg', p.phase === 'training' ? `training: step ${p.done} of ${p.total}` : `image embeddings: ${p.done} of ${p.total}`);
    });
  } else {
    const labels = labelledClasses();
    out = await rpc('trainCls', { labels, epochs, seed });
  }
  const secs = (performance.now() - t0) / 1000;
  A.head = { name: seg ? 'seg-head.json' : 'cls-head.json', file: out.head, seg };
  $('headdl').disabled = false;
  plot(out.epoch_loss, out.val_curve ?? []);
  const perStep = out.seconds / Math.max(1, out.steps);
  msg('trainmsg', `Trained on ${out.trained_on} images: ${epochs} epochs, ${out.steps} steps in ${out.seconds.toFixed(2)} s (${perStep.toFixed(3)} s per step); `
    + (seg ? `Dice on the images trained on ${out.train_dice.toFixed(3)}` : `accuracy on the images trained on ${out.train_accuracy.toFixed(3)}`)
    + (out.held_out?.length ? `; on the ${out.held_out.length} held-out labelled images (not trained on) ${out.val_curve.map(([, d]) => d.toFixed(3)).join(' → ')} by epoch.`
      : seg ? ' (a check that the head learnt the labels, not an estimate of its accuracy: hold out images for that, from 5 labelled).' : '.'));
  A.busy = false;
  hook({ training: false, trained: { ...out, head: undefined, secs, perStep }, trainedRuns: (window.__MEDPICK.annot?.trainedRuns ?? 0) + 1 });
}

// Loss per epoch (blue, left scale) and, with held-out images, their Dice per epoch (green, 0–1).
function plot(loss, dice) {
  const W = 360, H = 170, M = 30;
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', 'training loss and held-out Dice per epoch');
  const hi = Math.max(...loss), lo = Math.min(...loss, 0);
  const sx = (i) => M + (loss.length > 1 ? i / (loss.length - 1) : 0.5) * (W - 2 * M);
  const sy = (v) => H - M - ((v - lo) / Math.max(hi - lo, 1e-9)) * (H - 2 * M);
  const sd = (d) => H - M - d * (H - 2 * M);
  const series = (pts, colour) => {
    const line = document.createElementNS(ns, 'polyline');
    line.setAttribute('points', pts.map(([x, y]) => `${x},${y}`).join(' '));
    line.setAttribute('fill', 'none');
    line.setAttribute('stroke', colour);
    line.setAttribute('stroke-width', '2');
    svg.append(line);
    for (const [x, y] of pts) {
      const c = document.createElementNS(ns, 'circle');
      c.setAttribute('cx', x); c.setAttribute('cy', y); c.setAttribute('r', 3); c.setAttribute('fill', colour);
      svg.append(c);
    }
  };
  const text = (x, y, t, colour = '#1b1f24', anchor = 'middle') => {
    const e = document.createElementNS(ns, 'text');
    e.setAttribute('x', x); e.setAttribute('y', y); e.setAttribute('font-size', '11'); e.setAttribute('fill', colour);
    e.setAttribute('text-anchor', anchor);
    e.textContent = t;
    svg.append(e);
  };
  series(loss.map((v, i) => [sx(i), sy(v)]), '#0969da');
  text(W / 2, H - 8, `epoch (1–${loss.length})`);
  text(M - 4, sy(hi) + 4, hi.toFixed(2), '#0969da', 'end');
  text(M - 4, sy(loss[loss.length - 1]) + 4, loss[loss.length - 1].toFixed(2), '#0969da', 'end');
  text(M, 12, 'loss', '#0969da', 'start');
  if (dice.length) {
    series(dice.map(([e, d]) => [sx(e - 1), sd(d)]), '#1a7f37');
    text(W - M + 4, sd(1) + 4, '1', '#1a7f37', 'start');
    text(W - M + 4, sd(0) + 4, '0', '#1a7f37', 'start');
    text(W - M, 12, 'held-out Dice', '#1a7f37', 'end');
  }
  $('trainplot').replaceChildren(svg);
}

// --- next batch -----------------------------------------------------------------------------------------------
async function nextBatch() {
  if (A.busy) return;
  const score = $('score').value;
  if (score !== 'coreset' && !A.head) throw new Error('train a head first (or choose coreset)');
  A.busy = true;
  const seg = A.head ? A.head.seg : task() === 'seg';
  const labelled = A.rows.filter((r) => { const v = A.labels.get(r.id); return seg ? v?.mask : v?.label; }).map((r) => r.row);
  // Images already in the list (labelled or not) are not offered again; for coreset they count as chosen.
  const taken = [...new Set([...labelled, ...A.queue])];
  const n = Number($('nextn').value);
  msg('nextmsg', 'scoring the unlabelled images…');
  const out = await rpc('nextBatch', { score, n, labelled: taken }, (p) => msg('nextmsg', `image embeddings: ${p.done} of ${p.total}`));
  A.busy = false;
  const added = [];
  for (const p of out.picks) {
    A.scores.set(p.row, `${score} ${Number(p.score).toPrecision(4)}`);
    if (!A.queue.includes(p.row)) { A.queue.push(p.row); added.push(p.row); }
  }
  await saveMeta();
  renderQueue();
  msg('nextmsg', `Next ${out.picks.length} of ${out.scored} unlabelled images by ${score}: ${out.picks.map((p) => `${p.id.split('/').pop()} (${Number(p.score).toPrecision(4)})`).join(', ')}; added to the list above.`);
  hook({ next: out, nextRuns: (window.__MEDPICK.annot?.nextRuns ?? 0) + 1 });
  if (added.length) await go(A.queue.indexOf(added[0]));
}

// --- export / import -------------------------------------------------------------------------------------------
async function exportLabels() {
  const { meta, masks } = labelledMasks();
  const classes = labelledClasses();
  if (!meta.length && !classes.length) throw new Error('nothing to export yet');
  const zip = await rpc('exportLabels', { masksMeta: meta, masks, classes });
  ui.download('medpick-labels.zip', zip, 'application/zip');
  msg('importmsg', `exported ${meta.length} masks and ${classes.length} class labels`);
}

async function importLabels(files) {
  if (!files.length) return;
  const bufs = await Promise.all(files.map((f) => f.arrayBuffer()));
  const blob = new Uint8Array(bufs.reduce((n, b) => n + b.byteLength, 0));
  let off = 0;
  for (const b of bufs) { blob.set(new Uint8Array(b), off); off += b.byteLength; }
  const names = files.map((f) => f.webkitRelativePath || f.name);
  const { doc, masks } = await rpc('importLabels', { names, lengths: bufs.map((b) => b.byteLength), blob });
  const px = new Uint8Array(masks);
  let at = 0;
  for (const m of doc.masks) {
    const data = px.slice(at, at + m.width * m.height);
    at += m.width * m.height;
    const rec = { ...(A.labels.get(m.id) ?? {}), mask: { width: m.width, height: m.height, data } };
    await store.save(A.project, m.id, rec);
    A.labels.set(m.id, rec);
  }
  for (const c of doc.classes) {
    const rec = { ...(A.labels.get(c.id) ?? {}), label: c.label };
    await store.save(A.project, c.id, rec);
    A.labels.set(c.id, rec);
    if (!A.classes.includes(c.label)) A.classes.push(c.label);
  }
  $('classes').value = A.classes.join(', ');
  await saveMeta();
  renderTools();
  if (A.cur >= 0) await go(A.cur);
  const problems = doc.problems.map(([f, why]) => `${f}: ${why}`);
  msg('importmsg', `imported ${doc.masks.length} masks and ${doc.classes.length} class labels`
    + (problems.length ? `; not imported: ${problems.join('; ')}` : ''), problems.length ? 'error' : '');
  hook({ imported: { masks: doc.masks.length, classes: doc.classes.length, problems: doc.problems } });
}
