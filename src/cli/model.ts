import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { CONVERSIONS, type Conversion } from '../convert/conversion.js';
import { XrayError } from '../errors.js';
import { defaultDemoDir, ensureDemoModel, writeDemoBackbone } from '../model/demo/demo-model.js';
import { packBundle, PACK_DEFAULTS } from '../model/pack.js';
import { OnnxModel } from '../infer/onnx-model.js';
import { parseChoice, parseNumber, parseNumberList } from './options.js';
import { registerQuantize } from './quantize.js';

interface PackCli {
  onnx: string; out: string; name: string; version: number; conversion: Conversion; bounds?: number[];
  threshold: number; reviewBand?: number[]; inputName: string; outputName: string; outputKind: 'softmax' | 'logits';
  abnormalIndex: number; heatmapOutput?: string; height: number; width: number; mean: number[]; std: number[]; verify: boolean;
  file: string[]; metrics?: string; description?: string; synthetic?: boolean; fit?: boolean;
}

const collect = (v: string, prev: string[]): string[] => [...prev, v];

export function registerModel(program: Command): void {
  const model = program.command('model').description('model bundles: pack, demo, quantize, keygen, golden, sign');

  model
    .command('pack')
    .description('write a bundle (model.onnx + manifest.json) from an ONNX file, e.g. one exported by torch.onnx.export')
    .requiredOption('--onnx <file>', 'the ONNX model')
    .requiredOption('--out <dir>', 'the bundle directory to write')
    .requiredOption('--name <name>', 'model name')
    .requiredOption('--version <n>', 'positive integer, grows with each release of this name', parseNumber(1, Number.MAX_SAFE_INTEGER, true))
    .option('--conversion <method>', `16→8 bit conversion: ${CONVERSIONS.join('|')}`, parseChoice(CONVERSIONS), PACK_DEFAULTS.conversion)
    .option('--bounds <min,max>', 'global bounds (from `xray-qc bounds`), required for global and mixed', parseNumberList(2))
    .option('--threshold <t>', 'flag when p_abnormal ≥ t', parseNumber(0, 1), PACK_DEFAULTS.threshold)
    .option('--review-band <lo,hi>', 'scores in [lo, hi) are flagged "uncertain" for a human', parseNumberList(2))
    .option('--input-name <name>', 'graph input name', PACK_DEFAULTS.inputName)
    .option('--output-name <name>', 'graph output name', PACK_DEFAULTS.outputName)
    .option('--output-kind <kind>', 'softmax|logits', parseChoice(['softmax', 'logits'] as const), PACK_DEFAULTS.outputKind)
    .option('--heatmap-output <name>', 'graph output holding the Grad-CAM heat map (1×h×w), e.g. heatmap from xray-qc train')
    .option('--abnormal-index <i>', 'index of the abnormal class in the output', parseNumber(0, 1000, true), PACK_DEFAULTS.abnormalIndex)
    .option('--height <px>', 'input height', parseNumber(1, 16384, true), PACK_DEFAULTS.height)
    .option('--width <px>', 'input width', parseNumber(1, 16384, true), PACK_DEFAULTS.width)
    .option('--mean <a,b,c>', 'per-channel mean', parseNumberList(3), PACK_DEFAULTS.mean)
    .option('--std <a,b,c>', 'per-channel std', parseNumberList(3), PACK_DEFAULTS.std)
    .option('--file <path>', 'another file to copy in and list with its sha256 (a model card, predictions); repeatable', collect, [])
    .option('--metrics <file.json>', "a JSON object stored as the manifest's metrics")
    .option('--description <text>', 'free text for the manifest')
    .option('--synthetic', 'mark the model as trained on synthetic captures only (shown wherever it scores)')
    .option('--fit <yes|no>', "the fitness rule's verdict (docs/training.md), stored as the manifest's fit; a station refuses fit: no unless forced", (v: string) => parseChoice(['yes', 'no'] as const)(v) === 'yes')
    .option('--no-verify', 'skip loading the graph in ONNX Runtime to check names and shapes')
    .action(async (o: PackCli) => {
      if ((o.conversion === 'global' || o.conversion === 'mixed') && !o.bounds) {
        throw new XrayError('PACK_INVALID_ARGUMENT', `--bounds is required for the ${o.conversion} conversion`);
      }
      const { dir, manifest } = await packBundle({
        ...o,
        extraFiles: o.file,
        metrics: o.metrics ? await readMetrics(o.metrics) : undefined,
        bounds: o.bounds ? { min: o.bounds[0], max: o.bounds[1] } : null,
        reviewBand: o.reviewBand ? [o.reviewBand[0], o.reviewBand[1]] : null,
        mean: o.mean as [number, number, number],
        std: o.std as [number, number, number],
      });
      if (o.verify) {
        // Loads the graph, checks input/output names and shapes against the manifest, warms up.
        await (await OnnxModel.open(dir)).close();
      }
      process.stdout.write(`${JSON.stringify({ bundle: dir, name: manifest.name, version: manifest.version, sha256: manifest.files['model.onnx'].sha256, verified: o.verify })}\n`);
    });

  model
    .command('demo')
    .description('generate the demo model (ResNet-34 + FC 512/256/2; seeded backbone, head trained on synthetic captures) if missing')
    .option('--out <dir>', 'bundle directory', undefined)
    .option('--tiny', 'the narrow 128×64 variant used by tests')
    .option('--backbone-out <dir>', "write the full demo's backbone convolutions as .npy instead (for xray-qc train --backbone folded)")
    .action(async (o: { out?: string; tiny?: boolean; backboneOut?: string }) => {
      if (o.backboneOut) {
        const n = await writeDemoBackbone(resolve(o.backboneOut));
        process.stdout.write(`${JSON.stringify({ out: resolve(o.backboneOut), convolutions: n })}\n`);
        return;
      }
      const variant = o.tiny ? 'tiny' : 'full';
      const dir = await ensureDemoModel(resolve(o.out ?? defaultDemoDir(variant)), variant);
      process.stdout.write(`${dir}\n`);
    });

  registerQuantize(model);
}

async function readMetrics(path: string): Promise<Record<string, unknown>> {
  let value: unknown;
  try {
    value = JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    throw new XrayError('PACK_INVALID_ARGUMENT', `--metrics ${path}: ${(err as Error).message}`);
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new XrayError('PACK_INVALID_ARGUMENT', `--metrics ${path}: not a JSON object`);
  return value as Record<string, unknown>;
}
