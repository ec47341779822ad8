// Express (4 or 5, by the module name given) with routes for the allowed and denied resources,
// then express.static over the file tree: the router matches the path as sent (no dot-segment
// resolution, case-insensitive), the static middleware decodes and resolves.
// Usage: node express_app.js MODULE PORT TREE
'use strict';
const [moduleName, port, tree] = process.argv.slice(2);
const express = require(moduleName);
const major = Number(require(`${moduleName}/package.json`).version.split('.')[0]);
const app = express();
const rest = major >= 5 ? '/*rest' : '/*';
const resources = [
  ['/admin', 'denied'],
  ['/api/v1/admin', 'denied'],
  ['/public', 'allowed'],
  ['/api/v1/users', 'allowed'],
];
for (const [prefix, kind] of resources) {
  const answer = (req, res) => res.type('text/plain').send(`RESOURCE-${kind.toUpperCase()} route ${prefix}\n`);
  app.get(prefix, answer);
  app.get(prefix + rest, answer);
}
app.use(express.static(tree));
app.listen(Number(port), '127.0.0.1');
