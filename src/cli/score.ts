import { writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { decodeTiffFile } from '../decode/capture-file.js';
import { DEFAULT_MAX_PIXELS } from '../decode/tiff.js';
import { XrayError } from '../errors.js';
import type { Provider } from '../infer/messages.js';
import { defaultDemoDir, ensureDemoModel } from '../model/demo/demo-model.js';
import { loadBundle, resolveBundleDir } from '../model/bundle.js';
import { formatResult, preprocessorFor, Scorer } from '../score/scorer.js';
import { encodeNpy } from '../tools/npy.js';
import { encodePlanesPng } from '../tools/png.js';
import { parseNumber, parseProviders } from './options.js';

/** `--model` or the demo model (generated on first use). */
export async function modelPathOrDemo(model: string | undefined): Promise<string> {
  if (model) return model;
  const dir = defaultDemoDir();
  return ensureDemoModel(dir);
}

async function openScorer(model: string | undefined, providers: Provider[], maxPixels: number): Promise<Scorer> {
  const scorer = await Scorer.open(await modelPathOrDemo(model), { providers, decode: { maxPixels } });
  for (const w of scorer.load.warnings) process.stderr.write(`warning: ${w}\n`);
  if (scorer.bundle.manifest.untrained) {
    process.stderr.write(`note: ${scorer.bundle.manifest.name} is an UNTRAINED demo model; its scores mean nothing\n`);
  }
  return scorer;
}

export function registerScoring(program: Command): void {
  program
    .command('score')
    .description('score 16-bit TIFF captures: one line per file, in input order; exit 2 if any file failed')
    .option('--model <dir>', 'a model bundle or repository (default: the demo model)')
    .option('--providers <list>', 'execution providers in order of preference', parseProviders, ['cpu'] as Provider[])
    .option('--max-pixels <n>', 'refuse larger images', parseNumber(1, 1e9, true), DEFAULT_MAX_PIXELS)
    .option('--json', 'one JSON object per line')
    .argument('<files...>')
    .action(async (files: string[], o: { model?: string; providers: Provider[]; maxPixels: number; json?: boolean }) => {
      const scorer = await openScorer(o.model, o.providers, o.maxPixels);
      let failed = 0;
      try {
        for (const file of files) {
          const result = await scorer.scoreFile(file);
          if (result.verdict === 'error') failed++;
          process.stdout.write(`${o.json ? JSON.stringify(result) : formatResult(result)}\n`);
        }
      } finally {
        await scorer.close();
      }
      process.exitCode = failed ? 2 : 0;
    });

  program
    .command('preprocess')
    .description("write the exact float32 NCHW tensor the model would receive (.npy), the model's 8-bit view (.png), or both")
    .option('--model <dir>', 'a model bundle or repository (default: the demo model)')
    .option('--out <file.npy>', 'where to write the tensor (give --out, --png or both)')
    .option('--png <file.png>', "where to write the model's 8-bit view: converted and resized")
    .option('--max-pixels <n>', 'refuse larger images', parseNumber(1, 1e9, true), DEFAULT_MAX_PIXELS)
    .argument('<file>')
    .action(async (file: string, o: { model?: string; out?: string; png?: string; maxPixels: number }) => {
      if (!o.out && !o.png) {
        process.stderr.write('xray-qc preprocess: give --out T.npy (the tensor), --png V.png (the 8-bit view), or both\n');
        process.exitCode = 2;
        return;
      }
      // Preprocessing needs the manifest only, not an inference session.
      const bundle = await loadBundle(await resolveBundleDir(await modelPathOrDemo(o.model)));
      try {
        const image = await decodeTiffFile(file, { maxPixels: o.maxPixels });
        const pre = preprocessorFor(bundle.manifest).run(image, undefined, !!o.png);
        const { height, width } = bundle.manifest.input;
        if (o.out) await writeFile(o.out, encodeNpy(pre.tensor, [1, 3, height, width]));
        if (o.png && pre.planes) await writeFile(o.png, encodePlanesPng(pre.planes, width, height));
        process.stdout.write(`${JSON.stringify({ file, out: o.out ?? null, png: o.png ?? null, shape: [1, 3, height, width], local_bounds: pre.localBounds })}\n`);
      } catch (err) {
        if (err instanceof XrayError) {
          process.stderr.write(`${file}: ${err.code}: ${err.message}\n`);
          process.exitCode = 2;
          return;
        }
        throw err;
      }
    });
}
