// Launch Debian's chromium headless through playwright-core (no browser download), with or without WebGPU.
import { chromium } from 'playwright-core';
import { spawn } from 'node:child_process';
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

/** Counted checks: `check(ok, what)` prints `ok`/`FAIL` lines; `finish()` prints the totals and exits 1 on a failure. */
export function checker() {
  let passed = 0;
  let failed = 0;
  const check = (ok, what) => {
    if (ok) { passed++; console.log(`ok   ${what}`); } else { failed++; console.log(`FAIL ${what}`); }
  };
  const finish = () => { console.log(`${passed} passed, ${failed} failed`); process.exit(failed ? 1 : 0); };
  return { check, finish };
}

/** `medpick web` serving `dir` on a free loopback port: `{ server, origin }`. */
export async function medpickWeb(bin, dir) {
  const server = spawn(bin, ['web', '--port', '0', '--dir', dir], { stdio: ['ignore', 'pipe', 'inherit'] });
  const origin = await new Promise((resolve, reject) => {
    let buf = '';
    server.stdout.on('data', (d) => {
      buf += d;
      const m = buf.match(/serving (http:\/\/127\.0\.0\.1:\d+)\//);
      if (m) resolve(m[1]);
    });
    server.on('exit', (code) => reject(new Error(`medpick web exited with ${code}`)));
  });
  return { server, origin };
}

/** The requests that went anywhere but `origin` (its blob: URLs and data: URLs count as the page's own). */
export function foreignRequests(requests, origin) {
  return requests.filter((u) => !(u.startsWith(`${origin}/`) || u.startsWith(`blob:${origin}/`) || u.startsWith('data:')));
}
