// OHIF, the viewer MONAI Label ships (the OHIF v3 build with MONAI Label's extension, inside the
// monailabel-0.8.5 wheel that scripts/setup.sh downloads), unmodified, against `medpick serve --ohif <wheel>`:
// its study list finds the datastore's two DICOM studies over QIDO-RS, its MONAI Label mode opens the CT series
// (three slices, WADO-RS metadata and frames) and draws it, its MONAI Label panel connects (/info/) and its
// Next Sample button gets a DICOM image from the server's active learning, with the study and series UIDs OHIF
// opens, and its Auto-Segmentation runs the fine-tuned head (trained on a labelled PNG) on the CT series. Every request the page makes stays on the server's origin; none of them fails. Screenshots in
// target/browser-artifacts/ohif-*.png.
//
// Env: MEDPICK_BIN (default target/debug/medpick), MEDPICK_MONAILABEL_WHEEL (default: the wheel in
// ~/.cache/medpick/wheels).
import fs from 'node:fs';
import zlib from 'node:zlib';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { checker, foreignRequests, launch } from './browser.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../..');
const shared = path.resolve(repo, '../shared/data');
const bin = process.env.MEDPICK_BIN ?? path.join(repo, 'target/debug/medpick');
const cache = process.env.MEDPICK_CACHE ?? path.join(os.homedir(), '.cache/medpick');
const wheelDir = path.join(cache, 'wheels');
const wheel = process.env.MEDPICK_MONAILABEL_WHEEL
  ?? (fs.existsSync(wheelDir) ? fs.readdirSync(wheelDir).filter((f) => f.startsWith('monailabel-0.8.5')).map((f) => path.join(wheelDir, f))[0] : undefined);
const artifacts = path.join(repo, 'target/browser-artifacts');
fs.mkdirSync(artifacts, { recursive: true });

const { check, finish } = checker();
if (!wheel || !fs.existsSync(bin) || !fs.existsSync(shared)) {
  check(false, `needs ${bin}, ${shared} and the monailabel-0.8.5 wheel in ${wheelDir} (scripts/setup.sh)`);
  finish();
}

// --- the datastore: a CT series of three slices (CT_small.dcm with its z position and SOP instance UID rewritten),
// MR_small.dcm as a one-file study, and a PNG that DICOMweb leaves out ---------------------------------------
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'medpick-ohif-'));
const ds = path.join(tmp, 'datastore');
fs.mkdirSync(path.join(ds, 'ct'), { recursive: true });
const ct = fs.readFileSync(path.join(shared, 'dicom/CT_small.dcm'));
/** Offset and length of the first explicit-VR element with this tag and VR. */
function element(buf, group, elem, vr) {
  const head = Buffer.alloc(6);
  head.writeUInt16LE(group, 0); head.writeUInt16LE(elem, 2); head.write(vr, 4, 'latin1');
  const at = buf.indexOf(head);
  if (at < 0) throw new Error(`no (${group.toString(16)},${elem.toString(16)}) ${vr}`);
  return [at + 8, buf.readUInt16LE(at + 6)];
}
const [ippAt, ippLen] = element(ct, 0x20, 0x32, 'DS');
const [px, py, pz] = ct.toString('latin1', ippAt, ippAt + ippLen).split('\\').map(Number);
const sops = [];
[10, 0, 5].forEach((dz, k) => {
  const f = Buffer.from(ct);
  const text = `${px.toFixed(6)}\\${py.toFixed(6)}\\${(pz + dz).toFixed(6)}`.padEnd(ippLen, ' ');
  if (text.length !== ippLen) throw new Error(`IPP ${text} does not fit ${ippLen} bytes`);
  f.write(text, ippAt, 'latin1');
  for (const [g, e] of [[0x2, 0x3], [0x8, 0x18]]) { // the file meta's and the data set's SOP instance UID
    const [at, len] = element(f, g, e, 'UI');
    const uid = f.toString('latin1', at, at + len).replace(/\0+$/, '');
    const uid2 = uid.slice(0, -1) + String(k + 1);
    f.write(uid2, at, 'latin1');
    if (g === 0x8) sops.push(uid2);
  }
  fs.writeFileSync(path.join(ds, 'ct', `IM${k}.dcm`), f);
});
fs.copyFileSync(path.join(shared, 'dicom/MR_small.dcm'), path.join(ds, 'mr.dcm'));
const png = fs.readdirSync(path.join(shared, 'dsb2018/images')).sort()[0];
fs.copyFileSync(path.join(shared, 'dsb2018/images', png), path.join(ds, 'cells.png'));

