#!/usr/bin/env node
// The compiled CLI (npm ci runs `prepare`, which builds dist/).
import { main } from '../dist/cli/index.js';

main(process.argv).then(
  (code) => { process.exitCode = code; },
  (err) => {
    process.stderr.write(`xray-qc: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
