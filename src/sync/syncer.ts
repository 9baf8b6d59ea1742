import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import type { ErrorCode } from '../errors.js';
import type { Component } from '../events.js';
import type { Model, OpenModel } from '../infer/model.js';
import type { Bundle } from '../model/bundle.js';
import { bundleFolderName, fsyncDir, STAGING } from '../model/repository.js';
import type { Store } from '../record/store.js';
import { checkRegistryUrl, fetchSmall, fetchToFile, FetchError } from './http.js';
import type { ChannelPointer } from './registry.js';
import { loadPublicKeys } from './signing.js';
import { Refused, vetOffer, type SyncStep } from './vet.js';

export type { SyncStep } from './vet.js';

/** The `sync` section of the station's config. */
export interface SyncSettings {
  url: string;
  channel: string;
  interval_s: number;
  trusted_keys: string[];
  require_signature: boolean;
  allow_insecure_http: boolean;
  max_manifest_bytes: number;
  max_input_pixels: number;
  /** `activate` (default): a verified new version serves at once; `shadow`: it runs as the shadow candidate instead. */
  mode: 'activate' | 'shadow';
  /** Install a bundle whose manifest says `fit: false` (refused by default: step `fitness`). */
  allow_unfit: boolean;
}

export interface SyncResult {
  result: 'activated' | 'shadowed' | 'up-to-date' | 'refused' | 'unreachable' | 'skipped' | 'held';
  /** For `refused` and `unreachable`. */
  code?: ErrorCode;
  step?: SyncStep;
  message: string;
  name?: string;
  version?: number;
}

/** In the repository: the channel pointer an operator's rollback (or the fallback) holds back. */
export const HOLD_FILE = '.sync-hold';

export interface SyncContext {
  /** null: sync is not configured. */
  settings: SyncSettings | null;
  store: Store;
  logger: Logger;
  repo: string;
  /** The serving bundle, or null before the first model is installed. */
  active: () => Bundle | null;
  openModel: OpenModel;
  /** The bundle's golden samples scored by `model`: the first mismatch, or null. */
  checkGolden: (model: Model) => Promise<string | null>;
  /** Makes a verified, loaded bundle the one that scores (between two captures). */
  activate: (model: Model, folder: string) => Promise<void>;
  /** `sync.mode: shadow`: makes it the shadow candidate instead (the caller closes `model`; the shadow runner loads its own). */
  shadow: (model: Model, folder: string) => Promise<void>;
  /** The shadow candidate's folder, or null. */
  shadowFolder: () => Promise<string | null>;
}

/**
 * Pulls new model versions from the registry, in the order careful updaters use (TUF, Mender,
 * RAUC, Triton): pointer → manifest + signature → no rollback → station can run it → download
 * into staging with size and sha256 limits → load beside the serving model, warm up, golden
 * samples → atomic activation. Any failure leaves the serving model alone, writes an `events`
 * row naming the step, and the same pointer is not tried again until it changes (or a restart).
 */
export class Syncer implements Component {
  readonly name = 'sync';
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<SyncResult> | null = null;
  private etag: string | undefined;
  /** A pointer whose install was refused: not tried again by the interval checks (cmd/sync does). */
  private failedPointer: string | null = null;
  private lastPointer: string | null = null;

  constructor(private readonly ctx: SyncContext) {}

  async start(): Promise<void> {
    const s = this.ctx.settings;
    if (!s) return;
    checkRegistryUrl(s.url, s.allow_insecure_http);
    await loadPublicKeys(s.trusted_keys); // unreadable keys are a configuration error at start
    this.timer = setInterval(() => void this.check('interval'), s.interval_s * 1000);
    this.timer.unref();
    setTimeout(() => void this.check('start'), 1000).unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running?.catch(() => undefined);
  }

  private get holdFile(): string {
    return join(this.ctx.repo, HOLD_FILE);
  }

