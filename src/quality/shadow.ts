import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Component, EventBus } from '../events.js';
import type { Model } from '../infer/model.js';
import { scorePrepared, type TensorLender } from '../infer/score.js';
import type { TensorContract } from '../model/contract.js';
import { readShadow } from '../model/repository.js';
import type { PreparedCapture, StationEvents } from '../pipeline/messages.js';

export interface ShadowContext {
  repo: string;
  events: EventBus<StationEvents>;
  logger: Logger;
  /** Nothing queued and nothing in flight: the only time the candidate may use the CPU. */
  lineIdle: () => boolean;
  prepare: TensorLender & { prepare(file: string, contract: TensorContract): Promise<PreparedCapture> };
  /** Opens a candidate (its inference threads at the lowest priority). */
  openModel: (dir: string) => Promise<Model>;
  save: (r: { inspection_id: string; model_name: string; model_version: number; bundle_sha256: string; p_abnormal: number | null; verdict: string; reason: string; ms: number | null }) => void;
  event: (message: string, data?: unknown) => void;
}

/** Captures waiting for the candidate at most; older ones are dropped (coverage says how many it saw). */
const BACKLOG = 500;

/**
 * A shadow candidate (`xray-qc models shadow VERSION`, the repository's `shadow` file): loaded
 * beside the active model, it scores captures the active model has recorded and published —
 * only while the line is idle (nothing queued, nothing in flight), newest first, and with its
 * inference threads at niceness 19 — into `shadow_scores`. A capture that arrives during its run
 * is prepared and scored by the active model at once (the candidate does not take the
 * preparation hold; D42): 1.05× median latency on a 2-core CPU station, within its drift
 * (`npm run bench:shadow`, docs/performance.md). On a CPU station the candidate sees the captures
 * the line leaves it time for (coverage).
 */
export class ShadowRunner implements Component {
  readonly name = 'shadow';
  private candidate: Model | null = null;
  private folder: string | null = null;
  private readonly pending: Array<{ id: string; file: string; sha256: string }> = [];
  private timer: NodeJS.Timeout | null = null;
  private busy = false;
  private stopped = false;
  private unlisten: (() => void) | null = null;

  /**
   * The preparation stage as the candidate borrows it: its tensors, but not its hold. Holding
   * (`setInferenceBusy`) keeps finished preparations from waking the main thread while an
   * inference runs (D26); during the candidate's run that would keep the next capture's finished
   * preparation from the active model until the candidate is done.
   */
  private readonly lender: TensorLender;

  constructor(private readonly ctx: ShadowContext) {
    const p = ctx.prepare;
    this.lender = { holds: (x) => p.holds(x), release: (x) => p.release(x), setInferenceBusy: () => {} };
  }

  async start(): Promise<void> {
    this.unlisten = this.ctx.events.on('verdict.recorded', (v) => {
      if (!this.candidate || v.verdict === 'error' || !v.sha256) return;
      this.pending.push({ id: v.id, file: v.file, sha256: v.sha256 });
      if (this.pending.length > BACKLOG) this.pending.shift();
    });
    await this.follow();
    this.timer = setInterval(() => void this.tick(), 250);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.unlisten?.();
    while (this.busy) await new Promise((r) => setTimeout(r, 20));
    await this.candidate?.close();
    this.candidate = null;
  }

  private followedAt = 0;

  private async tick(): Promise<void> {
    if (this.busy || this.stopped) return;
    this.busy = true;
    try {
      // The shadow file, once a second — between two candidate runs too, so that a long backlog
      // never keeps `models shadow off` (or a new version) waiting.
      const followDue = async (): Promise<void> => {
        if (performance.now() - this.followedAt < 1000) return;
        this.followedAt = performance.now();
        await this.follow();
      };
      await followDue();
      while (this.candidate && this.pending.length && this.ctx.lineIdle() && !this.stopped) {
        await this.scoreOne(this.candidate, this.pending.pop()!);
        await followDue();
      }
    } catch (err) {
      this.ctx.logger.error({ err: (err as Error).message }, 'shadow scoring failed');
    } finally {
      this.busy = false;
    }
  }

  private async scoreOne(model: Model, c: { id: string; file: string; sha256: string }): Promise<void> {
    const t0 = performance.now();
    const prepared = await this.ctx.prepare.prepare(c.file, model.contract);
    if (prepared.sha256 !== c.sha256) {
      this.ctx.prepare.release(prepared); // the file changed or went since it was scored: not the same capture
      return;
    }
    const s = await scorePrepared(model, prepared, this.lender, t0);
    const ref = model.ref;
    this.ctx.save({
      inspection_id: c.id, model_name: ref.name, model_version: ref.version, bundle_sha256: model.bundle.manifestSha256,
      p_abnormal: s.verdict === 'error' ? null : s.p_abnormal, verdict: s.verdict, reason: s.reason, ms: s.verdict === 'error' ? null : s.timings_ms.infer,
    });
  }

  /** Loads, swaps or drops the candidate the `shadow` file names. */
  private async follow(): Promise<void> {
    const named = await readShadow(this.ctx.repo);
    if (named === this.folder) return;
    const old = this.candidate;
    this.candidate = null;
    this.pending.length = 0;
    this.folder = named;
    await old?.close();
    if (!named) {
      this.ctx.event(`shadow candidate off (was ${old?.ref.name ?? '?'} v${old?.ref.version ?? '?'})`);
      return;
    }
    try {
      this.candidate = await this.ctx.openModel(join(this.ctx.repo, named));
      const r = this.candidate.ref;
      this.ctx.logger.info({ model: r, folder: named }, 'shadow candidate loaded');
      this.ctx.event(`shadow candidate ${r.name} v${r.version} loaded (${named}): it scores captures while the line is idle`, { folder: named });
    } catch (err) {
      this.ctx.logger.error({ folder: named, err: (err as Error).message }, 'shadow candidate could not be loaded');
      this.ctx.event(`shadow candidate ${named} could not be loaded: ${(err as Error).message}`, { folder: named });
    }
  }
}
