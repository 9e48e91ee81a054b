// A tiny static file server on 127.0.0.1 for the browser tests (loopback is a secure context, so WebGPU is
// exposed). Serves `root`; returns { url, close, requests }.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';

const TYPES = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.mjs': 'text/javascript', '.css': 'text/css',
  '.wasm': 'application/wasm', '.json': 'application/json', '.png': 'image/png', '.svg': 'image/svg+xml',
};

/** `mounts`: { '/prefix/': '/abs/dir' or '/abs/file' } served in addition to `root`. */
export function serve(root, mounts = {}) {
  return new Promise((resolve) => {
    const server = http.createServer((req, res) => {
      const url = new URL(req.url, 'http://127.0.0.1');
      const rel = decodeURIComponent(url.pathname === '/' ? '/index.html' : url.pathname);
      let base = root;
      let file = path.join(root, rel);
      for (const [prefix, target] of Object.entries(mounts)) {
        if (rel === prefix.replace(/\/$/, '') && !prefix.endsWith('/')) { base = target; file = target; }
        else if (prefix.endsWith('/') && rel.startsWith(prefix)) { base = target; file = path.join(target, rel.slice(prefix.length)); }
      }
      if (!path.resolve(file).startsWith(path.resolve(base)) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) {
        res.writeHead(404).end('not found');
        return;
      }
      res.writeHead(200, { 'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream' });
      fs.createReadStream(file).pipe(res);
    });
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      resolve({ url: `http://127.0.0.1:${port}`, close: () => server.close() });
    });
  });
}
