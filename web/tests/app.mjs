// Browser test of the app (web/index.html) as a user runs it: `medpick web` serves the page and the default
// model; a folder of DSB2018 images (with its instance_labels/ masks and one corrupt file) is chosen through
// the folder picker; every cold-start strategy runs with a fixed seed, on WebGPU (SwiftShader) and then with
// WebGPU unavailable (the CPU path in wasm). The picks must equal the native CLI's on the same files, seed and
// model; every request must go to the page's own origin; the downloaded CSV must parse with `budget` rows.
// Screenshots land in target/browser-artifacts/.
//
// Env: MEDPICK_APP_IMAGES (default 8) images, MEDPICK_BIN (default target/debug/medpick), MEDPICK_APP_PROFILES
// (default webgpu,nogpu).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { checker, foreignRequests, launch, medpickWeb } from './browser.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const web = path.resolve(here, '..');
const repo = path.resolve(web, '..');
const shared = path.resolve(repo, '../shared/data/dsb2018');
const bin = process.env.MEDPICK_BIN ?? path.join(repo, 'target/debug/medpick');
const N = Number(process.env.MEDPICK_APP_IMAGES ?? 8);
const BUDGET = Math.max(1, Math.min(N - 1, Math.max(2, Math.floor(N / 2))));
const SEED = 7;
const PROFILES = (process.env.MEDPICK_APP_PROFILES ?? 'webgpu,nogpu').split(',');
const artifacts = path.join(repo, 'target/browser-artifacts');
fs.mkdirSync(artifacts, { recursive: true });

const { check, finish } = checker();

if (!fs.existsSync(shared) || !fs.existsSync(bin)) {
  check(false, `needs ${shared} and ${bin} (cargo build -p medpick)`);
  finish();
}

// The folder: N images + their masks + one corrupt file + a hidden file.
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'medpick-app-'));
const folder = path.join(tmp, 'dsb-sample');
fs.mkdirSync(path.join(folder, 'images'), { recursive: true });
fs.mkdirSync(path.join(folder, 'instance_labels'), { recursive: true });
const names = fs.readdirSync(path.join(shared, 'images')).filter((n) => n.endsWith('.png')).sort().slice(0, N);
for (const n of names) {
  fs.copyFileSync(path.join(shared, 'images', n), path.join(folder, 'images', n));
  const mask = path.join(shared, 'instance_labels', n);
  if (fs.existsSync(mask)) fs.copyFileSync(mask, path.join(folder, 'instance_labels', n));
}
fs.writeFileSync(path.join(folder, 'images', 'zz_broken.png'), 'this is not a PNG');
fs.writeFileSync(path.join(folder, 'images', '.DS_Store'), 'hidden');

// Native picks: every strategy, one embedding (fresh feature cache).
const t0 = Date.now();
const nativeOut = path.join(tmp, 'native', 'picks.csv');
// zz_broken.png is skipped with its reason, and the run says so by its exit status: 3, done but inputs skipped.
try {
  execFileSync(bin, ['select', folder, '--budget', String(BUDGET), '--seed', String(SEED), '--strategy', 'all',
    '--out', nativeOut, '--cache', path.join(tmp, 'cache')], { stdio: ['ignore', 'ignore', 'inherit'] });
  check(false, 'native select on a folder with a broken file exited 0, not 3');
} catch (e) {
  if (e.status !== 3) throw e;
}
const nativeSecs = (Date.now() - t0) / 1000;
const readCsv = (text) => text.trim().split('\n').slice(1).map((l) => l.split(','));
const native = {};
for (const f of fs.readdirSync(path.dirname(nativeOut))) {
  const m = f.match(/^picks\.(.+)\.csv$/);
  if (m) native[m[1]] = readCsv(fs.readFileSync(path.join(path.dirname(nativeOut), f), 'utf8'));
}
console.log(`native CLI: ${N} images, ${Object.keys(native).length} strategies in ${nativeSecs.toFixed(1)} s (--device auto, incl. model load)`);

// medpick web on a free port.
const { server, origin } = await medpickWeb(bin, web);

