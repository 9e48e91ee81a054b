// The Web Worker that runs medpick's core (wasm) so the page stays responsive. Requests are
// {id, op, ...args}; replies {id, ok, result | error}; progress messages {id, progress: {...}}.
import init, { Session, plan_upload, strategies, default_strategy } from './pkg/medpick_wasm.js';

let session = null;
const ready = init();

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
    return null;
  },
  async add({ rel, bytes }, progress) {
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
