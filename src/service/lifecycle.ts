import type { Logger } from 'pino';
import type { Component } from '../events.js';

/**
 * The station's components in the order they started; `stopAll` stops them in reverse (so the
 * capture in flight finishes and is recorded before anything it needs goes away), each once, an
 * error in one not keeping the others from stopping.
 */
export class Lifecycle {
  private readonly started: Array<Pick<Component, 'name' | 'stop'>> = [];

  constructor(private readonly logger: Logger) {}

  async start(component: Component): Promise<void> {
    await component.start();
    this.started.push(component);
  }

  /** Something opened outside `start` (the database, a model) that is stopped in its place. */
  add(name: string, stop: () => Promise<void> | void): void {
    this.started.push({ name, stop: async () => stop() });
  }

  /** `before(name)` runs just before that component stops. */
  async stopAll(before?: (name: string) => void): Promise<void> {
    while (this.started.length) {
      const c = this.started.pop()!;
      try {
        before?.(c.name);
        await c.stop();
      } catch (err) {
        this.logger.error({ component: c.name, err: (err as Error).message }, 'error while stopping');
      }
    }
  }
}
