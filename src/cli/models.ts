import { existsSync } from 'node:fs';
import { cp, readFile, rename, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { compareShadow, MIN_LABELLED_FOR_VERDICT } from '../audit/shadow.js';
import { XrayError } from '../errors.js';
import { loadBundle, readManifest, resolveBundleDir, sha256File } from '../model/bundle.js';
import { parseManifest, type Manifest } from '../model/manifest.js';
import { bundleFolderName, fsyncDir, listRepository, readActive, readShadow, setActive, setShadow, STAGING } from '../model/repository.js';
import { loadConfig, modelOptions, type Config } from '../service/config.js';
import { checkGolden } from '../sync/golden.js';
import { loadPublicKeys } from '../sync/signing.js';
import { HOLD_FILE } from '../sync/syncer.js';
import { Refused, unfitReason, vetOffer } from '../sync/vet.js';
import { iso, openDb } from './db.js';
import { formatOf, formatOption, show, writeRows, type Format, type View } from './format.js';
import { ScoringSession } from './scoring.js';

/** `xray-qc models …`: the operator's side of the station's model repository (docs/model-sync.md). */

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
    return `${m.name} v${m.version} did worse than the active model as a shadow candidate: balanced accuracy ${(100 * b).toFixed(1)} % against ${(100 * a).toFixed(1)} % on ${c.labelled.n} labelled captures both scored`;
  } finally {
    db.close();
  }
}

interface Target { folder: string; dir: string; manifest: Manifest }

interface ModelRow {
  folder: string; active: boolean; shadow: boolean; name: string | null; version: number | null; sha256: string | null; bundle_sha256: string | null;
  created_at: string | null; fit: boolean | null; synthetic: boolean; untrained: boolean; error: string | null;
}

const MODELS_VIEW: View<ModelRow> = {
  columns: [
    { head: '', text: (r) => `${r.active ? '*' : r.shadow ? 's' : ' '}${r.fit === false ? '!' : ' '}` },
    { head: 'folder', text: (r) => r.folder },
    { head: 'version', text: (r) => show.text(r.version), right: true },
    { head: 'created_at', text: (r) => show.text(r.created_at) },
    { head: 'onnx', text: (r) => show.text(r.sha256?.slice(0, 12)) },
    { head: 'bundle', text: (r) => show.text(r.bundle_sha256?.slice(0, 12)) },
    { head: 'note', text: (r) => r.error ?? (r.fit === false ? 'failed the fitness rule' : r.untrained ? 'untrained' : r.synthetic ? 'synthetic' : '') },
  ],
  fields: ['folder', 'active', 'shadow', 'name', 'version', 'sha256', 'bundle_sha256', 'created_at', 'fit', 'synthetic', 'untrained', 'error'],
};

async function findBundle(repo: string, version: string): Promise<Target> {
  const active = await readActive(repo);
  const entries = await listRepository(repo);
  const current = entries.find((e) => e.folder === active)?.manifest;
  const target = entries.find((e) => e.folder === version)
    ?? entries.find((e) => e.manifest && String(e.manifest.version) === version.replace(/^v/, '') && (!current || e.manifest.name === current.name));
  if (!target?.manifest) {
    const known = entries.filter((e) => e.manifest).map((e) => e.folder);
    throw new XrayError('USAGE_INVALID', `no bundle '${version}' in ${repo} (installed: ${known.join(', ') || 'none'}; xray-qc models install BUNDLE_DIR adds one)`);
  }
  await loadBundle(await resolveBundleDir(target.dir)); // verify sizes and sha256 before pointing at it
  return { folder: target.folder, dir: target.dir, manifest: target.manifest };
}

/** A refusal: one line `xray-qc models CMD: CODE: message`, exit 2. */
function refuse(cmd: string, code: string, message: string): void {
  process.stderr.write(`xray-qc models ${cmd}: ${code}: ${message}\n`);
  process.exitCode = 2;
}

