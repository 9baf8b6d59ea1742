import type { Logger } from 'pino';
import type { Component, EventBus } from '../events.js';
import type { IntensityStats, StationEvents } from '../pipeline/messages.js';
import type { EventKind } from '../errors.js';

/** The `drift` section of the station's config (docs/quality.md). */
export interface DriftSettings {
  /** How many of the latest captures the rule looks at. */
  window: number;
  /** Mean fraction of pixels outside the model's global bounds (clipped by the conversion) above which captures drift. */
  max_clipped: number;
}

/**
 * Live drift: over the last `window` captures, the mean fraction of pixels the global
 * conversion clips (below Gmin or above Gmax). Past `max_clipped` the captures no longer look
 * like what the model's bounds were computed on: a `warning.changed` (the status topic's
 * `warnings`) and one `events` row when the episode begins, and again when it ends — not per
 * capture. Models without global bounds (local, naive) have nothing to clip: no warning.
 */
export class DriftMonitor implements Component {
  readonly name = 'drift';
  private readonly recent: number[] = [];
  private drifting = false;
  private unlisten: (() => void) | null = null;

  constructor(
    private readonly settings: DriftSettings,
    private readonly events: EventBus<StationEvents>,
    private readonly record: (kind: EventKind, message: string, data?: unknown) => void,
    private readonly logger: Logger,
  ) {}

  async start(): Promise<void> {
    this.unlisten ??= this.events.on('verdict.recorded', (v) => this.observe(v.stats));
  }

  async stop(): Promise<void> {
    this.unlisten?.();
    this.unlisten = null;
  }

  observe(stats: IntensityStats | null): void {
    if (!stats || stats.clipLow === null || stats.clipHigh === null) return;
    this.recent.push(stats.clipLow + stats.clipHigh);
    if (this.recent.length > this.settings.window) this.recent.shift();
    if (this.recent.length < this.settings.window) return;
    const mean = this.recent.reduce((a, b) => a + b, 0) / this.recent.length;
    const drifting = mean > this.settings.max_clipped;
    if (drifting === this.drifting) return;
    this.drifting = drifting;
    const figure = `${(100 * mean).toFixed(2)} % of pixels clipped on average over the last ${this.settings.window} captures (limit ${(100 * this.settings.max_clipped).toFixed(2)} %)`;
    const message = drifting ? `drift: ${figure}: captures are outside the model's global bounds` : `drift ended: ${figure}`;
    (drifting ? this.logger.warn.bind(this.logger) : this.logger.info.bind(this.logger))(message);
    this.record('drift', message, { mean_clipped: mean, window: this.settings.window, limit: this.settings.max_clipped, drifting });
    this.events.emit('warning.changed', { source: 'drift', message: drifting ? message : null });
  }
}
