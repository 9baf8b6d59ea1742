import { writeFile } from 'node:fs/promises';
import { modelCaveat } from '../model/caveat.js';
import type { Command } from 'commander';
import { decodeTiffFile } from '../decode/capture-file.js';
import { DEFAULT_MAX_PIXELS } from '../decode/tiff.js';
import { XrayError } from '../errors.js';
import type { Provider } from '../infer/messages.js';
import { defaultDemoDir, ensureDemoModel } from '../model/demo/demo-model.js';
import { loadBundle, resolveBundleDir } from '../model/bundle.js';
import { contractFor } from '../model/contract.js';
import { Preprocessor } from '../prepare/preprocessor.js';
import { encodeNpy } from '../tools/npy.js';
import { encodePlanesPng } from '../tools/png.js';
import { loadConfig } from '../service/config.js';
import { parseNumber, parseProviders } from './options.js';
import { formatResult, ScoringSession, scoredJson } from './scoring.js';

interface ModelChoice { model?: string; config?: string; providers?: Provider[]; maxPixels?: number }

/**
 * Which model a CLI command uses: `--model`, else the station's repository and active bundle from
 * `--config`, else the demo model (generated on first use) — said on stderr, since its scores mean
 * nothing. Providers and the pixel limit come from the station's config unless given.
 */
export async function chooseModel(o: ModelChoice): Promise<{ path: string; providers: Provider[]; maxPixels: number }> {
  const station = o.config ? loadConfig(o.config) : null;
  const providers = o.providers ?? station?.model.providers ?? ['cpu'];
  const maxPixels = o.maxPixels ?? station?.capture.max_pixels ?? DEFAULT_MAX_PIXELS;
  if (o.model) return { path: o.model, providers, maxPixels };
  if (station) return { path: station.model.dir, providers, maxPixels };
  process.stderr.write('note: no --model or --config: using the demo model\n');
  return { path: await ensureDemoModel(defaultDemoDir()), providers, maxPixels };
}

async function openSession(o: ModelChoice): Promise<ScoringSession> {
  const choice = await chooseModel(o);
  const session = await ScoringSession.open(choice.path, { providers: choice.providers, decode: { maxPixels: choice.maxPixels } });
  const { bundle, load } = session.model;
  const m = bundle.manifest;
  process.stderr.write(`model: ${m.name} v${m.version} (${bundle.dir}, onnx sha256 ${bundle.modelSha256.slice(0, 12)}…, ${load.provider})\n`);
  for (const w of load.warnings) process.stderr.write(`warning: ${w}\n`);
  const caveat = modelCaveat(m);
  if (caveat) process.stderr.write(`note: ${m.name} ${caveat}\n`);
  return session;
}

export function registerScoring(program: Command): void {
  program
    .command('score')
    .description('score 16-bit TIFF captures: one line per file, in input order; exit 2 if any file failed')
    .option('--model <dir>', 'a model bundle or repository')
    .option('--config <file>', "a station's configuration: its model repository's active bundle, providers and pixel limit")
    .option('--providers <list>', 'execution providers in order of preference (default: the config\'s, else cpu)', parseProviders)
    .option('--max-pixels <n>', `refuse larger images (default: the config's, else ${DEFAULT_MAX_PIXELS})`, parseNumber(1, 1e9, true))
    .option('--json', 'one JSON object per line')
    .addHelpText('after', '\nWithout --model or --config the demo model scores (generated on first use; trained on synthetic captures only).')
    .argument('<files...>')
    .action(async (files: string[], o: ModelChoice & { json?: boolean }) => {
      const session = await openSession(o);
      let failed = 0;
      try {
        for (const file of files) {
          const result = await session.score(file);
          if (result.verdict === 'error') failed++;
          process.stdout.write(`${o.json ? scoredJson(result) : formatResult(result)}\n`);
        }
      } finally {
        await session.close();
      }
      process.exitCode = failed ? 2 : 0;
    });

  program
    .command('preprocess')
    .description("write the exact float32 NCHW tensor the model would receive (.npy), the model's 8-bit view (.png), or both")
    .option('--model <dir>', 'a model bundle or repository')
    .option('--config <file>', "a station's configuration: its model repository's active bundle")
    .option('--out <file.npy>', 'where to write the tensor (give --out, --png or both)')
    .option('--png <file.png>', "where to write the model's 8-bit view: converted and resized")
    .option('--max-pixels <n>', `refuse larger images (default: the config's, else ${DEFAULT_MAX_PIXELS})`, parseNumber(1, 1e9, true))
    .argument('<file>')
    .action(async (file: string, o: ModelChoice & { out?: string; png?: string }) => {
      if (!o.out && !o.png) {
        process.stderr.write('xray-qc preprocess: give --out T.npy (the tensor), --png V.png (the 8-bit view), or both\n');
        process.exitCode = 2;
        return;
      }
      // Preprocessing needs the manifest only, not an inference session.
      const choice = await chooseModel(o);
      const bundle = await loadBundle(await resolveBundleDir(choice.path));
      try {
        const image = await decodeTiffFile(file, { maxPixels: choice.maxPixels });
        const pre = new Preprocessor(contractFor(bundle.manifest)).run(image, undefined, !!o.png);
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