// --- the server ------------------------------------------------------------------------------------------------
/** `medpick serve` on the datastore with OHIF and `extra` arguments: the process and its address. */
async function serve(extra) {
  const proc = spawn(bin, ['--device', 'cpu', 'serve', '--datastore', ds, '--port', '0', '--ohif', wheel, ...extra],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  const address = await new Promise((resolve, reject) => {
    let buf = '';
    proc.stdout.on('data', (d) => {
      buf += d;
      const m = buf.match(/medpick serve: (http:\/\/127\.0\.0\.1:\d+)\//);
      if (m) resolve(m[1]);
    });
    proc.on('exit', (code) => reject(new Error(`medpick serve ${extra.join(' ')} exited with ${code}`)));
  });
  return [proc, address];
}
const [server, origin] = await serve(['--epochs', '2']);
const exited = new Promise((resolve) => server.on('exit', resolve));
const stop = () => { try { server.kill('SIGTERM'); } catch { /* gone */ } };
process.on('exit', stop);

// DICOMweb as OHIF's client will ask for it, checked directly first (clear failures before the browser's).
const get = async (p) => { const r = await fetch(origin + p); return { status: r.status, type: r.headers.get('content-type'), r }; };
const studies = await (await get('/proxy/dicom/qido/studies?limit=101&offset=0&fuzzymatching=true&includefield=00081030%2C00080060')).r.json();
const uidOf = (row, tag) => row?.[tag]?.Value?.[0];
const ctStudy = studies.find((s) => uidOf(s, '00100020') === '1CT1');
check(studies.length === 2 && ctStudy && uidOf(ctStudy, '00201208') === 3,
  `QIDO-RS: two studies (the CT series' 3 instances, the MR file; the PNG is not DICOM): ${studies.length}`);
const studyUid = uidOf(ctStudy, '0020000D');
const series = await (await get(`/proxy/dicom/qido/studies/${studyUid}/series`)).r.json();
const seriesUid = uidOf(series[0], '0020000E');
check(series.length === 1 && uidOf(series[0], '00080060') === 'CT', 'QIDO-RS: the CT study has one CT series');
const meta = await get(`/proxy/dicom/wado/studies/${studyUid}/series/${seriesUid}/metadata`);
const metaJson = await meta.r.json();
const zs = metaJson.map((m) => m['00200032'].Value[2]).sort((a, b) => a - b);
const near = (a, b) => Math.abs(a - b) < 1e-4;
check(meta.type === 'application/dicom+json' && metaJson.length === 3 && near(zs[0], pz) && near(zs[1], pz + 5) && near(zs[2], pz + 10)
  && !metaJson.some((m) => m['7FE00010']), `WADO-RS metadata: 3 instances at z, z + 5, z + 10 mm, no pixel data inlined (${zs.join(', ')})`);
const frame = await get(`/proxy/dicom/wado/studies/${studyUid}/series/${seriesUid}/instances/${sops[1]}/frames/1`);
const fbytes = Buffer.from(await frame.r.arrayBuffer());
// The part's body is the file's pixel data as stored (CT_small.dcm's (7FE0,0010) OW value: 128 × 128 16-bit).
const bodyAt = fbytes.indexOf('\r\n\r\n') + 4;
const framePixels = fbytes.subarray(bodyAt, bodyAt + 32768);
const pixelAt = ct.lastIndexOf(Buffer.from([0xe0, 0x7f, 0x10, 0x00, 0x4f, 0x57])) + 12;
check(frame.status === 200 && /^multipart\/related; type="application\/octet-stream"; boundary=/.test(frame.type)
  && fbytes.includes(Buffer.from('Content-Length: 32768')) && framePixels.equals(ct.subarray(pixelAt, pixelAt + 32768)),
  `WADO-RS frame: the instance's 128×128 16-bit pixels, byte for byte (${frame.type})`);
check((await get(`/proxy/dicom/wado/studies/${studyUid}/series/${seriesUid}/instances/${sops[1]}/frames/2`)).status === 404,
  'WADO-RS: frame 2 of a one-frame instance is a 404');
const byUid = await (await get(`/datastore/image/info?image=${seriesUid}`)).r.json();
const byId = await (await get('/datastore/image/info?image=ct')).r.json();
check(byId.name && JSON.stringify(byUid) === JSON.stringify(byId),
  'OHIF names images by SeriesInstanceUID (infer, labels): the server resolves it to the series\' datastore image');
const unknown = await get('/proxy/dicom/qido/studies?NoSuchAttribute=1&PatientName=compressedsamples%5Ect&fuzzymatching=true');
const fuzzy = await unknown.r.json();
check(unknown.status === 200 && /NoSuchAttribute query parameter is not supported/.test(unknown.r.headers.get('warning') ?? '')
  && fuzzy.length === 1 && uidOf(fuzzy[0], '0020000D') === studyUid,
  'QIDO-RS: an unknown key is ignored with a Warning header; a fuzzy name match finds the CT study');

// A final label for the PNG (its DSB2018 nuclei) and a short training of the segmentation head, so that OHIF's
// Auto-Segmentation has a model to run on the CT series.
const form = new FormData();
form.append('params', '{}');
form.append('label', new Blob([fs.readFileSync(path.join(shared, 'dsb2018/instance_labels', png))]), 'label.png');
const put = await fetch(`${origin}/datastore/label?image=cells&tag=final`, { method: 'PUT', body: form });
check(put.status === 200, `a label for the PNG is saved (${put.status})`);
const started = await fetch(`${origin}/train/medpick_seg`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"max_epochs": 2}' });
check(started.status === 200, `training starts (${started.status})`);
let trained;
for (let t = Date.now(); Date.now() - t < 300_000; await new Promise((r) => setTimeout(r, 1000))) {
  trained = await (await fetch(`${origin}/train/`)).json();
  if (trained.status !== 'RUNNING') break;
}
check(trained?.status === 'DONE', `medpick_seg trains (${trained?.status}: ${trained?.result})`);

// --- OHIF in Chromium ------------------------------------------------------------------------------------------
const context = await launch('webgpu');
await context.addCookies([{ name: 'MONAILABEL_SERVER_URL', value: `${origin}/`, url: origin }]);
const page = context.pages()[0] ?? await context.newPage();
const requests = [];
const failures = [];
page.on('request', (r) => requests.push(r.url()));
// OHIF's build asks Google for its font (index.html, app.bundle.css): the server's Content-Security-Policy keeps
// the browser from sending those requests (Chromium reports them failed with "csp").
const blockedByCsp = [];
page.on('requestfailed', (r) => {
  if (r.failure()?.errorText === 'csp') blockedByCsp.push(r.url());
  else if (r.url().startsWith(origin)) failures.push(`${r.failure()?.errorText} ${r.url()}`);
});
// MONAI Label answers "is a training running?" with a 404 when none is: OHIF asks it, medpick answers the same.
page.on('response', (r) => {
  if (r.status() >= 400 && !(r.status() === 404 && r.url() === `${origin}/train/?check_if_running=true`)) failures.push(`${r.status()} ${r.url()}`);
});
page.on('pageerror', (e) => console.log(`page error: ${e.message}`));
const shot = (name) => page.screenshot({ path: path.join(artifacts, `ohif-${name}.png`) }).catch(() => {});

try {
  await page.goto(`${origin}/ohif/`, { waitUntil: 'domcontentloaded', timeout: 120_000 });
  await page.getByText('1CT1').first().waitFor({ timeout: 120_000 });
  const listed = await page.getByText('4MR1').count();
  await shot('studylist');
  check(listed > 0, 'OHIF study list shows both studies (patient IDs 1CT1 and 4MR1) from QIDO-RS');

  await page.goto(`${origin}/ohif/monai-label?StudyInstanceUIDs=${studyUid}`, { waitUntil: 'domcontentloaded' });
  const framesOf = () => sops.filter((s) => requests.some((u) => u.includes(`/instances/${s}/frames/`)));
  const t0 = Date.now();
  while (framesOf().length < 3 && Date.now() - t0 < 120_000) await page.waitForTimeout(500);
  check(framesOf().length === 3, `OHIF's MONAI Label mode reads the series' 3 frames over WADO-RS (${framesOf().length})`);
  // The viewport's canvas holds the image (not one flat colour).
  let spread = 0;
  for (let i = 0; i < 60 && spread < 10; i++) {
    await page.waitForTimeout(1000);
    spread = await page.evaluate(() => {
      let best = 0;
      for (const c of document.querySelectorAll('canvas.cornerstone-canvas, .cornerstone-viewport-element canvas')) {
        const ctx = c.getContext('2d');
        if (!ctx || !c.width || !c.height) continue;
        const d = ctx.getImageData(0, 0, c.width, c.height).data;
        let lo = 255, hi = 0;
        for (let p = 0; p < d.length; p += 4) { lo = Math.min(lo, d[p]); hi = Math.max(hi, d[p]); }
        best = Math.max(best, hi - lo);
      }
      return best;
    });
  }
  await shot('viewer');
  check(spread >= 10, `OHIF draws the CT slice in its viewport (grey levels spread over ${spread})`);

  // The MONAI Label panel: connect, then Next Sample.
  const infoSeen = () => requests.some((u) => u === `${origin}/info/`);
  await page.locator('#monailabelServerURL').waitFor({ timeout: 60_000 });
  await page.locator('#monailabelServerURL').locator('xpath=../..').locator('button').first().click();
  const t1 = Date.now();
  while (!infoSeen() && Date.now() - t1 < 30_000) await page.waitForTimeout(250);
  check(infoSeen(), "OHIF's MONAI Label panel connects to the server (GET /info/)");
  // Next Sample until a DICOM image comes (the PNG may come first: it has no UIDs); each lease holds its image.
  const next = page.getByRole('button', { name: 'Next Sample' });
  const samples = [];
  let shown = 0;
  while (samples.length < 3 && !samples.some((s) => s.StudyInstanceUID)) {
    const answer = page.waitForResponse((r) => r.url().startsWith(`${origin}/activelearning/`), { timeout: 60_000 });
    await next.click({ timeout: 60_000 });
    const sample = await (await answer).json();
    samples.push(sample);
    if (sample.SeriesInstanceUID) {
      shown = await page.getByText(sample.SeriesInstanceUID).first().waitFor({ timeout: 30_000 }).then(() => 1, () => 0);
      await shot('nextsample');
    } else {
      await page.getByText('Active Learning - Next Sample').first().waitFor({ timeout: 30_000 }).catch(() => {});
    }
    await page.keyboard.press('Escape');
  }
  const dicom = samples.find((s) => s.StudyInstanceUID);
  check(new Set(samples.map((s) => s.id)).size === samples.length, `Next Sample hands out distinct images (${samples.map((s) => s.id).join(', ')})`);
  const want = { ct: [studyUid, seriesUid], mr: [uidOf(studies.find((s) => s !== ctStudy), '0020000D')] };
  check(dicom && want[dicom.id] && dicom.StudyInstanceUID === want[dicom.id][0] && (dicom.id !== 'ct' || dicom.SeriesInstanceUID === seriesUid) && shown > 0,
    `a DICOM sample carries its study and series UIDs and OHIF's Next Sample dialog shows them (${dicom?.id}: ${dicom?.StudyInstanceUID})`);

  // Auto-Segmentation with medpick_seg: OHIF asks for the series (by its UID) as NRRD and draws it. The CT is grey
  // (R = G = B), so coloured pixels in the viewports' canvases are the segmentation's.
  const colouredPixels = () => page.evaluate(() => {
    let n = 0;
    for (const c of document.querySelectorAll('canvas.cornerstone-canvas')) {
      const ctx = c.getContext('2d');
      if (!ctx || !c.width || !c.height) continue;
      const d = ctx.getImageData(0, 0, c.width, c.height).data;
      for (let p = 0; p < d.length; p += 4) if (Math.abs(d[p] - d[p + 1]) > 30 || Math.abs(d[p + 1] - d[p + 2]) > 30) n++;
    }
    return n;
  });
  const greyBefore = await colouredPixels();
  await page.locator('select.selectBox').first().selectOption('medpick_seg');
  const inferred = page.waitForResponse((r) => r.url().startsWith(`${origin}/infer/`), { timeout: 300_000 });
  await page.locator('button[title="Run Segmentation"]').first().click();
  const inf = await inferred;
  const body = Buffer.from(await inf.body());
  const header = body.toString('latin1', 0, 400);
  check(inf.status() === 200 && inf.url().includes(`image=${seriesUid}`) && /sizes: 128 128 3\n/.test(header),
    `OHIF's Auto-Segmentation runs medpick_seg on the series by its UID: a 128×128×3 NRRD (${inf.status()})`);
  const done = await page.getByText('Running Segmentation - Successful').first().waitFor({ timeout: 60_000 }).then(() => true, () => false);
  let tinted = 0;
  for (let i = 0; i < 20 && tinted === 0; i++) {
    await page.waitForTimeout(500);
    tinted = await colouredPixels();
  }
  await shot('segmentation');
  check(done && greyBefore === 0 && tinted > 0,
    `OHIF reads the NRRD into its segmentation and draws it over the grey CT (${greyBefore} → ${tinted} coloured pixels)`);

  // A label drawn in OHIF and stored back: its Segmentation mode's brush paints the upper left of the slice on
  // view, and OHIF's own storeSegmentation command (its dicom-seg extension's: dcmjs builds a binary DICOM SEG,
  // its data source posts it by STOW-RS to its wadoRoot) stores it under the name typed in its dialog. The
  // panel's "Export DICOM SEG" item calls that command without its data source in this OHIF build (OHIF
  // issue #4584), so the test passes the active data source as a fixed build does.
  await page.goto(`${origin}/ohif/segmentation?StudyInstanceUIDs=${studyUid}`, { waitUntil: 'domcontentloaded' });
  await page.getByText('Add Segmentation').click({ timeout: 120_000 });
  await page.locator('[data-cy=Brush]').click();
  await page.locator('input[type=number]').first().fill('8');
  const canvas = await page.locator('canvas.cornerstone-canvas').first().boundingBox();
  const side = Math.min(canvas.width, canvas.height); // the 128 × 128 slice, fitted and centred
  const [x0, y0] = [canvas.x + canvas.width / 2 - side / 4, canvas.y + canvas.height / 2 - side / 4];
  await page.mouse.move(x0 - side / 16, y0);
  await page.mouse.down();
  for (let i = 0; i <= 8; i++) await page.mouse.move(x0 - side / 16 + (i * side) / 64, y0, { steps: 2 });
  await page.mouse.up();
  const onView = await page.evaluate(() => {
    const vp = window.services.cornerstoneViewportService;
    return vp.getCornerstoneViewport(vp.viewportsById.keys().next().value).getCurrentImageId();
  });
  const segId = await page.evaluate(() => window.services.segmentationService.getSegmentations()[0]?.segmentationId);
  const stored = page.waitForResponse((r) => r.request().method() === 'POST' && r.url().startsWith(`${origin}/proxy/dicom/wado/studies`), { timeout: 60_000 });
  const command = page.evaluate((id) => window.commandsManager.runCommand('storeSegmentation',
    { segmentationId: id, dataSource: window.extensionManager.getActiveDataSource()[0] }), segId);
  await page.getByText('Enter the report name').locator('xpath=..').locator('input').fill('vertebra by annotator', { timeout: 30_000 });
  await page.getByRole('button', { name: 'Save' }).click();
  const stow = await stored;
  await command;
  const listedSeg = await page.getByText('vertebra by annotator').first().waitFor({ timeout: 30_000 }).then(() => true, () => false);
  await shot('stored');
  const stowJson = await stow.json();
  check(stow.status() === 200 && stowJson['00081199']?.Value?.length === 1 && listedSeg,
    `OHIF stores its segmentation as a DICOM SEG by STOW-RS (${stow.status()}) and lists it in the study`);
  const objects = (await (await fetch(`${origin}/datastore/?output=all`)).json()).objects;
  const info = objects.ct?.labels?.final?.info;
  check(info?.source === 'DICOM SEG (STOW-RS)' && info.description === 'vertebra by annotator',
    `the SEG became the CT series' final label (${JSON.stringify(info)})`);
  // The label volume: foreground on the slice OHIF showed only (its SOP Instance UID's z in the series: IM1 at z,
  // IM2 at z + 5, IM0 at z + 10), in the slice's upper left, as painted.
  const nii = zlib.gunzipSync(fs.readFileSync(path.join(ds, 'labels/final/ct.nii.gz')));
  const vox = nii.readFloatLE(108);
  const wantZ = { [sops[1]]: 0, [sops[2]]: 1, [sops[0]]: 2 }[onView.match(/instances\/([0-9.]+)\//)?.[1]];
  const perZ = [0, 0, 0];
  let [sx, sy] = [0, 0];
  for (let z = 0; z < 3; z++) for (let y = 0; y < 128; y++) for (let x = 0; x < 128; x++) {
    if (nii[vox + z * 16384 + y * 128 + x]) { perZ[z]++; sx += x; sy += y; }
  }
  const n = perZ[0] + perZ[1] + perZ[2];
  check(wantZ !== undefined && perZ[wantZ] === n && n > 50 && sx / n < 56 && sy / n < 56,
    `the label has the stroke on the slice on view (z = ${wantZ}: ${perZ.join('/')} voxels), centred at (${(sx / n).toFixed(0)}, ${(sy / n).toFixed(0)}) in its upper left`);
} catch (e) {
  await shot('error');
  check(false, `OHIF run: ${e.message.split('\n')[0]}`);
}
const foreign = foreignRequests(requests, origin);
const sent = foreign.filter((u) => !blockedByCsp.includes(u));
check(sent.length === 0, `no request leaves the server's origin (${foreign.length} stopped by its Content-Security-Policy; sent: ${sent.slice(0, 3).join(', ')})`);
check(failures.length === 0, `no request fails (${failures.slice(0, 5).join(', ')})`);
await context.close();
stop();
await exited;

// --- with a token: OHIF's pages cannot send the Bearer header, so /ohif/ sends the browser to the sign-in form;
// the token typed there is kept in a same-site cookie and OHIF then works as on an open server ------------------
const tokenFile = path.join(tmp, 'token');
fs.writeFileSync(tokenFile, 'ohif-test-token-0123456789\n');
const [guarded, origin2] = await serve(['--token-file', tokenFile]);
const context2 = await launch('webgpu');
try {
  const page2 = context2.pages()[0] ?? await context2.newPage();
  const qido2 = [];
  page2.on('response', (r) => { if (r.url().includes('/qido/studies')) qido2.push(r.status()); });
  await page2.goto(`${origin2}/ohif/`, { waitUntil: 'domcontentloaded', timeout: 60_000 });
  const atLogin = page2.url() === `${origin2}/auth/login`;
  await page2.locator('input[name=token]').fill('wrong-token-0123456789');
  await page2.getByRole('button', { name: 'Sign in' }).click();
  const refused = await page2.getByText("That is not this server's token.").waitFor({ timeout: 10_000 }).then(() => true, () => false);
  await page2.locator('input[name=token]').fill('ohif-test-token-0123456789');
  await page2.getByRole('button', { name: 'Sign in' }).click();
  await page2.getByText('1CT1').first().waitFor({ timeout: 120_000 });
  const cookies = await context2.cookies(origin2);
  check(atLogin && refused && qido2.length > 0 && qido2.every((st) => st === 200)
    && cookies.some((c) => c.name === 'medpick_token' && c.httpOnly && c.sameSite === 'Strict'),
    `with --token-file, /ohif/ asks for the token (a wrong one refused), then OHIF lists the studies over QIDO-RS with its cookie (${qido2.join(', ')})`);
} catch (e) {
  check(false, `OHIF with a token: ${e.message.split('\n')[0]}`);
}
await context2.close();
guarded.kill('SIGTERM');
fs.rmSync(tmp, { recursive: true, force: true });
finish();