export function registerModels(program: Command): void {
  const models = program.command('models').description("the station's model repository (operator)");
  const sub = (name: string): Command => models.command(name).option('--config <file>', 'station configuration (for model.dir)', 'config.yaml');
  const configOf = (cmd: Command): Config => loadConfig(cmd.opts<{ config: string }>().config);
  const repoOf = (cmd: Command): string => configOf(cmd).model.dir;

  formatOption(sub('list').description('bundles in the repository; * marks the active one, s the shadow candidate, ! one that failed the fitness rule'), true)
    .action(async function (this: Command, o: { format: Format; json?: boolean }) {
      const repo = repoOf(this);
      const active = await readActive(repo);
      const shadow = await readShadow(repo);
      const rows: ModelRow[] = [];
      for (const e of await listRepository(repo)) {
        const bundleSha256 = e.manifest ? await sha256File(join(e.dir, 'manifest.json')).catch(() => null) : null;
        rows.push({ folder: e.folder, active: e.folder === active, shadow: e.folder === shadow, name: e.manifest?.name ?? null, version: e.manifest?.version ?? null,
          sha256: e.manifest?.files['model.onnx']?.sha256 ?? null, bundle_sha256: bundleSha256, created_at: e.manifest?.created_at ?? null,
          fit: e.manifest?.fit ?? null, synthetic: e.manifest?.synthetic ?? false, untrained: e.manifest?.untrained ?? false, error: e.error ?? null });
      }
      writeRows(rows, formatOf(o), MODELS_VIEW);
    });

  sub('install').description("verify BUNDLE_DIR as model sync would (signature where sync requires one, schema, version, input size, fitness, every file's sha256, the graph, golden samples) and copy it into model.dir; the first bundle of an empty repository becomes active")
    .argument('<bundle_dir>')
    .option('--activate', 'make it active as well (as `models activate` would)')
    .option('--force', 'install a bundle that failed the fitness rule (fit: false) or is not newer than the active version')
    .action(async function (this: Command, dir: string, o: { activate?: boolean; force?: boolean }) {
      const r = await install(configOf(this), resolve(dir), o);
      if (r) process.stdout.write(`${JSON.stringify(r)}\n`);
    });

  sub('unhold').description("lift the hold an operator's rollback (or the fallback) put on model sync: the channel's version is installed at the next check")
    .action(async function (this: Command) {
      const hold = join(repoOf(this), HOLD_FILE);
      const had = await rm(hold).then(() => true, () => false);
      process.stdout.write(had ? 'sync hold lifted: the next check installs what the channel points to\n' : 'no sync hold\n');
    });

  sub('shadow').description('run VERSION beside the active model as a shadow candidate (scored while the line is idle, never published), or `off`')
    .argument('<version|off>')
    .option('--force', 'shadow a bundle that failed the fitness rule (fit: false)')
    .action(async function (this: Command, version: string, o: { force?: boolean }) {
      const repo = repoOf(this);
      if (version === 'off') {
        await setShadow(repo, null);
        process.stdout.write('shadow candidate off; a running daemon drops it within seconds\n');
        return;
      }
      const target = await findBundle(repo, version);
      if (target.folder === (await readActive(repo))) throw new XrayError('USAGE_INVALID', `${target.folder} is the active model: a shadow candidate must be another bundle`);
      if (target.manifest.fit === false && !o.force) return refuse('shadow', 'MODEL_UNFIT', `${unfitReason(target.manifest)}; --force shadows it anyway`);
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

  sub('activate').description('make VERSION (or a bundle folder) active; a running daemon switches between two captures, and sync holds off the channel\'s version until it changes or `models unhold`. Refused when the bundle failed the fitness rule, or ran as a shadow candidate and did worse on 30+ labelled captures (unless --force)')
    .argument('<version>')
    .option('--force', 'activate even if the bundle failed the fitness rule or the shadow comparison says it is worse')
    .action(async function (this: Command, version: string, o: { force?: boolean }) {
      const repo = repoOf(this);
      const target = await findBundle(repo, version);
      if (target.manifest.fit === false && !o.force) return refuse('activate', 'MODEL_UNFIT', `${unfitReason(target.manifest)}; --force activates it anyway`);
      const refusal = shadowRefusal(this.opts<{ config: string }>().config, target.manifest);
      if (refusal && !o.force) return refuse('activate', 'MODEL_DID_WORSE', `${refusal}; --force activates it anyway`);
      await setActive(repo, target.folder);
      process.stdout.write(`active: ${target.folder} (${bundleFolderName(target.manifest)}); a running daemon switches within seconds and records it in events\n`);
    });
}

/**
 * `models install`: the checks of model sync (vet.ts, then files, graph and golden samples in a
 * staging folder), then a rename into the repository — the same steps as a sync install, from a
 * folder instead of a registry. Refusals print one line and exit 2; nothing is left in staging.
 */
async function install(c: Config, source: string, o: { activate?: boolean; force?: boolean }): Promise<Record<string, unknown> | null> {
  const repo = c.model.dir;
  if (existsSync(join(repo, 'manifest.json'))) throw new XrayError('USAGE_INVALID', `model.dir ${repo} is a single bundle, not a repository: point model.dir at a folder for the repository`);
  let manifestBytes: Buffer;
  try {
    manifestBytes = await readFile(join(source, 'manifest.json'));
  } catch (err) {
    throw new XrayError('MODEL_NOT_FOUND', `${source}: no manifest.json (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): give a bundle folder`);
  }
  const sigText = await readFile(join(source, 'manifest.sig'), 'utf8').catch(() => null);
  const s = c.sync;
  const activeFolder = await readActive(repo);
  const active = activeFolder ? await readManifest(join(repo, activeFolder)).catch(() => null) : null;
  // A version is installed once: the same bytes again is a no-op, other bytes under the same version are refused.
  const offered = ((): Manifest | null => { try { return parseManifest(JSON.parse(manifestBytes.toString('utf8'))); } catch { return null; } })();
  const existing = offered ? join(repo, bundleFolderName(offered), 'manifest.json') : null;
  if (offered && existing && existsSync(existing)) {
    const folder = bundleFolderName(offered);
    if ((await readFile(existing)).equals(manifestBytes)) return { installed: folder, already: true, active: activeFolder === folder };
    refuse('install', 'SYNC_VERSION_REFUSED', `${folder} is already installed with another manifest: a version is installed once (give the new bundle a new version)`);
    return null;
  }
  let manifest: Manifest;
  try {
    manifest = vetOffer({ manifestBytes, sigText }, {
      requireSignature: s?.require_signature ?? false, trustedKeys: s?.require_signature ? await loadPublicKeys(s.trusted_keys) : [],
      maxInputPixels: s?.max_input_pixels ?? 16_000_000, allowUnfit: (s?.allow_unfit ?? false) || !!o.force,
    }, o.force ? null : active);
  } catch (err) {
    if (!(err instanceof Refused)) throw err;
    const hint = err.step === 'fitness' || err.step === 'version' ? '; --force installs it anyway' : '';
    refuse('install', err.code, `${err.message}${hint}`);
    return null;
  }
  const folder = bundleFolderName(manifest);
  const target = join(repo, folder);
  const staging = join(repo, STAGING, folder);
  await rm(staging, { recursive: true, force: true });
  try {
    for (const name of [...Object.keys(manifest.files), 'manifest.json', ...(sigText ? ['manifest.sig'] : [])]) {
      await cp(join(source, name), join(staging, name)).catch((err: NodeJS.ErrnoException) => {
        throw new Refused('download', `${join(source, name)}: ${err.code === 'ENOENT' ? 'listed in the manifest but missing' : err.message}`);
      });
    }
    // sizes and sha256, then the graph in ONNX Runtime with the station's providers, then the golden samples
    let session: ScoringSession;
    try {
      session = await ScoringSession.open(staging, { ...modelOptions(c), decode: { maxPixels: c.capture.max_pixels } });
    } catch (err) {
      const code = (err as { code?: string }).code;
      throw new Refused(code === 'MODEL_FILE_MISMATCH' ? 'download' : 'load', `${code ?? 'MODEL_LOAD_FAILED'}: ${(err as Error).message}`);
    }
    try {
      const mismatch = await checkGolden(staging, (file) => session.score(file));
      if (mismatch) throw new Refused('golden', mismatch);
    } finally {
      await session.close();
    }
    await rename(staging, target);
    fsyncDir(repo);
  } catch (err) {
    await rm(staging, { recursive: true, force: true });
    if (!(err instanceof Refused)) throw err;
    refuse('install', err.code, err.message);
    return null;
  }
  const activate = o.activate || !activeFolder || !(await stat(join(repo, activeFolder)).then(() => true, () => false));
  if (activate) await setActive(repo, folder);
  return {
    installed: folder, active: activate, signature: sigText && s?.require_signature ? 'verified' : sigText ? 'present, not checked (sync.require_signature is off or sync is not configured)' : 'none',
    golden: existsSync(join(target, 'golden', 'expected.json')) ? 'matched' : 'none in the bundle', fit: manifest.fit ?? null,
  };
}
