import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { DaemonProcess, until } from '../station.js';
import { auditRows, brokerAndWitness, capture, cleanupsAfterEach, makeStation, report } from './rig.js';

/**
 * Fault 12: our own bug in preparation (an exception that is no coded error, injected through the
 * daemon's test hook XRAY_QC_TEST_INJECT_PREPARE_FAULT) is INTERNAL_ERROR, never blamed on the
 * capture: logged with its stack, the capture tried once more, then recorded; the captures beside
 * it are scored as usual and the daemon keeps running.
 */

const cleanups = cleanupsAfterEach();

it('an injected exception in preparation: INTERNAL_ERROR with a logged stack, one retry, one row; other captures scored', async () => {
  const { port, witness } = await brokerAndWitness(cleanups);
  const station = makeStation({ port, settleMs: 200 });
  const daemon = new DaemonProcess(station.config, { XRAY_QC_TEST_INJECT_PREPARE_FAULT: 'buggy' });
  cleanups.push(() => daemon.stop('SIGKILL'));
  daemon.start();
  await daemon.waitFor(/watching the capture folder/);
  await writeFile(join(station.captures, 'a.tif'), capture(11_001));
  await writeFile(join(station.captures, 'buggy.tif'), capture(11_002));
  await writeFile(join(station.captures, 'b.tif'), capture(11_003));
  await until(() => auditRows(station.db).length >= 3, 30_000, 'three rows');
  await until(() => witness.verdicts().length >= 3, 15_000, 'three verdicts');
  const rows = auditRows(station.db);
  const byName = Object.fromEntries(rows.map((r) => [r.file_path.slice(station.captures.length + 1), r]));
  const log = daemon.output.split('\n').filter((l) => l.includes('internal error preparing'));
  const stacks = log.map((l) => (JSON.parse(l) as { stack?: string }).stack ?? '');
  report('12 internal error in preparation', {
    rows: rows.length, reasons: Object.fromEntries(Object.entries(byName).map(([n, r]) => [n, r.reason])), log_lines: log.length,
    verdict: witness.verdicts().find((v) => v.file.endsWith('/buggy.tif'))?.reason,
  });
  expect(rows).toHaveLength(3);
  expect(byName['buggy.tif'].reason).toBe('INTERNAL_ERROR');
  expect(byName['a.tif'].verdict).not.toBe('error');
  expect(byName['b.tif'].verdict).not.toBe('error');
  expect(log).toHaveLength(2); // tried, then tried once more and recorded
  expect(log[0]).toMatch(/trying it once more/);
  expect(log[1]).toMatch(/again: recording it/);
  for (const s of stacks) expect(s).toMatch(/TypeError: injected fault \(test hook\)[^\n]*\n\s+at prepareCapture/);
  expect(witness.verdicts().find((v) => v.file.endsWith('/buggy.tif'))?.reason).toBe('INTERNAL_ERROR');
  expect(daemon.proc?.exitCode).toBeNull(); // still running
});
