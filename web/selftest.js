// Runs medpick's GPU-vs-CPU kernel self-test (core::selftest, compiled to wasm) and shows the table.
// Sets window.__RESULT for the browser test (web/tests/selftest.mjs).
import init, { run_selftest } from './pkg/medpick_wasm.js';

const $ = (id) => document.getElementById(id);

async function main() {
  await init();
  const params = new URLSearchParams(location.search);
  const wantGpu = params.get('gpu') !== '0';
  const hasGpuApi = 'gpu' in navigator;
  $('device').textContent = 'Running the self-test…';
  const t0 = performance.now();
  const doc = JSON.parse(await run_selftest(wantGpu && hasGpuApi));
  const ms = performance.now() - t0;
  const onGpu = doc.device !== 'CPU (wasm)';
  $('device').textContent = onGpu
    ? `Device: ${doc.device}`
    : `No WebGPU adapter available (${doc.gpu_error ?? 'navigator.gpu missing'}): ran the CPU twins only, on CPU (wasm).`;
  const body = $('results').querySelector('tbody');
  for (const r of doc.reports) {
    const tr = document.createElement('tr');
    const res = r.passed === true ? 'ok' : r.passed === false ? 'FAIL' : r.skipped ? 'skipped' : 'CPU only';
    if (r.passed === false) tr.className = 'fail';
    for (const v of [r.kernel, r.case, res, r.max_abs_err.toExponential(2), r.gpu_ms.toFixed(1), r.cpu_ms.toFixed(1)]) {
      const td = document.createElement('td');
      td.textContent = v;
      tr.appendChild(td);
    }
    if (r.passed === false) tr.title = r.detail;
    body.appendChild(tr);
  }
  $('results').hidden = false;
  const kernels = doc.kernels.map(([name, passed, cases, skipped]) => ({ name, passed, cases, skipped }));
  const skipped = kernels.filter((k) => k.cases === 0 && k.skipped > 0);
  const ok = kernels.filter((k) => k.passed === k.cases && k.cases > 0).length;
  const skipNote = skipped.length
    ? ` ${skipped.map((k) => k.name).join(', ')} skipped: this adapter lacks shader-f16.`
    : '';
  $('summary').textContent = onGpu
    ? `${ok} of ${kernels.length - skipped.length} kernels passed on WebGPU (${doc.reports.length} cases, ${(ms / 1000).toFixed(1)} s).${skipNote}`
    : `${kernels.length} kernels ran on the CPU twins (${doc.reports.length} cases, ${(ms / 1000).toFixed(1)} s).`;
  window.__RESULT = {
    device: doc.device,
    onGpu,
    gpuError: doc.gpu_error,
    kernels,
    failures: doc.reports.filter((r) => r.passed === false).map((r) => `${r.kernel} [${r.case}]: ${r.detail}`),
    cases: doc.reports.length,
    shaderCount: doc.shader_count,
    ms,
  };
}

main().catch((e) => {
  $('device').textContent = `Error: ${e?.message ?? e}`;
  window.__RESULT = { error: String(e?.message ?? e) };
});
