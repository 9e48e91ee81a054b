// Launch Debian's chromium headless through playwright-core (no browser download), with or without WebGPU.
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const COMMON = [
  '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run',
  '--disable-quic', '--disable-gpu-sandbox',
];

/** profile: 'webgpu' (SwiftShader WebGPU) or 'nogpu' (WebGPU unavailable). */
export async function launch(profile) {
  const args = profile === 'webgpu'
    ? [...COMMON, '--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-webgpu-adapter=swiftshader',
       '--use-angle=swiftshader', '--enable-unsafe-swiftshader']
    : [...COMMON, '--disable-gpu'];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'medpick-chromium-'));
  const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium';
  return chromium.launchPersistentContext(dir, { executablePath, headless: true, args });
}

/** Wait until the page sets window.__RESULT (or time out). */
export async function waitResult(page, timeoutMs) {
  await page.waitForFunction(() => window.__RESULT !== undefined, null, { timeout: timeoutMs, polling: 250 });
  return page.evaluate(() => window.__RESULT);
}
