// Browser test of the annotation loop (web/index.html, section 4–5) as a user runs it, on WebGPU (SwiftShader) and
// on the CPU path: choose a folder of DSB2018 images, select, draw boxes on 3 picks with the mouse (LiteMedSAM
// proposes the masks), paint 2 more with the brush, reload the page and choose the folder again (all 5 masks are
// back; on the CPU path), export (the PNGs hold exactly the pixels drawn), refuse an import of a wrong-size mask
// with a message and no label lost, refuse duplicate class names, train the segmentation head 5 epochs, ask for the
// next batch (unlabelled images only), download the head and compare it with `medpick train` on the exported masks
// (same images, epochs, batch and seed), and the next batch with `medpick next` (the warm loop's picking) for the
// same head and pool; on WebGPU, a lost GPU device then stops training with a clear message and loses no label. A
// NIfTI volume's slice and a DICOM series' slice, brushed (on the CPU path), export as NIfTI labels on the volume's
// grid and affine that `medpick train` reads. Every request stays on the page's origin. Screenshots in
// target/browser-artifacts/annotate-*.png.
//
// Env: MEDPICK_ANNOTATE_IMAGES (default 8), MEDPICK_BIN (default target/debug/medpick), MEDPICK_APP_PROFILES
// (default webgpu,nogpu).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { checker, foreignRequests, launch, medpickWeb } from './browser.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const web = path.resolve(here, '..');
const repo = path.resolve(web, '..');
const shared = path.resolve(repo, '../shared/data/dsb2018');
const bin = process.env.MEDPICK_BIN ?? path.join(repo, 'target/debug/medpick');
const N = Number(process.env.MEDPICK_ANNOTATE_IMAGES ?? 8);
const BUDGET = 6;
const SEED = 3;
const EPOCHS = 5;
const BATCH = 8;
const PROFILES = (process.env.MEDPICK_APP_PROFILES ?? 'webgpu,nogpu').split(',');
// The profile that runs what does not depend on the device (a reload, a volume, a DICOM series): the CPU path.
const ONE = PROFILES.includes('nogpu') ? 'nogpu' : PROFILES[0];
const artifacts = path.join(repo, 'target/browser-artifacts');
fs.mkdirSync(artifacts, { recursive: true });

const { check, finish } = checker();

if (!fs.existsSync(shared) || !fs.existsSync(bin)) {
  check(false, `needs ${shared} and ${bin} (cargo build -p medpick)`);
  finish();
}

// --- zip and PNG readers (enough for the export: deflated or stored entries; 8-bit grey PNGs) ----------------
function unzip(buf) {
  const out = new Map();
  let eocd = buf.length - 22;
  while (eocd >= 0 && buf.readUInt32LE(eocd) !== 0x06054b50) eocd--;
  const count = buf.readUInt16LE(eocd + 10);
  let p = buf.readUInt32LE(eocd + 16);
  for (let i = 0; i < count; i++) {
    const method = buf.readUInt16LE(p + 10), csize = buf.readUInt32LE(p + 20);
    const nlen = buf.readUInt16LE(p + 28), xlen = buf.readUInt16LE(p + 30), clen = buf.readUInt16LE(p + 32);
    const local = buf.readUInt32LE(p + 42);
    const name = buf.toString('utf8', p + 46, p + 46 + nlen);
    const start = local + 30 + buf.readUInt16LE(local + 26) + buf.readUInt16LE(local + 28);
    const data = buf.subarray(start, start + csize);
    out.set(name, method === 8 ? zlib.inflateRawSync(data) : Buffer.from(data));
    p += 46 + nlen + xlen + clen;
  }
  return out;
}

function pngGray(buf) {
  let p = 8, w = 0, h = 0, depth = 0, type = 0;
  const idat = [];
  while (p < buf.length) {
    const len = buf.readUInt32BE(p), kind = buf.toString('ascii', p + 4, p + 8);
    if (kind === 'IHDR') { w = buf.readUInt32BE(p + 8); h = buf.readUInt32BE(p + 12); depth = buf[p + 16]; type = buf[p + 17]; }
    if (kind === 'IDAT') idat.push(buf.subarray(p + 8, p + 8 + len));
    p += 12 + len;
  }
  if (depth !== 8 || type !== 0) throw new Error(`PNG of depth ${depth}, colour type ${type}: expected 8-bit grey`);
  const raw = zlib.inflateSync(Buffer.concat(idat));
  const px = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) {
    const f = raw[y * (w + 1)];
    for (let x = 0; x < w; x++) {
      const v = raw[y * (w + 1) + 1 + x];
      const a = x ? px[y * w + x - 1] : 0, b = y ? px[(y - 1) * w + x] : 0, c = x && y ? px[(y - 1) * w + x - 1] : 0;
      const pa = Math.abs(b - c), pb = Math.abs(a - c), pc = Math.abs(a + b - 2 * c);
      const pred = [0, a, b, (a + b) >> 1, pa <= pb && pa <= pc ? a : pb <= pc ? b : c][f];
      px[y * w + x] = (v + pred) & 255;
    }
  }
  return { w, h, px };
}

