import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Component, EventBus } from '../events.js';
import type { Model, OpenModel } from '../infer/model.js';
import { pruneRepository, readActive, setActive } from '../model/repository.js';
import type { StationEvents } from '../pipeline/messages.js';
import type { Store } from '../record/store.js';

/** Results that count against the serving model (K in a row: fall back). */
const MODEL_FAILURES = new Set(['INFER_FAILED', 'INFER_NON_FINITE', 'INFER_WORKER_EXITED']);

export interface ModelSwitchContext {
  repo: string;
  keepVersions: number;
  fallbackAfter: number;
  store: Store;
  logger: Logger;
  events: EventBus<StationEvents>;
  /** Switches the capture path's model between two captures; resolves with the old one. */
  swap: (model: Model) => Promise<Model | null>;
  openModel: OpenModel;
  /** The bundle's golden samples scored by `model`: the first mismatch, or null. */
  checkGolden: (model: Model) => Promise<string | null>;
  /** An operator or the fallback went back: sync must not re-install the channel's version. */
  holdSync: () => Promise<void>;
}

/**
 * Which bundle of the repository serves, and every way that changes: model sync, an operator's
 * `xray-qc models activate` (seen as a change of the `active` file), and automatic fallback to
 * the previous bundle after K consecutive failed inferences. A new model is always loaded and
 * warmed beside the serving one (load before unload) and switched between two captures. Each
 * activation is a `model.activated` event.
 */
export class ModelSwitch implements Component {
  readonly name = 'model switching';
  private current: string | null = null;
  private previous: string | null = null;
  private serving: Model | null = null;
  private poll: NodeJS.Timeout | null = null;
  private switching = false;
  private consecutiveFailures = 0;
  private readonly unlisten: () => void;
  /** true when model.dir is a repository (bundles + active), false for a single bundle. */
  readonly isRepository: boolean;

  constructor(private readonly ctx: ModelSwitchContext, private readonly initial: Model | null) {
    this.isRepository = !existsSync(join(ctx.repo, 'manifest.json'));
    this.unlisten = ctx.events.on('verdict.recorded', (v) => this.countFailures(v));
  }

  /** Records the bundle the daemon started with (none: sync or an operator brings the first). */
  async start(): Promise<void> {
    const initial = this.initial;
    this.current = this.isRepository && initial ? initial.bundle.dir.slice(this.ctx.repo.length + 1) : null;
    if (initial) this.activated(initial, 'start', null);
    if (!this.isRepository) return;
    // The folder is what `active` names (or the only bundle): write it so a later switch has a base.
    if ((await readActive(this.ctx.repo)) !== this.current && this.current) await setActive(this.ctx.repo, this.current);
    this.poll = setInterval(() => void this.followActiveFile(), 1000);
    this.poll.unref();
  }

  async stop(): Promise<void> {
    if (this.poll) clearInterval(this.poll);
    this.poll = null;
    this.unlisten();
  }

  /** The serving model (null: none yet). */
  get model(): Model | null {
    return this.serving;
  }

  get currentFolder(): string | null {
    return this.current;
  }

  /** Makes `model` (already loaded and verified, in `folder`) the serving model. */
  async activate(model: Model, folder: string, how: string): Promise<void> {
    const previous = this.current;
    this.current = folder; // before writing `active`, so the file poll does not react to our own write
    await setActive(this.ctx.repo, folder);
    const old = await this.ctx.swap(model);
    if (old && old !== model) await old.close();
    if (previous !== folder) this.previous = previous;
    this.activated(model, how, previous);
    const protect = [folder, ...(this.previous ? [this.previous] : [])];
    const removed = await pruneRepository(this.ctx.repo, this.ctx.keepVersions, protect).catch(() => []);
    if (removed.length) this.ctx.store.event('model', `pruned ${removed.join(', ')}`);
  }

  /** Loads a bundle of the repository beside the serving one and switches to it; false on failure. */
  async switchTo(folder: string, how: string): Promise<boolean> {
    if (this.switching) return false;
    this.switching = true;
    let model: Model | null = null;
    try {
      model = await this.ctx.openModel(join(this.ctx.repo, folder));
      const mismatch = await this.ctx.checkGolden(model);
      if (mismatch) throw new Error(`golden samples: ${mismatch}`);
      await this.activate(model, folder, how);
      return true;
    } catch (err) {
      await model?.close();
      const message = `could not switch to ${folder} (${how}): ${(err as Error).message}`;
      this.ctx.logger.error(message);
      this.ctx.store.event('error', message, { folder, how });
      // `active` must keep naming a bundle that works: put the serving one back.
      if (this.current && (await readActive(this.ctx.repo)) !== this.current) await setActive(this.ctx.repo, this.current);
      return false;
    } finally {
      this.switching = false;
    }
  }

  private activated(model: Model, how: string, previous: string | null): void {
    this.serving = model;
    this.consecutiveFailures = 0;
    const b = model.bundle;
    const m = b.manifest;
    this.ctx.store.modelActivated({ name: m.name, version: m.version, sha256: b.modelSha256, bundleSha256: b.manifestSha256, dir: b.dir, how, previous });
    if (how === 'start') this.ctx.store.event('model', `loaded ${m.name} v${m.version} on ${model.load.provider}`, { dir: b.dir });
    else this.ctx.store.event('model', `activated ${m.name} v${m.version} (${how}); previous ${previous ?? 'none'}`, { folder: this.current, previous, how });
    this.ctx.logger.info({ model: model.ref, provider: model.load.provider, warmupMs: Math.round(model.load.warmupMs), folder: this.current, previous, how }, how === 'start' ? 'model loaded' : 'model activated');
    this.ctx.events.emit('model.activated', { model: model.ref, bundleSha256: b.manifestSha256, provider: model.load.provider, previous, how });
  }

  /** K consecutive failed inferences on the serving model: go back to the previous bundle. */
  private countFailures(v: StationEvents['verdict.recorded']): void {
    if (!this.serving || v.bundleSha256 !== this.serving.bundle.manifestSha256) return;
    if (v.verdict !== 'error') {
      this.consecutiveFailures = 0;
      return;
    }
    if (!MODEL_FAILURES.has(v.reason)) return;
    const consecutive = ++this.consecutiveFailures;
    if (consecutive < this.ctx.fallbackAfter || !this.previous || this.switching) return;
    const target = this.previous;
    this.ctx.store.event('fallback', `${consecutive} consecutive inference failures on ${this.current}; falling back to ${target}`);
    void this.switchTo(target, `automatic fallback after ${consecutive} failures`).then((ok) => (ok ? this.ctx.holdSync() : undefined));
  }

  private async followActiveFile(): Promise<void> {
    if (this.switching) return;
    const named = await readActive(this.ctx.repo);
    if (!named || named === this.current) return;
    if (await this.switchTo(named, 'operator: active file changed')) await this.ctx.holdSync();
  }
}
