import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { XrayError } from '../errors.js';
import { parseMethod, type Method } from '../quantize/calibrate.js';
import { quantizeBundle } from '../quantize/quantize.js';
import { parseNumber } from './options.js';

const REFUSALS = new Set(['QUANTIZE_INVALID_INPUT', 'QUANTIZE_NOT_FUSED', 'QUANTIZE_DISAGREES', 'MODEL_NOT_FOUND', 'MODEL_MANIFEST_INVALID', 'MODEL_FILE_MISMATCH']);

export function registerQuantize(model: Command): void {
  model
    .command('quantize')
    .description('an int8 (static QDQ) bundle from an fp32 one, calibrated on captures through the station\'s own preprocessing; refused if it disagrees with fp32 on held-out captures')
    .argument('<bundle>', 'the fp32 bundle')
    .requiredOption('--calibration <dir|labels.csv>', 'captures to calibrate on (the plant\'s own: a few dozen spanning normal and abnormal parts)')
    .requiredOption('--out <dir>', 'the new bundle (must not exist)')
    .option('--version <n>', 'its version (default: the source\'s + 1)', parseNumber(1, Number.MAX_SAFE_INTEGER, true))
    .option('--method <m>', 'activation ranges: minmax | percentile:P | entropy', (v: string): Method => {
      const m = parseMethod(v);
      if (!m) throw new InvalidArgumentError('expected minmax, percentile:P (50 < P ≤ 100) or entropy');
      return m;
    }, { kind: 'minmax' } as Method)
    .option('--holdout <dir|labels.csv>', 'captures for the agreement check (default: every 4th calibration capture, then left out of calibration)')
    .option('--force', 'write the bundle even if verdict agreement < 99.5 % or max |Δp_abnormal| > 0.02')
    .action(async (bundle: string, o: { calibration: string; out: string; version?: number; method: Method; holdout?: string; force?: boolean }) => {
      const methodText = o.method.kind === 'percentile' ? `percentile:${o.method.p}` : o.method.kind;
      try {
        const { dir, report } = await quantizeBundle({ bundle, ...o, methodText, log: (line) => process.stderr.write(`${line}\n`) });
        const a = report.agreement;
        process.stderr.write(`verdict agreement ${(a.verdict_agreement * 100).toFixed(2)} % on ${a.scored} held-out captures; |Δp_abnormal| median ${a.delta_p_abnormal.median.toFixed(5)}, p99 ${a.delta_p_abnormal.p99.toFixed(5)}, max ${a.delta_p_abnormal.max.toFixed(5)}\n`);
        process.stdout.write(`${JSON.stringify({ bundle: dir, ...report })}\n`);
      } catch (err) {
        if (err instanceof XrayError && REFUSALS.has(err.code)) {
          process.stderr.write(`xray-qc model quantize: ${err.code}: ${err.message}\n`);
          process.exitCode = 2;
          return;
        }
        throw err;
      }
    });
}
