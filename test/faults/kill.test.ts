import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { cli } from '../helpers.js';
import { DaemonProcess, until } from '../station.js';
import { auditRows, capture, countLoss, makeStation, report, rng, sleep, SOAK, brokerAndWitness, cleanupsAfterEach, delivered } from './rig.js';

/**
 * Fault 1: `kill -9` at random moments during a 200-capture burst, some of them right after an
 * operator's model activation (the daemon is loading, warming or switching the model then).
 * After the last restart: every capture exactly one audit row, every verdict at the witness.
 */

const KILLS = SOAK ? 20 : 8;
const CAPTURES = 200;

const cleanups = cleanupsAfterEach();

it(`kill -9 ×${KILLS} during a ${CAPTURES}-capture burst (incl. model activation): 0 lost captures, 0 lost verdicts`, async () => {
  const random = rng();
  const { port, witness } = await brokerAndWitness(cleanups);
  const station = makeStation({ port, settleMs: 200 });
  cpSync(join(station.models, 'tiny-v1'), join(station.models, 'tiny-v2'), { recursive: true });
  writeFileSync(join(station.models, 'active'), 'tiny-v1\n');

  // The burst: CAPTURES files over about the time the kills take, half renamed into place.
  const files: string[] = [];
  const spreadMs = KILLS * 1800;
  const writer = (async () => {
    for (let i = 0; i < CAPTURES; i++) {
      const path = join(station.captures, `cap-${String(i).padStart(4, '0')}.tif`);
      if (i % 2) await writeFile(path, capture(10_000 + i));
      else {
        await writeFile(`${path}.part`, capture(10_000 + i));
        await rename(`${path}.part`, path);
      }
      files.push(path);
      await sleep(spreadMs / CAPTURES);
    }
  })();

  const kills: Array<{ after_ms: number; rows: number; activation: boolean }> = [];
  let target = 'tiny-v2';
  for (let k = 0; k < KILLS; k++) {
    const daemon = new DaemonProcess(station.config);
    cleanups.push(() => daemon.stop('SIGKILL'));
    daemon.start();
    const activation = k % 3 === 1;
    let wait = 300 + random() * 2200;
    if (activation) {
      await daemon.waitFor(/watching the capture folder/, 30_000);
      const r = cli(['models', 'activate', '--config', station.config, target]);
      expect(r.code, r.stderr).toBe(0);
      target = target === 'tiny-v2' ? 'tiny-v1' : 'tiny-v2';
      wait = 600 + random() * 1200; // the daemon polls `active` every second, then loads and warms
    }
    await sleep(wait);
    const code = await daemon.stop('SIGKILL');
    expect(code, daemon.output.slice(-2000)).toBe(null);
    kills.push({ after_ms: Math.round(wait), rows: auditRows(station.db).length, activation });
  }
  await writer;

  const last = new DaemonProcess(station.config);
  cleanups.push(() => last.stop('SIGKILL'));
  last.start();
  await until(() => delivered(station.db, CAPTURES, witness), 180_000, 'every capture recorded, published and received');
  await sleep(1000); // anything more (a second row) would show now
  const loss = countLoss(station.db, files, witness);
  const active = readFileSync(join(station.models, 'active'), 'utf8').trim();
  expect(await last.stop()).toBe(0);
  report('1 kill -9 during a burst', {
    kills: kills.length, kills_after_activation: kills.filter((k) => k.activation).length,
    rows_at_each_kill: kills.map((k) => k.rows), ...loss, active_after: active,
  });
  expect(loss.not_exactly_one_row).toBe(0);
  expect(loss.verdicts_missing_at_subscriber).toBe(0);
  expect(loss.rows).toBe(CAPTURES);
  expect(['tiny-v1', 'tiny-v2']).toContain(active);
  // the kills really landed during the burst, not after it
  expect(kills.filter((k) => k.rows < CAPTURES).length).toBeGreaterThanOrEqual(KILLS - 1);
});
