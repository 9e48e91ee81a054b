// Encoder parity on this browser's WebGPU and on the wasm CPU backend (web/tests/models.mjs drives it).
import init, { check_litemedsam_fixture, check_dinov2_fixture } from './pkg/medpick_wasm.js';
const log = (s) => { document.getElementById('log').textContent += `\n${s}`; };
const bytes = async (url) => {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
};
try {
  await init();
  const result = {};
  // DINOv2 through the Exec seam: on WebGPU, then on the CPU kernels (the app's path without WebGPU).
  for (const [key, gpu] of [['dinov2', true], ['dinov2_cpu', false]]) {
    const dino = await check_dinov2_fixture(
      await bytes('/fixtures/dinov2/tiny_registers/model.safetensors'),
      await (await fetch('/fixtures/dinov2/tiny_registers/config.json')).text(),
      await bytes('/fixtures/dinov2/inputs.safetensors'),
      await bytes('/fixtures/dinov2/tiny_registers/outputs.safetensors'),
      'kvasir_2_224x308', gpu);
    result[key] = JSON.parse(dino);
    log(`DINOv2 tiny+registers 224x308 (${gpu ? 'WebGPU' : 'CPU'}): ${dino}`);
  }
  // LiteMedSAM on WebGPU, then on the CPU backend compiled to wasm (single-threaded, simd128).
  for (const [key, gpu] of [['litemedsam', true], ['litemedsam_cpu', false]]) {
    const lite = await check_litemedsam_fixture(
      await bytes('/weights/litemedsam.whl'), await bytes('/fixtures/litemedsam/kvasir_1.safetensors'), gpu);
    result[key] = JSON.parse(lite);
    log(`LiteMedSAM kvasir_1 (${gpu ? 'WebGPU' : 'CPU'}): ${lite}`);
  }
  window.__RESULT = result;
} catch (e) {
  log(`Error: ${e?.message ?? e}`);
  window.__RESULT = { error: String(e?.message ?? e) };
}
