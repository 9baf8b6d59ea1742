import type { EventBus } from '../events.js';
import type { FaultSource, StationEvents } from '../pipeline/messages.js';

/** Which fault the line sees first when several are present. */
const PRIORITY: FaultSource[] = ['start', 'record', 'queue', 'capture-folder', 'model'];

/**
 * The station's faults, one per source, as `fault.changed` reports them: `current` is the one
 * the status topic's `error` and STATUS= carry; and its warnings (`warning.changed`), the status
 * topic's `warnings`. `onChange` runs when either begins or ends.
 */
export class FaultBoard {
  private readonly faults = new Map<FaultSource, string>();
  private readonly warningsBy = new Map<string, string>();

  constructor(events: EventBus<StationEvents>, onChange: () => void) {
    events.on('warning.changed', ({ source, message }) => {
      if ((this.warningsBy.get(source) ?? null) === message) return;
      if (message === null) this.warningsBy.delete(source);
      else this.warningsBy.set(source, message);
      onChange();
    });
    events.on('fault.changed', ({ source, message }) => {
      if ((this.faults.get(source) ?? null) === message) return;
      if (message === null) this.faults.delete(source);
      else this.faults.set(source, message);
      onChange();
    });
  }

  /** Conditions the line should know of that are no fault (drift): the status topic's `warnings`. */
  get warnings(): string[] {
    return [...this.warningsBy.values()];
  }

  get current(): string | null {
    for (const source of PRIORITY) {
      const message = this.faults.get(source);
      if (message) return message;
    }
    return null;
  }
}
