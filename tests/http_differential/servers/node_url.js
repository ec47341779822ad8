// A raw Node http server that reads the path the way hand-written servers do: `new URL(req.url,
// base).pathname` (WHATWG: `\` is `/`, dot segments resolved, a leading `//` is an authority) or
// the legacy `url.parse(req.url).pathname`, then percent-decodes it and serves the file from the
// tree (path.join resolves what is left), or dispatches by prefix like a small router.
// Usage: node node_url.js whatwg|legacy PORT TREE
'use strict';
const http = require('http');
const fs = require('fs');
const path = require('path');
const url = require('url');
const [mode, port, tree] = process.argv.slice(2);
const root = path.resolve(tree);

function pathnameOf(target) {
  if (mode === 'whatwg') return new URL(target, 'http://127.0.0.1').pathname;
  return url.parse(target).pathname || '/';
}

http.createServer((req, res) => {
  let decoded;
  try {
    decoded = decodeURIComponent(pathnameOf(req.url));
  } catch (e) {
    res.writeHead(400);
    res.end('bad\n');
    return;
  }
  // A prefix router on the decoded path, as small hand-written services do.
  for (const [prefix, kind] of [['/admin/', 'DENIED'], ['/api/v1/admin/', 'DENIED']]) {
    if (decoded.startsWith(prefix)) {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`RESOURCE-${kind} prefix ${prefix}\n`);
      return;
    }
  }
  let file = path.join(root, decoded);
  if (!file.startsWith(root)) {
    res.writeHead(403);
    res.end('outside\n');
    return;
  }
  try {
    if (fs.statSync(file).isDirectory()) file = path.join(file, 'index.html');
    const body = fs.readFileSync(file);
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(body);
  } catch (e) {
    res.writeHead(404);
    res.end('not found\n');
  }
}).listen(Number(port), '127.0.0.1');