async function runProfile(profile) {
  const ctx = await launch(profile);
  const page = await ctx.newPage();
  const requests = [];
  page.on('request', (r) => requests.push(r.url()));
  page.on('console', (m) => { if (m.type() === 'error') console.log(`[page ${profile}] ${m.text()}`); });
  page.on('pageerror', (e) => console.log(`[page ${profile}] ${e.message}`));
  await page.goto(`${origin}/`);
  await page.waitForFunction(() => ['ready', 'error'].includes(window.__MEDPICK?.phase), null, { timeout: 300_000 });
  const st = await page.evaluate(() => window.__MEDPICK);
  if (st.phase === 'error') throw new Error(`page did not start: ${st.error}`);
  const device = st.device;
  check(profile === 'webgpu' ? device.startsWith('WebGPU') : device === 'CPU (wasm)', `${profile}: device line says ${device}`);
  await page.setInputFiles('#folder', folder);
  await page.fill('#budget', String(BUDGET));
  await page.fill('#seed', String(SEED));
  const list = await page.$$eval('#strategy option', (os) => os.map((o) => o.value));
  // Preselected: the evidence's recommendation for a pool of unknown kind, as `medpick select --strategy auto`.
  const auto = JSON.parse(fs.readFileSync(path.join(repo, 'docs/results/evidence/summary.json'), 'utf8')).default;
  const pre = await page.$eval('#strategy', (s) => s.value);
  check(pre === auto, `${profile}: preselected strategy ${pre}, the evidence's default is ${auto}`);
  check(list.length === Object.keys(native).length, `${profile}: ${list.length} strategies offered, native ran ${Object.keys(native).length}`);
  let embedSecs = null;
  for (const name of list) {
    await page.selectOption('#strategy', name);
    const before = await page.evaluate(() => window.__MEDPICK.runs ?? 0);
    await page.click('#run');
    await page.waitForFunction((b) => (window.__MEDPICK.runs ?? 0) > b, before, { timeout: 3_600_000, polling: 500 });
    const s = await page.evaluate(() => window.__MEDPICK);
    if (s.phase === 'error') { check(false, `${profile} ${name}: ${s.error}`); continue; }
    if (embedSecs === null) {
      embedSecs = s.embed.secs;
      console.log(`${profile}: embedded ${s.embed.images} images in ${embedSecs.toFixed(1)} s = ${(s.embed.images / embedSecs).toFixed(3)} images/s on ${s.result.device}`);
      check(s.embed.images === N, `${profile}: ${N} images embedded (masks, the corrupt and the hidden file set aside)`);
      const skipped = [...s.embed.planSkipped, ...s.result.skipped].map((x) => x[0]);
      check(skipped.includes('images/zz_broken.png'), `${profile}: the corrupt file is listed as skipped`);
    }
    const got = s.result.picks.map((p) => p.id);
    const want = (native[name] ?? []).map((r) => r[1]);
    check(JSON.stringify(got) === JSON.stringify(want), `${profile} ${name}: picks equal the native CLI's${got.join() === want.join() ? '' : `\n     browser ${got.join(' ')}\n     native  ${want.join(' ')}`}`);
  }
  // Download the CSV of the last selection (typiclust, as a user would most likely keep).
  await page.selectOption('#strategy', 'typiclust');
  const before = await page.evaluate(() => window.__MEDPICK.runs ?? 0);
  await page.click('#run');
  await page.waitForFunction((b) => (window.__MEDPICK.runs ?? 0) > b, before, { timeout: 600_000 });
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click('#csv')]);
  const csv = fs.readFileSync(await dl.path(), 'utf8');
  const rows = readCsv(csv);
  check(csv.startsWith('rank,id,score,strategy,seed\n') && rows.length === BUDGET && rows.every((r) => r.length === 5 && r[3] === 'typiclust'),
    `${profile}: downloaded picks.csv parses with ${BUDGET} rows`);
  check(JSON.stringify(rows.map((r) => r[1])) === JSON.stringify(native.typiclust.map((r) => r[1])), `${profile}: downloaded CSV ids equal the native file's`);
  await page.screenshot({ path: path.join(artifacts, `app-${profile}.png`), fullPage: true });
  const foreign = foreignRequests(requests, origin);
  check(foreign.length === 0, `${profile}: all ${requests.length} requests stayed on ${origin}${foreign.length ? `: ${foreign.join(', ')}` : ''}`);
  await ctx.close();
  return embedSecs;
}

try {
  const secs = {};
  for (const p of PROFILES) secs[p] = await runProfile(p);
  console.log(`images/s: native CLI (--device auto) ${(N / nativeSecs).toFixed(3)} incl. model load`
    + Object.entries(secs).map(([p, t]) => `; Chromium ${p === 'webgpu' ? 'WebGPU/SwiftShader' : 'CPU (wasm)'} ${(N / t).toFixed(3)}`).join(''));
} catch (e) {
  check(false, e.stack ?? e);
} finally {
  server.kill();
  fs.rmSync(tmp, { recursive: true, force: true });
}
finish();
