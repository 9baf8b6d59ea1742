import { execFileSync, spawn } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Aedes } from 'aedes';
import { defaultDemoDir, ensureDemoModel } from '../model/demo/demo-model.js';
import { openDatabaseReadOnly } from '../record/database.js';
import { synthElectrode } from '../tools/synth.js';
import { encodeTiff16 } from '../tools/tiff-writer.js';

/**
 * `npm run bench:shadow [-- ROUNDS [GAP_MS]]`: what a shadow candidate costs the active path on
 * this CPU station. The daemon runs the full demo model; captures arrive one at a time, GAP_MS
 * apart (default 2,000: the line is idle after each, so the candidate — the same graph as v3 —
 * starts scoring, and the next capture arrives while it runs). Rounds alternate shadow off and
 * on (`xray-qc models shadow 3|off`, the daemon follows the repository). Per capture: latency
 * from the file's mtime to its audit row, and the audit row's own inference time.
 */

const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s.length ? s[Math.floor(s.length / 2)] : NaN; };

async function main(): Promise<void> {
  const rounds = Number(process.argv[2]) || 4;
  const gapMs = Number(process.argv[3]) || 2000;
  const perRound = 8;
  const root = await mkdtemp(join(tmpdir(), 'xray-qc-bench-shadow-'));
  const demo = await ensureDemoModel(defaultDemoDir());
  const models = join(root, 'models');
  await cp(demo, join(models, 'demo-v2'), { recursive: true });
  await cp(demo, join(models, 'demo-v3'), { recursive: true });
  const manifest = JSON.parse(await readFile(join(models, 'demo-v3', 'manifest.json'), 'utf8')) as { version: number };
  await writeFile(join(models, 'demo-v3', 'manifest.json'), JSON.stringify({ ...manifest, version: manifest.version + 1 }, null, 2));
  await writeFile(join(models, 'active'), 'demo-v2\n');
  const broker = await Aedes.createBroker();
  const server = createServer(broker.handle);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const captures = join(root, 'captures');
  await mkdir(captures);
  const config = join(root, 'config.yaml');
  await writeFile(config, `station_id: shadow\ncapture: {dir: ./captures, settle_ms: 100}\nmodel: {dir: ./models}\ndatabase: {path: ./audit.db}\nmqtt: {url: "mqtt://127.0.0.1:${(server.address() as AddressInfo).port}", password_env: null}\n`);
  const cli = fileURLToPath(new URL('../../bin/xray-qc.js', import.meta.url));
  const child = spawn(process.execPath, [cli, 'run', '--config', config], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  const waitFor = async (text: string, count = 1): Promise<void> => { while (out.split(text).length - 1 < count) await new Promise((r) => setTimeout(r, 50)); };
  await waitFor('watching the capture folder');
  const files: Buffer[] = [];
  for (let i = 0; i < perRound; i++) {
    const img = synthElectrode(9000 + i, null, { width: 1145, height: 2072 });
    files.push(encodeTiff16(img.width, img.height, img.data, { compression: 'lzw' }));
  }
  const db = openDatabaseReadOnly(join(root, 'audit.db'));
  const rows = db.prepare('SELECT file_path, captured_at, scored_at, infer_ms FROM inspections WHERE file_path LIKE ?');
  const shadowRows = db.prepare('SELECT count(*) AS n FROM shadow_scores');
  const results: Record<'off' | 'on', { latency: number[]; infer: number[]; shadowed: number }> = { off: { latency: [], infer: [], shadowed: 0 }, on: { latency: [], infer: [], shadowed: 0 } };
  let loads = 0;
  for (let r = 0; r < rounds * 2; r++) {
    const on = r % 2 === 1;
    execFileSync(process.execPath, [cli, 'models', 'shadow', on ? String(manifest.version + 1) : 'off', '--config', config], { stdio: 'ignore' });
    if (on) await waitFor('shadow candidate loaded', ++loads);
    await new Promise((res) => setTimeout(res, 3000));
    const before = (shadowRows.get() as { n: number }).n;
    for (let i = 0; i < perRound; i++) {
      await writeFile(join(captures, `r${r}-${i}.tif`), files[i]);
      await new Promise((res) => setTimeout(res, gapMs));
    }
    const mine = (): Array<{ captured_at: string; scored_at: string; infer_ms: number }> => rows.all(`%/r${r}-%`) as Array<{ captured_at: string; scored_at: string; infer_ms: number }>;
    while (mine().length < perRound) await new Promise((res) => setTimeout(res, 100));
    const k = on ? 'on' : 'off';
    for (const row of mine()) {
      results[k].latency.push(Date.parse(row.scored_at) - Date.parse(row.captured_at));
      results[k].infer.push(row.infer_ms);
    }
    results[k].shadowed += (shadowRows.get() as { n: number }).n - before;
  }
  db.close();
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  server.close();
  await rm(root, { recursive: true, force: true });
  console.log(`| shadow (${rounds} rounds each, ${perRound} captures ${gapMs} ms apart, full demo model) | median latency mtime → row | median inference | captures shadow-scored |\n|---|---|---|---|`);
  for (const k of ['off', 'on'] as const) {
    const x = results[k];
    console.log(`| ${k} | ${median(x.latency).toFixed(0)} ms | ${median(x.infer).toFixed(0)} ms | ${x.shadowed} of ${x.latency.length} |`);
  }
  console.log(`ratio on/off: latency ${(median(results.on.latency) / median(results.off.latency)).toFixed(3)}, inference ${(median(results.on.infer) / median(results.off.infer)).toFixed(3)}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
