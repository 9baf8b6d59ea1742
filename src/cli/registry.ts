import { rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { loadBundle, resolveBundleDir, sha256File } from '../model/bundle.js';
import { compareShadow, MIN_LABELLED_FOR_VERDICT } from '../audit/shadow.js';
import { bundleFolderName, listRepository, readActive, readShadow, setActive, setShadow } from '../model/repository.js';
import { ScoringSession } from './scoring.js';
import { loadConfig } from '../service/config.js';
import { addGolden } from '../sync/golden.js';
import { publish, serveRegistry } from '../sync/registry.js';
import { keygen, signBundle } from '../sync/signing.js';
import { HOLD_FILE } from '../sync/syncer.js';
import { iso, openDb } from './db.js';
import { parseNumber } from './options.js';

/** Why the shadow comparison speaks against activating `m`, or null (no comparison, too few labels, not worse). */
function shadowRefusal(config: string, m: { name: string; version: number }): string | null {
  let db;
  try {
    db = openDb({ config });
  } catch {
    return null; // no audit database yet: nothing to compare
  }
  try {
    const c = compareShadow(db, { candidate: m });
    const [a, b] = [c.labelled.active.balanced_accuracy, c.labelled.candidate.balanced_accuracy];
    if (!c.candidate || c.labelled.n < MIN_LABELLED_FOR_VERDICT || a === null || b === null || b >= a) return null;
    return `${m.name} v${m.version} did worse than the active model as a shadow candidate: balanced accuracy ${b.toFixed(1)} % against ${a.toFixed(1)} % on ${c.labelled.n} labelled captures both scored`;
  } finally {
    db.close();
  }
}

/** Training-host commands (keygen, golden, sign, registry) and the operator's `models`. */
export function registerSyncCommands(program: Command): void {
  const model = program.commands.find((c) => c.name() === 'model')!;

  model.command('keygen').description('an ed25519 key pair for signing bundles (private.pem, public.pem)')
    .requiredOption('--out <dir>', 'where to write the keys (refuses to overwrite)')
    .action(async (o: { out: string }) => {
      process.stdout.write(`${JSON.stringify(await keygen(o.out))}\n`);
    });

  model.command('golden').description("score TIFFs with the bundle and store them as its smoke test (run before signing)")
    .option('--tolerance <t>', 'allowed |Δp_abnormal| on the station', parseNumber(0, 1), 0.001)
    .argument('<bundle>').argument('<tiffs...>')
    .action(async (bundle: string, tiffs: string[], o: { tolerance: number }) => {
      const session = await ScoringSession.open(bundle);
      try {
        const expected = await addGolden(resolve(bundle), (file) => session.score(file), tiffs, o.tolerance);
        process.stdout.write(`${JSON.stringify(expected)}\n`);
      } finally {
        await session.close();
      }
    });

  model.command('sign').description('write manifest.sig (ed25519 over the exact bytes of manifest.json)')
    .requiredOption('--key <private.pem>', 'the private key')
    .argument('<bundle>')
    .action(async (bundle: string, o: { key: string }) => {
      await loadBundle(bundle); // sign only what verifies
      process.stdout.write(`${await signBundle(resolve(bundle), o.key)}\n`);
    });

  const registry = program.command('registry').description('a static model registry for stations to sync from');
  registry.command('publish').description('lay the bundle out as <registry>/<name>/<version>/ and point the channel at it')
    .requiredOption('--registry <dir>').option('--channel <name>', 'channel', 'stable')
    .argument('<bundle>')
    .action(async (bundle: string, o: { registry: string; channel: string }) => {
      await loadBundle(bundle);
      process.stdout.write(`${JSON.stringify(await publish(resolve(bundle), resolve(o.registry), o.channel))}\n`);
    });
  registry.command('serve').description('serve the registry over HTTP (GET/HEAD, ETag); nginx or any static server works too')
    .requiredOption('--registry <dir>')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port', parseNumber(0, 65535, true), 8080)
    .action(async (o: { registry: string; host: string; port: number }) => {
      const server = serveRegistry(resolve(o.registry));
      await new Promise<void>((r) => server.listen(o.port, o.host, r));
      const addr = server.address() as { address: string; port: number };
      process.stdout.write(`serving ${resolve(o.registry)} on http://${addr.address}:${addr.port}/\n`);
      const stop = (): void => { server.close(); process.exit(0); };
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
      await new Promise<void>(() => undefined);
    });

  const models = program.command('models').description("the station's model repository (operator)");
  const sub = (name: string): Command => models.command(name).option('--config <file>', 'station configuration (for model.dir)', 'config.yaml');
  const repoOf = (cmd: Command): string => loadConfig(cmd.opts<{ config: string }>().config).model.dir;

  sub('list').description('bundles in the repository; * marks the active one, s the shadow candidate')
    .option('--json')
    .action(async function (this: Command, o: { json?: boolean }) {
      const repo = repoOf(this);
      const active = await readActive(repo);
      const shadow = await readShadow(repo);
      for (const e of await listRepository(repo)) {
        const bundleSha256 = e.manifest ? await sha256File(join(e.dir, 'manifest.json')).catch(() => null) : null;
        const row = { folder: e.folder, active: e.folder === active, shadow: e.folder === shadow, name: e.manifest?.name ?? null, version: e.manifest?.version ?? null,
          sha256: e.manifest?.files['model.onnx']?.sha256 ?? null, bundle_sha256: bundleSha256, created_at: e.manifest?.created_at ?? null, error: e.error ?? null };
        process.stdout.write(o.json ? `${JSON.stringify(row)}\n`
          : `${row.active ? '*' : row.shadow ? 's' : ' '} ${e.folder.padEnd(40)} v${String(row.version ?? '?').padEnd(5)} ${row.created_at ?? ''} ${row.sha256 ? `onnx ${row.sha256.slice(0, 12)} bundle ${row.bundle_sha256?.slice(0, 12)}` : row.error}\n`);
      }
    });

  sub('unhold').description("lift the hold an operator's rollback (or the fallback) put on model sync: the channel's version is installed at the next check")
    .action(async function (this: Command) {
      const hold = join(repoOf(this), HOLD_FILE);
      const had = await rm(hold).then(() => true, () => false);
      process.stdout.write(had ? 'sync hold lifted: the next check installs what the channel points to\n' : 'no sync hold\n');
    });

  const findBundle = async (repo: string, version: string): Promise<{ folder: string; dir: string; manifest: NonNullable<Awaited<ReturnType<typeof listRepository>>[number]['manifest']> }> => {
    const active = await readActive(repo);
    const entries = await listRepository(repo);
    const current = entries.find((e) => e.folder === active)?.manifest;
    const target = entries.find((e) => e.folder === version)
      ?? entries.find((e) => e.manifest && String(e.manifest.version) === version.replace(/^v/, '') && (!current || e.manifest.name === current.name));
    if (!target?.manifest) throw new Error(`no bundle '${version}' in ${repo} (see xray-qc models list)`);
    await loadBundle(await resolveBundleDir(target.dir)); // verify sizes and sha256 before pointing at it
    return { folder: target.folder, dir: target.dir, manifest: target.manifest };
  };

  sub('shadow').description('run VERSION beside the active model as a shadow candidate (scored while the line is idle, never published), or `off`')
    .argument('<version|off>')
    .action(async function (this: Command, version: string) {
      const repo = repoOf(this);
      if (version === 'off') {
        await setShadow(repo, null);
        process.stdout.write('shadow candidate off; a running daemon drops it within seconds\n');
        return;
      }
      const target = await findBundle(repo, version);
      if (target.folder === (await readActive(repo))) throw new Error(`${target.folder} is the active model: a shadow candidate must be another bundle`);
      await setShadow(repo, target.folder);
      process.stdout.write(`shadow: ${target.folder}; a running daemon loads it within seconds (xray-qc models compare shows how it does)\n`);
    });

  sub('compare').description('the shadow candidate against the active model: coverage, verdict agreement, |Δp|, flips, balanced accuracy on labelled captures')
    .option('--since <iso>')
    .action(function (this: Command, o: { since?: string }) {
      const db = openDb({ config: this.opts<{ config: string }>().config });
      try {
        process.stdout.write(`${JSON.stringify(compareShadow(db, { since: o.since ? iso(o.since) : undefined }), null, 2)}\n`);
      } finally {
        db.close();
      }
    });

  sub('activate').description('make VERSION (or a bundle folder) active; a running daemon switches between two captures, and sync holds off the channel\'s version until it changes or `models unhold`. Refused when VERSION ran as a shadow candidate and did worse on 30+ labelled captures (unless --force)')
    .argument('<version>')
    .option('--force', 'activate even if the shadow comparison says the candidate is worse')
    .action(async function (this: Command, version: string, o: { force?: boolean }) {
      const repo = repoOf(this);
      const target = await findBundle(repo, version);
      const refusal = shadowRefusal(this.opts<{ config: string }>().config, target.manifest);
      if (refusal && !o.force) {
        process.stderr.write(`xray-qc models activate: ${refusal}; --force activates it anyway\n`);
        process.exitCode = 2;
        return;
      }
      await setActive(repo, target.folder);
      process.stdout.write(`active: ${target.folder} (${bundleFolderName(target.manifest)}); a running daemon switches within seconds and records it in events\n`);
    });
}
