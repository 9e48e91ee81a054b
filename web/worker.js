// The Web Worker that runs medpick's core (wasm) so the page stays responsive. Requests are
// {id, op, ...args}; replies {id, ok, result | error}; progress messages {id, progress: {...}}.
import init, { Session, plan_upload, strategies, default_strategy } from './pkg/medpick_wasm.js';

let session = null;
const ready = init();
// With ?testhooks=1 on the page: the GPU device wgpu asks for, kept where a test can reach it (the browser test
// destroys it to check that a lost device stops training with a clear message and loses no label).
if (new URL(self.location.href).searchParams.get('testhooks') === '1' && typeof GPUAdapter !== 'undefined') {
  const requestDevice = GPUAdapter.prototype.requestDevice;
  GPUAdapter.prototype.requestDevice = async function (...args) {
    const device = await requestDevice.apply(this, args);
    self.__medpickDevice = device;
    return device;
  };
}
// The dropped files by path (File objects are references to the disk, not copies): rows are decoded again from
// them when the annotation view opens an image or a pool too large to keep every embedding needs one again.
const files = new Map();

async function openRow(row, info) {
  const r = info ?? JSON.parse(session.rows())[row];
  return session.open_row(row, await fileBytes(r));
}

async function fileBytes(r) {
  const f = files.get(r.file);
  if (!f) throw new Error(`${r.file}: the file is no longer available: choose the folder again`);
  return new Uint8Array(await f.arrayBuffer());
}

// fetch(row) for the session: the bytes of a row's file, when its embedding was not kept (large pools).
function fetcher(progress, phase) {
  const all = JSON.parse(session.rows());
  let done = 0;
  const need = all.filter((r) => !r.grid).length;
  return async (row) => {
    progress?.({ phase, done: done++, total: need });
    return fileBytes(all[row]);
  };
}

const ops = {
  async open({ useGpu }) {
    session?.free();
    session = await Session.create(useGpu && 'gpu' in navigator);
    return { device: session.device(), gpuError: session.gpu_error() ?? null, strategies: JSON.parse(strategies()), auto: JSON.parse(default_strategy()) };
  },
  async model({ name, bytes }) {
    return session.load_model(name, new Uint8Array(bytes));
  },
  async plan({ paths }) {
    return JSON.parse(plan_upload(JSON.stringify(paths)));
  },
  async clear() {
    session.clear();
    files.clear();
    return null;
  },
  async add({ rel, bytes, file }, progress) {
    if (file) files.set(rel, file);
    const r = JSON.parse(await session.add_file(rel, new Uint8Array(bytes), (done, total) => progress({ done, total })));
    return r;
  },
  async skip({ rel, why }) {
    session.skip(rel, why);
    return null;
  },
  async select({ strategy, budget, seed }) {
    return JSON.parse(await session.select(strategy, budget, BigInt(seed)));
  },
  async rows() {
    return { rows: JSON.parse(session.rows()), canSegment: session.can_segment() };
  },
  async openRow({ row }) {
    return (await openRow(row)).buffer;
  },
  async segment({ row, box }) {
    const r = await session.segment_box(row, ...box);
    return { mask: r.mask, iou: r.iou, area: r.area, ms: r.ms };
  },
  async trainSeg({ labels, masks, epochs, batch, seed, holdOut }, progress) {
    const t0 = performance.now();
    const out = JSON.parse(await session.train_seg(JSON.stringify(labels), masks, epochs, batch, BigInt(seed), holdOut,
      (step, steps) => progress({ phase: 'training', done: step, total: steps, secs: (performance.now() - t0) / 1000 }),
      fetcher(progress, 'embedding')));
    return out;
  },
  async trainCls({ labels, epochs, seed }) {
    return JSON.parse(await session.train_cls(JSON.stringify(labels), epochs, BigInt(seed)));
  },
  async nextBatch({ score, n, labelled }, progress) {
    return JSON.parse(await session.next_batch(score, n, JSON.stringify(labelled), fetcher(progress, 'embedding')));
  },
  async exportLabels({ masksMeta, masks, classes }) {
    return session.export_labels(JSON.stringify(masksMeta), masks, JSON.stringify(classes)).buffer;
  },
  async importLabels({ names, lengths, blob }) {
    const r = session.import_labels(JSON.stringify(names), JSON.stringify(lengths), blob);
    return { doc: JSON.parse(r.doc), masks: r.masks };
  },
  async thumbnail({ row }) {
    const png = session.thumbnail(row);
    return png.buffer;
  },
};

// One request at a time: the session is not re-entrant.
let queue = Promise.resolve();
self.onmessage = (e) => {
  const msg = e.data;
  queue = queue.then(async () => {
    try {
      await ready;
      const result = await ops[msg.op](msg, (p) => self.postMessage({ id: msg.id, progress: p }));
      const transfer = result instanceof ArrayBuffer ? [result] : [];
      self.postMessage({ id: msg.id, ok: true, result }, transfer);
    } catch (err) {
      self.postMessage({ id: msg.id, ok: false, error: String(err?.message ?? err) });
    }
  });
};
