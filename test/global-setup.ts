import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './helpers.js';

/**
 * Tests run the code they name: worker threads and the CLI (`bin/xray-qc.js`) run the compiled
 * files in dist/, so every vitest run builds dist/ afresh from the current sources first (a clean
 * build, so that nothing removed from src/ lingers there).
 */
export default function setup(): void {
  rmSync(join(ROOT, 'dist'), { recursive: true, force: true });
  execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.build.json')], { stdio: 'inherit' });
}