const fnv = (arr) => { let h = 0x811c9dc5; for (const v of arr) { h ^= v ? 1 : 0; h = Math.imul(h, 0x01000193) >>> 0; } return h.toString(16); };

// --- the folder ------------------------------------------------------------------------------------------------
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'medpick-annotate-'));
const folder = path.join(tmp, 'dsb-annotate');
fs.mkdirSync(path.join(folder, 'images'), { recursive: true });
const names = fs.readdirSync(path.join(shared, 'images')).filter((n) => n.endsWith('.png')).sort().slice(0, N);
for (const n of names) fs.copyFileSync(path.join(shared, 'images', n), path.join(folder, 'images', n));

const { server, origin } = await medpickWeb(bin, web);

const annot = (page) => page.evaluate(() => window.__MEDPICK.annot ?? {});
const until = async (page, fn, arg, timeout = Number(process.env.MEDPICK_ANNOTATE_WAIT ?? 600_000)) => {
  try {
    await page.waitForFunction(fn, arg, { timeout, polling: 250 });
  } catch (e) {
    const st = await page.evaluate(() => ({ annot: window.__MEDPICK?.annot, status: document.getElementById('annstatus')?.textContent, train: document.getElementById('trainmsg')?.textContent })).catch(() => null);
    throw new Error(`${e.message}\n     page: ${JSON.stringify(st)}`);
  }
};

async function selectPicks(page) {
  await page.goto(`${origin}/?testhooks=1`);
  await until(page, () => ['ready', 'error'].includes(window.__MEDPICK?.phase));
  await page.setInputFiles('#folder', folder);
  await page.fill('#budget', String(BUDGET));
  await page.fill('#seed', String(SEED));
  await page.selectOption('#strategy', 'typiclust');
  await page.click('#run');
  await until(page, () => window.__MEDPICK.phase === 'error' || window.__MEDPICK.annot?.ready, null, 3_600_000);
  const st = await page.evaluate(() => window.__MEDPICK);
  if (st.phase === 'error') throw new Error(st.error);
  return st;
}

// Drag on the canvas from (fx0, fy0) to (fx1, fy1), fractions of the image.
async function drag(page, fx0, fy0, fx1, fy1) {
  await page.locator('#canvas').scrollIntoViewIfNeeded();
  const b = await page.locator('#canvas').boundingBox();
  await page.mouse.move(b.x + fx0 * b.width, b.y + fy0 * b.height);
  await page.mouse.down();
  for (let k = 1; k <= 6; k++) await page.mouse.move(b.x + (fx0 + ((fx1 - fx0) * k) / 6) * b.width, b.y + (fy0 + ((fy1 - fy0) * k) / 6) * b.height);
  await page.mouse.up();
}

// The saved masks, read from IndexedDB: id → {count, hash}.
const savedMasks = (page) => page.evaluate(() => new Promise((resolve, reject) => {
  const req = indexedDB.open('medpick-labels');
  req.onerror = () => reject(req.error);
  req.onsuccess = () => {
    const all = req.result.transaction('labels').objectStore('labels').getAll();
    all.onsuccess = () => resolve(all.result.filter((r) => r.mask).map((r) => ({ id: r.id, px: Array.from(r.mask.data), w: r.mask.width, h: r.mask.height })));
  };
}));