  /**
   * After an operator's rollback or an automatic fallback: do not re-install what the channel
   * points to now — not by the interval checks, not by a cmd/sync request; resume when it points
   * to something new, or when an operator lifts the hold (`xray-qc models unhold`). Kept in the
   * repository, so a restart does not undo the rollback.
   */
  async hold(): Promise<void> {
    if (!this.lastPointer) return;
    await writeFile(this.holdFile, `${this.lastPointer}\n`);
  }

  /** The held pointer, read on every check: the operator's CLI lifts it by removing the file. */
  private held(): Promise<string | null> {
    return readFile(this.holdFile, 'utf8').then((t) => t.trim() || null, () => null);
  }

  /** One check at a time; a request during a check gets that check's result. */
  check(reason: string, force = false): Promise<SyncResult> {
    if (!this.ctx.settings) return Promise.resolve({ result: 'skipped', message: 'sync is not configured' });
    this.running ??= this.run(reason, force).finally(() => { this.running = null; });
    return this.running;
  }

  private async run(reason: string, force: boolean): Promise<SyncResult> {
    const s = this.ctx.settings!;
    const log = this.ctx.logger;
    let pointer: ChannelPointer;
    let pointerKey: string;
    try {
      const r = await fetchSmall(`${s.url}/channels/${s.channel}.json`, 64 * 1024, { etag: force ? undefined : this.etag });
      if (r.status === 304) return { result: 'up-to-date', message: 'channel pointer unchanged' };
      pointer = JSON.parse(r.body.toString('utf8')) as ChannelPointer;
      if (typeof pointer.name !== 'string' || !Number.isInteger(pointer.version) || typeof pointer.path !== 'string' || pointer.path.includes('..')) {
        throw new Refused('pointer', 'channel pointer is malformed');
      }
      pointerKey = createHash('sha256').update(r.body).digest('hex');
      this.lastPointer = pointerKey;
      this.etag = r.etag ?? undefined;
    } catch (err) {
      if (err instanceof Refused) return this.refused(err, undefined);
      const message = `registry unreachable: ${(err as Error).message}`;
      log.warn({ reason }, message);
      return { result: 'unreachable', code: 'SYNC_UNREACHABLE', message };
    }
    const active = this.ctx.active()?.manifest ?? null; // null: the station's first model
    if (active && pointer.name === active.name && pointer.version === active.version) return { result: 'up-to-date', message: `${active.name} v${active.version} is active`, name: active.name, version: active.version };
    if (s.mode === 'shadow' && (await this.ctx.shadowFolder()) === bundleFolderName(pointer)) {
      return { result: 'up-to-date', message: `${pointer.name} v${pointer.version} runs as the shadow candidate (sync.mode: shadow)`, name: pointer.name, version: pointer.version };
    }
    if ((await this.held()) === pointerKey) {
      return { result: 'held', message: `${pointer.name} v${pointer.version} is held back: an operator (or the fallback) went back to v${active?.version ?? '?'}; it is installed once the channel points to another version, or after xray-qc models unhold`, name: pointer.name, version: pointer.version };
    }
    if (!force && this.failedPointer === pointerKey) {
      return { result: 'skipped', message: `${pointer.name} v${pointer.version} was refused before; waiting for a new pointer`, name: pointer.name, version: pointer.version };
    }
    try {
      const result = await this.install(pointer);
      this.failedPointer = null;
      await rm(this.holdFile, { force: true });
      return result;
    } catch (err) {
      this.failedPointer = pointerKey;
      await rm(join(this.ctx.repo, STAGING, `${pointer.name}-v${pointer.version}`), { recursive: true, force: true });
      const e = err instanceof Refused ? err : new Refused(err instanceof FetchError ? 'download' : 'activate', (err as Error).message);
      return this.refused(e, pointer);
    }
  }

