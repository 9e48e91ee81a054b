// Browser test: every kernel's GPU-vs-CPU self-test on WebGPU (SwiftShader) in headless Chromium, then the same
// page without WebGPU must say so and run the CPU twins. Exits non-zero on any failure.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve } from './serve.mjs';
import { launch, waitResult } from './browser.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const server = await serve(root);
let failed = 0;
let passed = 0;
const check = (ok, what) => {
  if (ok) { passed++; console.log(`ok   ${what}`); } else { failed++; console.log(`FAIL ${what}`); }
};

try {
  // 1. WebGPU on SwiftShader.
  {
    const ctx = await launch('webgpu');
    const page = await ctx.newPage();
    page.on('console', (m) => { if (m.type() === 'error') console.log(`[page] ${m.text()}`); });
    await page.goto(`${server.url}/selftest.html`);
    const r = await waitResult(page, 600_000);
    ctx.close();
    if (r.error) throw new Error(`page error: ${r.error}`);
    console.log(`device: ${r.device}; ${r.cases} cases in ${(r.ms / 1000).toFixed(1)} s`);
    check(r.onGpu, `WebGPU adapter found (${r.gpuError ?? 'ok'})`);
    for (const k of r.kernels) {
      if (k.cases === 0 && k.skipped > 0) console.log(`skip ${k.name}: the adapter lacks a feature it needs (shader-f16)`);
      else check(k.passed === k.cases, `${k.name}: ${k.passed}/${k.cases} cases on WebGPU`);
    }
    for (const f of r.failures) console.log(`  ${f}`);
    const ok = r.kernels.filter((k) => k.passed === k.cases && k.cases > 0).length;
    const skipped = r.kernels.filter((k) => k.cases === 0 && k.skipped > 0).length;
    console.log(`WebGPU: ${ok} of ${r.kernels.length} kernels passed${skipped ? `, ${skipped} skipped` : ''}`);
    check(r.kernels.length === r.shaderCount, `every kernel in the shader table ran (${r.kernels.length} of ${r.shaderCount})`);
  }
  // 2. No WebGPU: the page says so and runs the CPU twins.
  {
    const ctx = await launch('nogpu');
    const page = await ctx.newPage();
    await page.goto(`${server.url}/selftest.html`);
    const r = await waitResult(page, 600_000);
    const text = await page.textContent('#device');
    ctx.close();
    if (r.error) throw new Error(`page error: ${r.error}`);
    check(!r.onGpu && r.device === 'CPU (wasm)', `without WebGPU the CPU twins ran (${r.device})`);
    check(/No WebGPU adapter/.test(text), `the page says there is no WebGPU adapter: "${text}"`);
    check(r.kernels.length === r.shaderCount && r.failures.length === 0, `CPU twins ran for ${r.kernels.length} of ${r.shaderCount} kernels without errors`);
  }
} catch (e) {
  failed++;
  console.log(`FAIL ${e.stack ?? e}`);
} finally {
  server.close();
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
