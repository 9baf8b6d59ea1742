import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { defaultDemoDir, ensureDemoModel } from '../model/demo/demo-model.js';
import { formatResult, Scorer } from '../score/scorer.js';
import { synthSet } from '../tools/synth.js';
import { writeFile } from 'node:fs/promises';

/**
 * The demo until the daemon lands: synthetic captures (some abnormal, one corrupt) scored by the
 * untrained demo model, one line each, then a summary.
 */
export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('score a handful of synthetic captures with the (untrained) demo model')
    .option('--count <n>', 'number of synthetic captures', (v) => Number.parseInt(v, 10), 6)
    .option('--keep', 'keep the temporary capture folder')
    .action(async (o: { count: number; keep?: boolean }) => {
      const dir = await mkdtemp(join(tmpdir(), 'xray-qc-demo-'));
      try {
        process.stderr.write('preparing the demo model (generated on first use, ~90 MB)…\n');
        const model = await ensureDemoModel(defaultDemoDir());
        const labels = await synthSet({ out: dir, count: o.count, seed: 7, abnormalRate: 0.4, compression: 'deflate' });
        await writeFile(join(dir, 'corrupt.tif'), Buffer.from('II*\0this is not really a TIFF'));
        const scorer = await Scorer.open(model);
        process.stdout.write(`model ${scorer.modelRef.name} v${scorer.modelRef.version} on ${scorer.load.provider}: UNTRAINED demo model, its scores mean nothing\n`);
        const counts = { pass: 0, flag: 0, error: 0 };
        try {
          for (const file of [...labels.map((l) => join(dir, l.file)), join(dir, 'corrupt.tif')]) {
            const r = await scorer.scoreFile(file);
            counts[r.verdict]++;
            const label = labels.find((l) => file.endsWith(l.file));
            process.stdout.write(`${formatResult(r)}${label ? `  [synthetic: ${label.label}${label.anomaly ? ` ${label.anomaly}` : ''}]` : ''}\n`);
          }
        } finally {
          await scorer.close();
        }
        process.stdout.write(`summary: ${counts.pass} pass, ${counts.flag} flag, ${counts.error} error${o.keep ? `; captures kept in ${dir}` : ''}\n`);
      } finally {
        if (!o.keep) await rm(dir, { recursive: true, force: true });
      }
    });
}