async function runProfile(profile) {
  const ctx = await launch(profile);
  const page = await ctx.newPage();
  const requests = [];
  page.on('request', (r) => requests.push(r.url()));
  page.on('pageerror', (e) => console.log(`[page ${profile}] ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') console.log(`[page ${profile}] ${m.text()}`); });
  const st = await selectPicks(page);
  console.log(`${profile}: ${st.embed.images} images embedded in ${st.embed.secs.toFixed(1)} s on ${st.result.device}`);
  let a = await annot(page);
  check(a.queue.length === BUDGET && a.restored === 0, `${profile}: the annotation view lists the ${BUDGET} picks in pick order, no labels yet`);
  check(JSON.stringify(a.queue) === JSON.stringify(st.result.picks.map((p) => p.id)), `${profile}: the queue is the selection's order`);

  // Three boxes: LiteMedSAM proposes each mask.
  for (let k = 0; k < 3; k++) {
    const before = (await annot(page)).saved ?? 0;
    await drag(page, 0.2, 0.2, 0.8, 0.8);
    await until(page, (b) => (window.__MEDPICK.annot.saved ?? 0) > b || window.__MEDPICK.annot.error, before);
    a = await annot(page);
    check(!a.error && a.lastBox?.id === a.current && a.lastBox.area > 0, `${profile}: box on pick ${k + 1} gave a mask of ${a.lastBox?.area} pixels (IoU ${a.lastBox?.iou?.toFixed(3)}, ${a.lastBox?.ms?.toFixed(0)} ms)${a.error ? `: ${a.error}` : ''}`);
    if (k === 2) await page.locator('#annot').screenshot({ path: path.join(artifacts, `annotate-view-${profile}.png`) });
    await page.keyboard.press('ArrowRight');
    await until(page, (k1) => window.__MEDPICK.annot.index === k1, k + 1);
  }
  // Two more by brush (R), the second with an eraser stroke across it (E).
  await page.keyboard.press('r');
  for (let k = 3; k < 5; k++) {
    const before = (await annot(page)).saved ?? 0;
    await drag(page, 0.15, 0.5, 0.85, 0.5);
    await until(page, (b) => (window.__MEDPICK.annot.saved ?? 0) > b, before);
    if (k === 4) {
      await page.keyboard.press('e');
      const b2 = (await annot(page)).saved;
      await drag(page, 0.5, 0.3, 0.5, 0.7);
      await until(page, (b) => window.__MEDPICK.annot.saved > b, b2);
      await page.keyboard.press('r');
    }
    await page.keyboard.press('ArrowRight');
    await until(page, (k1) => window.__MEDPICK.annot.index === k1, k + 1);
  }
  const drawn = await savedMasks(page);
  check(drawn.length === 5 && drawn.every((m) => m.px.some((v) => v)), `${profile}: 5 non-empty masks saved as they were made`);

  // Undo / redo on the last brushed image.
  await page.keyboard.press('ArrowLeft');
  await until(page, () => window.__MEDPICK.annot.index === 4);
  const s0 = (await annot(page)).saved;
  await page.keyboard.press('Control+z');
  await until(page, (b) => window.__MEDPICK.annot.saved > b, s0);
  await page.keyboard.press('Control+y');
  await until(page, (b) => window.__MEDPICK.annot.saved > b + 1, s0);
  const redone = await savedMasks(page);
  const id4 = (await annot(page)).current;
  const orig4 = drawn.find((m) => m.id === id4), now4 = redone.find((m) => m.id === id4);
  check(orig4 && now4 && fnv(orig4.px) === fnv(now4.px), `${profile}: undo then redo gives back the mask as drawn`);

  // Reload: choose the folder again; every label is back. The labels live in IndexedDB whatever the device, and
  // choosing the folder again embeds it again (8 LiteMedSAM passes: 7–10 minutes on SwiftShader), so one path
  // reloads.
  let back = redone;
  if (profile === ONE) {
    await page.reload();
    await selectPicks(page);
    a = await annot(page);
    check(a.restored === 5, `${profile}: after a reload all 5 labels are back (${a.restored})`);
    back = await savedMasks(page);
    check(back.length === 5 && back.every((m) => { const d = drawn.find((x) => x.id === m.id); return d && fnv(d.px) === fnv(m.px); }), `${profile}: the reloaded masks equal the drawn ones`);
  }

  // Export: the PNGs hold exactly the pixels drawn.
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click('#export')]);
  const zipBytes = fs.readFileSync(await dl.path());
  const entries = unzip(zipBytes);
  const exported = back.map((m) => {
    const e = entries.get(`masks/${m.id.replace(/^images\//, '').replace(/\.[^.]+$/, '')}.png`);
    if (!e) return false;
    const g = pngGray(e);
    const count = g.px.reduce((n, v) => n + (v === 255), 0);
    const zeros = g.px.every((v) => v === 0 || v === 255);
    return g.w === m.w && g.h === m.h && zeros && count === m.px.reduce((n, v) => n + v, 0) && fnv(g.px) === fnv(m.px);
  });
  check(exported.length === 5 && exported.every(Boolean), `${profile}: the exported masks/*.png equal the drawn masks (size, pixel count, hash)`);
  const exportDir = path.join(tmp, `export-${profile}`);
  fs.mkdirSync(path.join(exportDir, 'masks'), { recursive: true });
  for (const [name, data] of entries) {
    if (name.startsWith('masks/')) fs.writeFileSync(path.join(exportDir, name), data);
  }

  // Bad input: a mask of the wrong size is refused by name, nothing lost; duplicate class names refused.
  // A real PNG of another size, named like the first labelled image.
  const size = (f) => { const b = fs.readFileSync(f); return [b.readUInt32BE(16), b.readUInt32BE(20)]; };
  const other = fs.readdirSync(path.join(shared, 'images')).filter((n) => n.endsWith('.png')).sort()
    .map((n) => path.join(shared, 'images', n)).find((f) => size(f).join() !== [back[0].w, back[0].h].join());
  const wrong = path.join(tmp, 'wrong', 'masks', path.basename(back[0].id));
  fs.mkdirSync(path.dirname(wrong), { recursive: true });
  fs.copyFileSync(other, wrong);
  await page.setInputFiles('#import', wrong);
  await until(page, () => window.__MEDPICK.annot.imported || window.__MEDPICK.annot.error);
  a = await annot(page);
  const importMsg = await page.textContent('#importmsg');
  check(a.imported?.masks === 0 && /is \d+x\d+ but its image/.test(importMsg), `${profile}: a wrong-size mask is refused in the page: “${importMsg}”`);
  check((await savedMasks(page)).length === 5, `${profile}: no label lost by the refused import`);
  await page.check('input[name=task][value=cls]');
  await page.fill('#classes', 'benign, benign');
  await page.dispatchEvent('#classes', 'change');
  // The message may be replaced by the next image's line at once (the task switch reopens the image): the page's
  // last error is what the user was told.
  await until(page, () => /given twice/.test(window.__MEDPICK.annot.error ?? ''));
  check(true, `${profile}: duplicate class names are refused in the page`);
  await page.check('input[name=task][value=seg]');

  // Train 5 epochs on the 5 masks.
  await page.fill('#epochs', String(EPOCHS));
  await page.fill('#batch', String(BATCH));
  await page.click('#train');
  await until(page, () => window.__MEDPICK.annot.trainedRuns || window.__MEDPICK.annot.trainError, null, 3_600_000);
  a = await annot(page);
  check(!a.trainError && a.trained?.trained_on === 4 && a.trained.epoch_loss.length === EPOCHS, `${profile}: trained on 4 of the 5 masks, ${EPOCHS} epochs: loss ${a.trained?.epoch_loss?.map((v) => v.toFixed(3)).join(' → ')}${a.trainError ? ` (${a.trainError})` : ''}`);
  check(a.trained?.held_out?.length === 1 && a.trained.val_curve.length === EPOCHS && a.trained.val_curve.every(([e, d], i) => e === i + 1 && d >= 0 && d <= 1),
    `${profile}: the 5th labelled image is held out, its Dice measured every epoch: ${a.trained?.val_curve?.map(([, d]) => d.toFixed(3)).join(' → ')}`);
  check(/held-out/.test(await page.textContent('#trainmsg')) && (await page.locator('#trainplot polyline').count()) === 2, `${profile}: the plot shows the loss and the held-out Dice`);
  console.log(`${profile}: training ${a.trained?.steps} steps in ${a.trained?.seconds?.toFixed(2)} s = ${a.trained?.perStep?.toFixed(3)} s per step (batch ${BATCH})`);
  await page.locator('#trainplot').scrollIntoViewIfNeeded();
  await page.screenshot({ path: path.join(artifacts, `annotate-${profile}.png`), fullPage: true });
  await page.locator('#trainplot svg').screenshot({ path: path.join(artifacts, `annotate-train-${profile}.png`) });

  // Next batch: 2 unlabelled images by least confidence.
  await page.selectOption('#score', 'lc');
  await page.fill('#nextn', '2');
  await page.click('#nextbatch');
  await until(page, () => window.__MEDPICK.annot.nextRuns, null, 3_600_000);
  a = await annot(page);
  const labelled = new Set(back.map((m) => m.id));
  const queued = new Set(a.queue);
  check(a.next?.picks?.length === Math.min(2, N - BUDGET) && a.next.picks.every((p) => !labelled.has(p.id) && !queued.has(p.id)) && a.next.scored === N - BUDGET,
    `${profile}: next batch of ${Math.min(2, N - BUDGET)} among the ${N - BUDGET} images neither labelled nor already listed: ${a.next?.picks?.map((p) => p.id.split('/').pop().slice(0, 8)).join(', ')}`);
  check(a.queue.length === BUDGET || (await annot(page)).current === a.next.picks[0].id, `${profile}: the next batch opens in the annotation view`);

  // The head equals the CLI's trained on the exported masks (same images, order, settings, seed).
  const [hd] = await Promise.all([page.waitForEvent('download'), page.click('#headdl')]);
  const head = JSON.parse(fs.readFileSync(await hd.path(), 'utf8'));
  // The next batch is the CLI's for the same state: `medpick next` (the warm loop's scoring and picking) with the
  // tab's head over the images neither labelled nor listed.
  const tabHead = path.join(tmp, `next-head-${profile}.json`);
  fs.writeFileSync(tabHead, JSON.stringify(head));
  const listed = path.join(tmp, `listed-${profile}.csv`);
  fs.writeFileSync(listed, `id\n${st.result.picks.map((p) => p.id).join('\n')}\n`);
  const nextCsv = execFileSync(bin, ['next', '--head', tabHead, '--dataset', folder, '--exclude', listed, '--score', 'lc', '--n', '2', '--cache', 'none'],
    { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
  const cliNext = nextCsv.trim().split('\n').slice(1).map((l) => { const c = l.split(','); return { id: c[1], score: Number(c[2]) }; });
  const tabNext = a.next?.picks ?? [];
  check(cliNext.length === tabNext.length && cliNext.every((c, i) => c.id === tabNext[i].id && Math.abs(c.score - Number(tabNext[i].score)) <= 1e-3),
    `${profile}: the next batch is \`medpick next\`'s for the same head and pool: ${cliNext.map((c, i) => `${c.id.split('/').pop().slice(0, 8)} lc ${c.score.toFixed(5)} (tab ${Number(tabNext[i]?.score).toFixed(5)})`).join(', ')}`);
  const ds = path.join(tmp, `ds-${profile}`);
  fs.mkdirSync(ds);
  fs.cpSync(path.join(folder, 'images'), path.join(ds, 'images'), { recursive: true });
  fs.cpSync(path.join(exportDir, 'masks'), path.join(ds, 'masks'), { recursive: true });
  const cliHead = path.join(tmp, `cli-head-${profile}.json`);
  const trainedIds = path.join(tmp, `trained-${profile}.csv`);
  fs.writeFileSync(trainedIds, `id\n${a.trained.ids.join('\n')}\n`);
  execFileSync(bin, ['train', '--task', 'seg', '--dataset', ds, '--labels', trainedIds, '--epochs', String(EPOCHS), '--batch', String(BATCH),
    '--seed', String(SEED), '--out', cliHead, '--cache', 'none'], { stdio: ['ignore', 'ignore', 'ignore'] });
  const cli = JSON.parse(fs.readFileSync(cliHead, 'utf8'));
  const flat = (v, out = []) => { if (typeof v === 'number') out.push(v); else if (Array.isArray(v)) v.forEach((x) => flat(x, out)); else if (v && typeof v === 'object') Object.keys(v).sort().forEach((k) => flat(v[k], out)); return out; };
  const pw = flat(head.head), cw = flat(cli.head);
  let maxDiff = pw.length === cw.length ? 0 : Infinity;
  for (let i = 0; i < Math.min(pw.length, cw.length); i++) maxDiff = Math.max(maxDiff, Math.abs(pw[i] - cw[i]));
  const maxAbs = cw.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  check(head.task === 'seg' && head.trained_on === 4 && cli.trained_on === 4 && maxDiff <= 2e-3, `${profile}: the tab's head equals \`medpick train\` on the exported masks: ${pw.length} parameters, max |Δ| ${maxDiff.toExponential(2)} (largest |value| ${maxAbs.toFixed(3)})`);

  // Classes: typed names, one image labelled by key 1, the next by key 2 (the view moves on by itself); a
  // classification head trains on them in the worker.
  await page.check('input[name=task][value=cls]');
  await page.fill('#classes', 'benign, malignant');
  await page.dispatchEvent('#classes', 'change');
  await until(page, () => document.querySelectorAll('#clstools button').length === 2);
  await page.locator('#canvas').click({ position: { x: 2, y: 2 } });
  const { saved: c0 = 0, current: first } = await annot(page);
  await page.keyboard.press('1');
  // The key is taken once the view has moved on to the next image (a key pressed before labels nothing).
  await until(page, ([b, f]) => window.__MEDPICK.annot.saved > b && window.__MEDPICK.annot.current !== f, [c0, first]);
  await page.keyboard.press('2');
  await until(page, (b) => window.__MEDPICK.annot.saved > b + 1, c0);
  a = await annot(page);
  check(a.labels?.classes === 2, `${profile}: 2 images labelled by class with the keys 1 and 2 (${JSON.stringify(a.labels)})`);
  const t0 = a.trainedRuns;
  await page.click('#train');
  await until(page, (b) => window.__MEDPICK.annot.trainedRuns > b || window.__MEDPICK.annot.trainError, t0, 600_000);
  a = await annot(page);
  check(!a.trainError && a.trained?.trained_on === 2 && a.trained.epoch_loss.length === EPOCHS, `${profile}: a classification head trained on the 2 class labels${a.trainError ? `: ${a.trainError}` : ''}`);
  await page.check('input[name=task][value=seg]');

  // The downloaded head loads in `medpick eval` (on the exported masks).
  const headFile = path.join(tmp, `tab-head-${profile}.json`);
  fs.writeFileSync(headFile, JSON.stringify(head));
  const evalOut = execFileSync(bin, ['eval', '--head', headFile, '--dataset', ds, '--cache', 'none'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
  check(/dice/i.test(evalOut), `${profile}: \`medpick eval\` loads the tab's head: ${evalOut.trim().split('\n').find((l) => /dice/i.test(l))?.trim()}`);

  if (profile === 'webgpu') {
    // The GPU device is lost (destroyed under the worker, as a driver reset or running out of memory does):
    // training stops with a message that says so, and no label is lost.
    const worker = page.workers()[0];
    const had = await worker.evaluate(() => { if (!self.__medpickDevice) return false; self.__medpickDevice.destroy(); return true; });
    check(had, `${profile}: the worker's GPU device is destroyed`);
    const runs = (await annot(page)).trainedRuns;
    await page.fill('#epochs', '1');
    await page.click('#train');
    await until(page, (r) => window.__MEDPICK.annot.trainedRuns > r || window.__MEDPICK.annot.trainError, runs, 300_000);
    const after = await annot(page);
    const text = await page.textContent('#trainmsg');
    check(/GPU device was lost/.test(after.trainError ?? '') && /labels are saved/.test(text) && /Reload the page/.test(text), `${profile}: a lost device stops training with a clear message: “${text}”`);
    const kept = await savedMasks(page);
    check(kept.length === drawn.length && kept.every((k) => { const d = drawn.find((x) => x.id === k.id); return d && fnv(d.px) === fnv(k.px); }),
      `${profile}: no label lost with the device (${kept.length} masks kept)`);
  }

  const foreign = foreignRequests(requests, origin);
  check(foreign.length === 0, `${profile}: all ${requests.length} requests of the loop stayed on ${origin}${foreign.length ? `: ${foreign.join(', ')}` : ''}`);
  await ctx.close();
}

// --- a NIfTI volume annotated slice by slice: its export is one NIfTI label on the volume's grid ----------------
// A small volume (64 × 48 × 3, x axis flipped in its affine) with a disc whose radius grows with z.
const VDIMS = [64, 48, 3];
const SROW = [[-1.5, 0, 0, 40], [0, 1.25, 0, -20], [0, 0, 4, 7]];
function niftiU8(dims, srow, fill) {
  const hdr = Buffer.alloc(352);
  hdr.writeInt32LE(348, 0);
  [3, dims[0], dims[1], dims[2], 1, 1, 1, 1].forEach((v, i) => hdr.writeInt16LE(v, 40 + 2 * i));
  hdr.writeInt16LE(2, 70);
  hdr.writeInt16LE(8, 72);
  [1, 1.5, 1.25, 4, 1, 1, 1, 1].forEach((v, i) => hdr.writeFloatLE(v, 76 + 4 * i));
  hdr.writeFloatLE(352, 108);
  hdr.writeFloatLE(1, 112);
  hdr.writeInt16LE(1, 254);
  srow.flat().forEach((v, i) => hdr.writeFloatLE(v, 280 + 4 * i));
  hdr.write('n+1\0', 344, 'latin1');
  const data = Buffer.alloc(dims[0] * dims[1] * dims[2]);
  for (let z = 0; z < dims[2]; z++) for (let y = 0; y < dims[1]; y++) for (let x = 0; x < dims[0]; x++) data[x + dims[0] * (y + dims[1] * z)] = fill(x, y, z);
  return zlib.gzipSync(Buffer.concat([hdr, data]));
}
const volFolder = path.join(tmp, 'vol-annotate');
fs.mkdirSync(path.join(volFolder, 'images'), { recursive: true });
const volBytes = niftiU8(VDIMS, SROW, (x, y, z) => ((x - 30) ** 2 + (y - 22) ** 2 < (8 + 4 * z) ** 2 ? 200 : 40 + ((x + y) % 7)));
fs.writeFileSync(path.join(volFolder, 'images', 'vol.nii.gz'), volBytes);

async function runVolume(profile) {
  const ctx = await launch(profile);
  const page = await ctx.newPage();
  const requests = [];
  page.on('request', (r) => requests.push(r.url()));
  await page.goto(`${origin}/`);
  await until(page, () => ['ready', 'error'].includes(window.__MEDPICK?.phase));
  await page.setInputFiles('#folder', volFolder);
  await page.fill('#budget', '3');
  await page.fill('#seed', String(SEED));
  await page.selectOption('#strategy', 'coreset');
  await page.click('#run');
  await until(page, () => window.__MEDPICK.phase === 'error' || window.__MEDPICK.annot?.ready, null, 3_600_000);
  const st = await page.evaluate(() => window.__MEDPICK);
  if (st.phase === 'error') throw new Error(st.error);
  let a = await annot(page);
  check(a.queue.length === 3 && a.queue.every((id) => /^images\/vol\.nii\.gz#axial:[0-2]$/.test(id)), `${profile}: the volume's 3 axial slices are the picks: ${a.queue.join(', ')}`);
  await page.keyboard.press('r');
  const before = a.saved ?? 0;
  await drag(page, 0.15, 0.5, 0.85, 0.5);
  await until(page, (b) => (window.__MEDPICK.annot.saved ?? 0) > b, before);
  const [m] = await savedMasks(page);
  const k = Number(m.id.split(':').pop());
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click('#export')]);
  const entries = unzip(fs.readFileSync(await dl.path()));
  const label = entries.get('masks/vol.nii.gz');
  check(label && !entries.has(`masks/${m.id}.png`) && entries.get('slices.csv')?.toString().trim() === `id\n${m.id}`,
    `${profile}: the slice's mask exports as masks/vol.nii.gz with its id in slices.csv: ${[...entries.keys()].join(', ')}`);
  const raw = zlib.gunzipSync(label);
  const dims = [1, 2, 3].map((i) => raw.readInt16LE(40 + 2 * i));
  const srow = Array.from({ length: 12 }, (_, i) => raw.readFloatLE(280 + 4 * i));
  const off = raw.readFloatLE(108);
  const vox = raw.subarray(off, off + dims[0] * dims[1] * dims[2]);
  check(dims.join() === VDIMS.join() && raw.readInt16LE(70) === 2 && srow.every((v, i) => Math.abs(v - SROW.flat()[i]) < 1e-6),
    `${profile}: the label is uint8 on the volume's grid and affine (dims ${dims.join('×')}, sform ${srow.join(' ')})`);
  // The slice's pixel (row r, column c) is voxel (c, h − 1 − r, k): rows run from anterior (y points up).
  const [w, h] = [VDIMS[0], VDIMS[1]];
  let same = m.w === w && m.h === h;
  for (let z = 0; z < VDIMS[2]; z++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const want = z === k ? m.px[(h - 1 - y) * w + x] : 0;
    if (vox[x + w * (y + h * z)] !== (want ? 1 : 0)) same = false;
  }
  check(same && m.px.some((v) => v), `${profile}: its voxels are the drawn mask on slice ${k} (${m.px.reduce((n, v) => n + v, 0)} pixels), 0 elsewhere`);
  // The CLI reads the export beside the volume: it trains on exactly the annotated slice.
  const ds = path.join(tmp, `vol-ds-${profile}`);
  fs.mkdirSync(path.join(ds, 'masks'), { recursive: true });
  fs.cpSync(path.join(volFolder, 'images'), path.join(ds, 'images'), { recursive: true });
  fs.writeFileSync(path.join(ds, 'masks', 'vol.nii.gz'), label);
  const slicesCsv = path.join(tmp, `slices-${profile}.csv`);
  fs.writeFileSync(slicesCsv, entries.get('slices.csv'));
  const out = path.join(tmp, `vol-head-${profile}.json`);
  execFileSync(bin, ['train', '--task', 'seg', '--dataset', ds, '--labels', slicesCsv, '--epochs', '1', '--batch', '8',
    '--seed', String(SEED), '--out', out, '--cache', 'none'], { stdio: ['ignore', 'ignore', 'pipe'] });
  check(JSON.parse(fs.readFileSync(out, 'utf8')).trained_on === 1, `${profile}: \`medpick train --labels slices.csv\` trains on the exported slice`);
  const foreign = foreignRequests(requests, origin);
  check(foreign.length === 0, `${profile}: the volume's loop stayed on ${origin}`);
  await ctx.close();
}

// A DICOM series of three CT slices 5 mm apart (CT_small.dcm with its z position rewritten, files named out of
// order): the export is one NIfTI label whose slice k is the k-th slice along the normal, with DICOM's geometry.
const seriesFolder = path.join(tmp, 'series-annotate');
fs.mkdirSync(path.join(seriesFolder, 'images', 'ct'), { recursive: true });
const ct = fs.readFileSync(path.resolve(shared, '../dicom/CT_small.dcm'));
const ipp = ct.indexOf(Buffer.from([0x20, 0x00, 0x32, 0x00, 0x44, 0x53]));
const ippLen = ct.readUInt16LE(ipp + 6);
const ippText = ct.toString('latin1', ipp + 8, ipp + 8 + ippLen);
const [px0, py0, pz0] = ippText.split('\\').map(Number);
const Z = [pz0 + 10, pz0, pz0 + 5];
Z.forEach((z, i) => {
  const f = Buffer.from(ct);
  const text = `${px0.toFixed(6)}\\${py0.toFixed(6)}\\${z.toFixed(6)}`.padEnd(ippLen, ' ');
  if (text.length !== ippLen) throw new Error(`IPP ${text} does not fit ${ippLen} bytes`);
  f.write(text, ipp + 8, 'latin1');
  fs.writeFileSync(path.join(seriesFolder, 'images', 'ct', `IM${i}.dcm`), f);
});

async function runSeries(profile) {
  const ctx = await launch(profile);
  const page = await ctx.newPage();
  await page.goto(`${origin}/`);
  await until(page, () => ['ready', 'error'].includes(window.__MEDPICK?.phase));
  await page.setInputFiles('#folder', seriesFolder);
  await page.fill('#budget', '3');
  await page.selectOption('#strategy', 'coreset');
  await page.click('#run');
  await until(page, () => window.__MEDPICK.phase === 'error' || window.__MEDPICK.annot?.ready, null, 3_600_000);
  const st = await page.evaluate(() => window.__MEDPICK);
  if (st.phase === 'error') throw new Error(st.error);
  await page.keyboard.press('r');
  const before = (await annot(page)).saved ?? 0;
  await drag(page, 0.15, 0.5, 0.85, 0.5);
  await until(page, (b) => (window.__MEDPICK.annot.saved ?? 0) > b, before);
  const [m] = await savedMasks(page);
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click('#export')]);
  const entries = unzip(fs.readFileSync(await dl.path()));
  const label = entries.get('masks/ct.nii.gz');
  check(label && entries.get('slices.csv')?.toString().trim() === `id\n${m.id}`, `${profile}: a DICOM series' slice exports as masks/ct.nii.gz: ${[...entries.keys()].join(', ')}`);
  const raw = zlib.gunzipSync(label);
  const dims = [1, 2, 3].map((i) => raw.readInt16LE(40 + 2 * i));
  const srow = Array.from({ length: 12 }, (_, i) => raw.readFloatLE(280 + 4 * i));
  const vox = raw.subarray(352);
  // Sorted along z: IM1 (z0), IM2 (z0 + 5), IM0 (z0 + 10).
  const k = ['IM1', 'IM2', 'IM0'].findIndex((n) => m.id.endsWith(`${n}.dcm`));
  const [w, h] = [m.w, m.h];
  let same = dims.join() === [w, h, 3].join();
  for (let i = 0; same && i < w * h * 3; i++) if (vox[i] !== (Math.floor(i / (w * h)) === k ? m.px[i % (w * h)] : 0)) same = false;
  const near = (a, b) => Math.abs(a - b) < 1e-3;
  check(same && k >= 0 && near(srow[3], -px0) && near(srow[7], -py0) && near(srow[11], pz0) && near(srow[10], 5),
    `${profile}: the series' label holds the mask on slice ${k} of 3 (${w}×${h}) and DICOM's geometry in RAS (origin ${srow[3]}, ${srow[7]}, ${srow[11]}; 5 mm slices)`);
  await ctx.close();
}

try {
  if (!process.env.MEDPICK_ANNOTATE_VOLUME_ONLY) for (const p of PROFILES) await runProfile(p);
  // A volume's or series' slices are cut and exported the same way on either path: the CPU path runs them (a
  // LiteMedSAM pass on WebGPU takes about a minute on SwiftShader); the WebGPU loop above ends with a lost device.
  await runVolume(ONE);
  await runSeries(ONE);
} catch (e) {
  check(false, e.stack ?? e);
} finally {
  server.kill();
  fs.rmSync(tmp, { recursive: true, force: true });
}
finish();