  private refused(e: Refused, pointer: ChannelPointer | undefined): SyncResult {
    const what = pointer ? `${pointer.name} v${pointer.version}` : 'update';
    const code = e.code;
    const message = `${what} refused at step ${e.step}: ${code}: ${e.message}`;
    this.ctx.logger.warn({ step: e.step, code }, message);
    this.ctx.store.event('sync', message, { step: e.step, code, name: pointer?.name, version: pointer?.version });
    return { result: 'refused', code, step: e.step, message, name: pointer?.name, version: pointer?.version };
  }

  private async install(pointer: ChannelPointer): Promise<SyncResult> {
    const s = this.ctx.settings!;
    const base = `${s.url}/${pointer.path.replace(/^\/+/, '').replace(/\/?$/, '/')}`;
    // 1. manifest and signature
    let manifestBytes: Buffer;
    try {
      manifestBytes = (await fetchSmall(`${base}manifest.json`, s.max_manifest_bytes)).body;
    } catch (err) {
      throw new Refused('manifest', (err as Error).message);
    }
    let sigText: string | null = null;
    try {
      sigText = (await fetchSmall(`${base}manifest.sig`, 4096)).body.toString('utf8');
    } catch (err) {
      if (!(err instanceof FetchError && err.status === 404)) throw new Refused('signature', (err as Error).message);
    }
    // 2–4. signature, the manifest itself, no rollback, what this station can run, the fitness rule (vet.ts)
    const manifest = vetOffer({ manifestBytes, sigText, expect: pointer }, {
      requireSignature: s.require_signature, trustedKeys: s.require_signature ? await loadPublicKeys(s.trusted_keys) : [],
      maxInputPixels: s.max_input_pixels, allowUnfit: s.allow_unfit,
    }, this.ctx.active()?.manifest ?? null);
    // 5. download into staging, size- and hash-checked
    const folder = bundleFolderName(manifest);
    const staging = join(this.ctx.repo, STAGING, folder);
    await rm(staging, { recursive: true, force: true });
    await mkdir(staging, { recursive: true });
    for (const [name, f] of Object.entries(manifest.files)) {
      const dest = join(staging, name);
      await mkdir(dirname(dest), { recursive: true });
      try {
        await fetchToFile(`${base}${name.split('/').map(encodeURIComponent).join('/')}`, dest, f.bytes);
      } catch (err) {
        throw new Refused('download', (err as Error).message);
      }
    }
    await writeFile(join(staging, 'manifest.json'), manifestBytes);
    if (sigText) await writeFile(join(staging, 'manifest.sig'), sigText);
    // 6. load beside the serving model (verifies sizes, sha256 and the graph), warm up, golden samples
    let candidate: Model;
    try {
      candidate = await this.ctx.openModel(staging);
    } catch (err) {
      const code = (err as { code?: string }).code;
      throw new Refused(code === 'MODEL_FILE_MISMATCH' ? 'download' : 'load', `${code ?? 'MODEL_LOAD_FAILED'}: ${(err as Error).message}`);
    }
    try {
      const mismatch = await this.ctx.checkGolden(candidate);
      if (mismatch) throw new Refused('golden', mismatch);
      // 7. activate: the complete bundle is renamed into the repository, then `active` is switched
      const target = join(this.ctx.repo, folder);
      const exists = await stat(target).then(() => true, () => false);
      if (exists) await rm(target, { recursive: true, force: true });
      await rename(staging, target);
      fsyncDir(this.ctx.repo);
      candidate.movedTo(target);
      if (s.mode === 'shadow') {
        await this.ctx.shadow(candidate, folder);
        return { result: 'shadowed', message: `${manifest.name} v${manifest.version} installed as the shadow candidate (sync.mode: shadow; xray-qc models activate makes it serve)`, name: manifest.name, version: manifest.version };
      }
      await this.ctx.activate(candidate, folder);
    } catch (err) {
      await candidate.close();
      throw err;
    }
    return { result: 'activated', message: `${manifest.name} v${manifest.version} activated`, name: manifest.name, version: manifest.version };
  }
}
