import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Aedes } from 'aedes';
import { openDatabaseReadOnly } from '../record/database.js';
import { defaultDemoDir, ensureDemoModel } from '../model/demo/demo-model.js';
import { synthElectrode } from '../tools/synth.js';
import { encodeTiff16 } from '../tools/tiff-writer.js';

/**
 * `npm run bench:rss [-- N]`: the daemon's own peak memory (VmHWM of the `xray-qc run` process)
 * through a burst of N captures (default 30) with the full demo model.
 */
async function main(): Promise<void> {
  const n = Number(process.argv[2]) || 30;
  const root = await mkdtemp(join(tmpdir(), 'xray-qc-bench-rss-'));
  const model = await ensureDemoModel(defaultDemoDir());
  const broker = await Aedes.createBroker();
  const server = createServer(broker.handle);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const captures = join(root, 'captures');
  await mkdir(captures);
  const config = join(root, 'config.yaml');
  await writeFile(config, `station_id: rss\ncapture: {dir: ./captures, settle_ms: 100}\nmodel: {dir: ${model}}\ndatabase: {path: ./audit.db}\nmqtt: {url: "mqtt://127.0.0.1:${(server.address() as AddressInfo).port}", password_env: null}\n`);
  const cli = fileURLToPath(new URL('../../bin/xray-qc.js', import.meta.url));
  const child = spawn(process.execPath, [cli, 'run', '--config', config], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  while (!out.includes('watching the capture folder')) await new Promise((r) => setTimeout(r, 100));
  const hwm = async (): Promise<number> => Number(/VmHWM:\s+(\d+)/.exec(await readFile(`/proc/${child.pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
  const afterStart = await hwm();
  for (let i = 0; i < n; i++) {
    const img = synthElectrode(7000 + i, null, { width: 1145, height: 2072 });
    await writeFile(join(captures, `c-${i}.tif`), encodeTiff16(img.width, img.height, img.data, { compression: 'lzw' }));
  }
  const db = openDatabaseReadOnly(join(root, 'audit.db'));
  const done = db.prepare('SELECT count(*) AS n FROM inspections WHERE published_at IS NOT NULL');
  while ((done.get() as { n: number }).n < n) await new Promise((r) => setTimeout(r, 200));
  db.close();
  const peak = await hwm();
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  await new Promise<void>((r) => broker.close(() => r()));
  server.close();
  await rm(root, { recursive: true, force: true });
  console.log(`daemon peak RSS (VmHWM): ${afterStart.toFixed(0)} MiB after start (model loaded and warmed), ${peak.toFixed(0)} MiB after ${n} captures (LZW, 1145×2072, full model)`);
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
