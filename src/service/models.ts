import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { pruneRepository, readActive, setActive } from '../model/repository.js';
import type { Store } from '../record/store.js';
import { Scorer } from '../score/scorer.js';
import { checkGolden } from '../sync/golden.js';
import { scorerOptions, type Config } from './config.js';
import type { Pipeline } from './pipeline.js';

export interface ModelSwitchContext {
  config: Config;
  store: Store;
  logger: Logger;
  pipeline: () => Pipeline;
  /** A model became active: announce it (retained MQTT message, status). */
  announce: (scorer: Scorer, previous: string | null) => void;
  /** An operator or the fallback went back: sync must not re-install the channel's version. */
  holdSync: () => Promise<void>;
}

/**
 * Which bundle of the repository serves, and every way that changes: model sync, an operator's
 * `xray-qc models activate` (seen as a change of the `active` file), and automatic fallback to
 * the previous bundle after K consecutive failed inferences. A new model is always loaded and
 * warmed beside the serving one (load before unload) and switched between two captures.
 */
export class ModelSwitch {
  private current: string | null = null;
  private previous: string | null = null;
  private poll: NodeJS.Timeout | null = null;
  private switching = false;
  readonly repo: string;
  /** true when model.dir is a repository (bundles + active), false for a single bundle. */
  readonly isRepository: boolean;

  constructor(private readonly ctx: ModelSwitchContext) {
    this.repo = ctx.config.model.dir;
    this.isRepository = !existsSync(join(this.repo, 'manifest.json'));
  }

  /** Records the bundle the daemon started with (null: none yet, sync or an operator brings the first). */
  async start(initial: Scorer | null): Promise<void> {
    this.current = this.isRepository && initial ? initial.bundle.dir.slice(this.repo.length + 1) : null;
    if (initial) this.ctx.announce(initial, null);
    if (!this.isRepository) return;
    // The folder is what `active` names (or the only bundle): write it so a later switch has a base.
    if ((await readActive(this.repo)) !== this.current && this.current) await setActive(this.repo, this.current);
    this.poll = setInterval(() => void this.followActiveFile(), 1000);
    this.poll.unref();
  }

  async stop(): Promise<void> {
    if (this.poll) clearInterval(this.poll);
    this.poll = null;
  }

  get currentFolder(): string | null {
    return this.current;
  }

  get previousFolder(): string | null {
    return this.previous;
  }

  /** Makes `scorer` (already loaded and verified, in `folder`) the serving model. */
  async activate(scorer: Scorer, folder: string, how: string): Promise<void> {
    const previous = this.current;
    this.current = folder; // before writing `active`, so the file poll does not react to our own write
    await setActive(this.repo, folder);
    const old = await this.ctx.pipeline().swap(scorer);
    if (old && old !== scorer) await old.close();
    if (previous !== folder) this.previous = previous;
    const m = scorer.bundle.manifest;
    this.ctx.store.modelActivated({ name: m.name, version: m.version, sha256: scorer.bundle.modelSha256, bundleSha256: scorer.bundle.manifestSha256, dir: scorer.bundle.dir, how, previous });
    this.ctx.store.event('model', `activated ${m.name} v${m.version} (${how}); previous ${previous ?? 'none'}`, { folder, previous, how });
    this.ctx.logger.info({ model: scorer.modelRef, folder, previous, how }, 'model activated');
    this.ctx.announce(scorer, previous);
    const protect = [folder, ...(this.previous ? [this.previous] : [])];
    const removed = await pruneRepository(this.repo, this.ctx.config.sync?.keep_versions ?? 3, protect).catch(() => []);
    if (removed.length) this.ctx.store.event('model', `pruned ${removed.join(', ')}`);
  }

  /** Loads a bundle of the repository beside the serving one and switches to it; false on failure. */
  async switchTo(folder: string, how: string): Promise<boolean> {
    if (this.switching) return false;
    this.switching = true;
    let scorer: Scorer | null = null;
    try {
      scorer = await Scorer.open(join(this.repo, folder), scorerOptions(this.ctx.config));
      const mismatch = await checkGolden(scorer.bundle.dir, scorer);
      if (mismatch) throw new Error(`golden samples: ${mismatch}`);
      await this.activate(scorer, folder, how);
      return true;
    } catch (err) {
      await scorer?.close();
      const message = `could not switch to ${folder} (${how}): ${(err as Error).message}`;
      this.ctx.logger.error(message);
      this.ctx.store.event('error', message, { folder, how });
      // `active` must keep naming a bundle that works: put the serving one back.
      if (this.current && (await readActive(this.repo)) !== this.current) await setActive(this.repo, this.current);
      return false;
    } finally {
      this.switching = false;
    }
  }

  /** K consecutive failed inferences on the serving model: go back to the previous bundle. */
  onFailures(consecutive: number): void {
    const k = this.ctx.config.model.fallback_after;
    if (consecutive < k || !this.previous || this.switching) return;
    const target = this.previous;
    this.ctx.store.event('fallback', `${consecutive} consecutive inference failures on ${this.current}; falling back to ${target}`);
    void this.switchTo(target, `automatic fallback after ${consecutive} failures`).then((ok) => (ok ? this.ctx.holdSync() : undefined));
  }

  private async followActiveFile(): Promise<void> {
    if (this.switching) return;
    const named = await readActive(this.repo);
    if (!named || named === this.current) return;
    if (await this.switchTo(named, 'operator: active file changed')) await this.ctx.holdSync();
  }
}
