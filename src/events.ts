/**
 * Typed events between components, in place of getters and back-calls. A listener runs
 * synchronously, in the order listeners were added; one that throws is reported to `onError`
 * and the others still run (the emitter never sees the exception).
 */
export class EventBus<E extends object> {
  private readonly listeners = new Map<keyof E, Array<(payload: never) => void>>();

  constructor(private readonly onError: (event: string, err: Error) => void) {}

  on<K extends keyof E>(event: K, listener: (payload: E[K]) => void): () => void {
    const list = this.listeners.get(event) ?? [];
    list.push(listener as (payload: never) => void);
    this.listeners.set(event, list);
    return () => {
      const at = list.indexOf(listener as (payload: never) => void);
      if (at >= 0) list.splice(at, 1);
    };
  }

  emit<K extends keyof E>(event: K, payload: E[K]): void {
    for (const listener of [...(this.listeners.get(event) ?? [])]) {
      try {
        (listener as (p: E[K]) => void)(payload);
      } catch (err) {
        this.onError(String(event), err instanceof Error ? err : new Error(String(err)));
      }
    }
  }
}

/** A part of the running station: started in order, stopped in reverse; `stop` is safe to call twice. */
export interface Component {
  readonly name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}
