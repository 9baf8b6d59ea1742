#!/usr/bin/env node
// The compiled CLI (npm ci runs `prepare`, which builds dist/).
import { main } from '../dist/cli/index.js';

// `xray-qc audit export … | head`: a closed pipe ends the output quietly.
process.stdout.on('error', (err) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

main(process.argv).then(
  (code) => { process.exitCode = code; },
  (err) => {
    process.stderr.write(`xray-qc: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
