#!/usr/bin/env node
'use strict';
// The `tetrahub` command: agent, observe, status, version (see src/cli).
let cli;
try {
  cli = require('../dist/src/cli/main.js');
} catch (e) {
  if (e && e.code === 'MODULE_NOT_FOUND') {
    console.error('tetrahub: not built yet; run `npm start` or `npm run build` in the project directory');
    process.exit(1);
  }
  throw e;
}
cli.main(process.argv.slice(2)).then(
  (code) => process.exit(code ?? 0),
  (err) => {
    console.error(`tetrahub: ${err && err.message ? err.message : err}`);
    process.exit(1);
  },
);
