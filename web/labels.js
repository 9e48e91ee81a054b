// Labels made in the page, saved in the browser's IndexedDB as they are made (one record per image: its mask
// and/or its class), so a reload or a crash loses nothing. Records are keyed by project (the dropped folder's
// name) and the image's id, the id the CLI uses. Nothing here leaves the machine.

const DB = 'medpick-labels';
const STORE = 'labels';
const META = 'meta';

function open() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => {
      const db = req.result;
      if (!db.objectStoreNames.contains(STORE)) db.createObjectStore(STORE, { keyPath: 'key' }).createIndex('project', 'project');
      if (!db.objectStoreNames.contains(META)) db.createObjectStore(META, { keyPath: 'project' });
    };
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(new Error(`cannot open the label store (IndexedDB): ${req.error?.message ?? req.error}`));
  });
}

let dbp = null;
const db = () => (dbp ??= open());

function tx(store, mode, fn) {
  return db().then((d) => new Promise((resolve, reject) => {
    const t = d.transaction(store, mode);
    const out = fn(t.objectStore(store));
    t.oncomplete = () => resolve(out?.result ?? out);
    t.onerror = () => reject(new Error(`label store: ${t.error?.message ?? t.error}`));
    t.onabort = () => reject(new Error(`label store: ${t.error?.message ?? 'aborted'} (is the disk full?)`));
  }));
}

const key = (project, id) => `${project}\u0000${id}`;

/** Save one image's labels: {mask?: {width, height, data: Uint8Array 0/1}, label?: string}. Resolves once stored. */
export function save(project, id, rec) {
  const value = { key: key(project, id), project, id, updated: Date.now() };
  if (rec.mask) {
    const { width, height, data } = rec.mask;
    if (data.length !== width * height) return Promise.reject(new Error(`${id}: a mask of ${data.length} pixels for a ${width}×${height} image: not saved`));
    value.mask = { width, height, data: data.slice() };
  }
  if (rec.label) value.label = rec.label;
  if (!value.mask && !value.label) return tx(STORE, 'readwrite', (s) => s.delete(value.key));
  return tx(STORE, 'readwrite', (s) => s.put(value));
}

/** Every saved record of a project: Map id → {mask?, label?}. */
export async function load(project) {
  const recs = await tx(STORE, 'readonly', (s) => s.index('project').getAll(project));
  const out = new Map();
  for (const r of recs ?? []) out.set(r.id, { mask: r.mask, label: r.label });
  return out;
}

/** Per-project state kept beside the labels: the queue of images to label, the class names. */
export function saveMeta(project, meta) {
  return tx(META, 'readwrite', (s) => s.put({ project, ...meta }));
}

export async function loadMeta(project) {
  return (await tx(META, 'readonly', (s) => s.get(project))) ?? null;
}
