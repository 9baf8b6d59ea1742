import type { Command } from 'commander';
import { computeBounds } from '../tools/bounds.js';
import { synthSet } from '../tools/synth.js';
import type { WriteCompression } from '../tools/tiff-writer.js';
import { parseChoice, parseNumber } from './options.js';

function progress(label: string): (done: number, total: number) => void {
  const started = Date.now();
  const show = process.stderr.isTTY;
  return (done, total) => {
    if (!show || Date.now() - started < 1000) return;
    const pct = Math.floor((100 * done) / total);
    const bar = '#'.repeat(Math.floor(pct / 4)).padEnd(25, '.');
    process.stderr.write(`\r${label} [${bar}] ${done}/${total}${done === total ? '\n' : ''}`);
  };
}

export function registerTools(program: Command): void {
  program
    .command('bounds')
    .description('global conversion bounds: exact percentiles over all pixels of all TIFFs under the paths')
    .option('--low <q>', 'lower percentile', parseNumber(0, 100), 0.01)
    .option('--high <q>', 'upper percentile', parseNumber(0, 100), 99.99)
    .option('--no-round', 'do not round to the nearest hundred')
    .option('--json', 'print JSON only (skipped files are listed in it)')
    .argument('<paths...>')
    .action(async (paths: string[], o: { low: number; high: number; round: boolean; json?: boolean }) => {
      const r = await computeBounds(paths, { low: o.low, high: o.high, round: o.round, onProgress: progress('bounds') });
      for (const s of r.skipped) process.stderr.write(`skipped ${s.file}: ${s.code}: ${s.message}\n`);
      const out = { min: r.min, max: r.max, files: r.files, pixels: r.pixels, ...(o.json ? { skipped: r.skipped } : {}) };
      process.stdout.write(`${JSON.stringify(out)}\n`);
    });

  program
    .command('synth')
    .description('write electrode-like synthetic 16-bit TIFFs and labels.csv')
    .requiredOption('--out <dir>', 'output directory')
    .requiredOption('--count <n>', 'number of captures', parseNumber(1, 1e6, true))
    .option('--seed <s>', 'random seed', parseNumber(0, 2 ** 31, true), 1)
    .option('--abnormal-rate <r>', 'probability that a capture has an anomaly, each drawn on its own (so the count varies: 0.3 of 20 may give 2 or 9)', parseNumber(0, 1), 0.2)
    .option('--abnormal-per-bundle <k>', 'exactly k abnormal captures in each bundle instead (fewer only in a short last bundle)', parseNumber(0, 1e6, true))
    .option('--compression <c>', 'none|deflate|lzw', parseChoice(['none', 'deflate', 'lzw'] as const), 'none')
    .option('--width <px>', 'fixed width (default: 1119–1219, random)', parseNumber(8, 20000, true))
    .option('--height <px>', 'fixed height (default: 2053–2115, random)', parseNumber(8, 20000, true))
    .option('--bundle-size <n>', 'captures per production bundle (the labels.csv bundle column)', parseNumber(1, 1e6, true), 10)
    .action(async (o: { out: string; count: number; seed: number; abnormalRate: number; abnormalPerBundle?: number; compression: WriteCompression; width?: number; height?: number; bundleSize: number }) => {
      const labels = await synthSet({
        out: o.out, count: o.count, seed: o.seed, abnormalRate: o.abnormalRate, abnormalPerBundle: o.abnormalPerBundle, compression: o.compression, bundleSize: o.bundleSize,
        size: { width: o.width, height: o.height }, onFile: progress('synth'),
      });
      const abnormal = labels.filter((l) => l.label === 'abnormal').length;
      const bundles = new Set(labels.map((l) => l.bundle)).size;
      process.stdout.write(`${JSON.stringify({ out: o.out, files: labels.length, abnormal, bundles, abnormal_share: labels.length ? abnormal / labels.length : 0 })}\n`);
    });
}
