import type { EventBus } from '../events.js';
import type { FaultSource, StationEvents } from '../pipeline/messages.js';

/** Which fault the line sees first when several are present. */
const PRIORITY: FaultSource[] = ['start', 'record', 'queue', 'capture-folder', 'model'];

/**
 * The station's faults, one per source, as `fault.changed` reports them: `current` is the one
 * the status topic's `error` and STATUS= carry. `onChange` runs when a fault begins or ends.
 */
export class FaultBoard {
  private readonly faults = new Map<FaultSource, string>();

  constructor(events: EventBus<StationEvents>, onChange: () => void) {
    events.on('fault.changed', ({ source, message }) => {
      if ((this.faults.get(source) ?? null) === message) return;
      if (message === null) this.faults.delete(source);
      else this.faults.set(source, message);
      onChange();
    });
  }

  get current(): string | null {
    for (const source of PRIORITY) {
      const message = this.faults.get(source);
      if (message) return message;
    }
    return null;
  }
}
