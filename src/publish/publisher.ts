import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import type { Component } from '../events.js';
import { labelMessage } from '../record/labels.js';
import type { Store } from '../record/store.js';
import { connectAuth, type MqttSettings } from './connection.js';

export interface StatusInfo {
  /** The serving model; `loading` while the first one loads; null when there is none (waiting for sync). */
  model: { name: string; version: number; sha256: string } | 'loading' | null;
  queue: number;
  /** A station fault the line should know about (e.g. the database is full), or null. */
  error: string | null;
  /** Conditions that are no fault (drift). */
  warnings: string[];
}

export type StationState = 'online' | 'offline' | 'stopped';

/** Node's codes for a certificate the client does not accept. */
const TLS_CODES = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ALTNAME|ERR_TLS|ERR_SSL/;

/**
 * MQTT side: durable delivery from the SQLite outbox. Each verdict is published QoS 1 in `seq`
 * order; its outbox row is deleted and `published_at` set only on PUBACK. Everything unacknowledged
 * is re-sent on every (re)connect and after a restart, so the broker gets each verdict at least
 * once; subscribers drop duplicates by `id`. A retained `<prefix>/status` carries online /
 * offline (Last Will) / stopped.
 */
export class Publisher implements Component {
  readonly name = 'mqtt';
  private client: MqttClient | null = null;
  /** Message ids of verdicts sent and not yet acknowledged (seen on `packetsend`). */
  private readonly verdictsInFlight = new Set<number>();
  private flushing = false;
  private flushAgain = false;
  private since = new Date().toISOString();
  private statusTimer: NodeJS.Timeout | null = null;
  private labelTimer: NodeJS.Timeout | null = null;
  private readonly commands = new Map<string, { handler: (payload: Buffer) => Promise<unknown>; result: string }>();
  private readonly retained = new Map<string, string>();
  private failures = 0;
  /** Set for `resend_delay_ms` after each (re)connect: verdicts wait in the outbox meanwhile. */
  private hold: NodeJS.Timeout | null = null;
  /** Why the broker is not reachable (null while connected). */
  lastError: string | null = null;

  constructor(
    private readonly settings: { stationId: string; mqtt: MqttSettings },
    private readonly store: Store,
    private readonly logger: Logger,
    private readonly status: () => StatusInfo,
    private readonly version: string,
  ) {}

  get topics(): { verdict: string; plain: string; status: string; label: string } {
    const p = this.settings.mqtt.topic_prefix;
    return { verdict: `${p}/verdict`, plain: `${p}/verdict/plain`, status: `${p}/status`, label: `${p}/label` };
  }

  get clientId(): string {
    return this.settings.mqtt.client_id ?? `xray-qc-${this.settings.stationId}`;
  }

  get connected(): boolean {
    return this.client?.connected ?? false;
  }

  /** Starts connecting; never waits for the broker (verdicts wait in the outbox). */
  async start(): Promise<void> {
    const m = this.settings.mqtt;
    const options: IClientOptions = {
      clientId: this.clientId,
      clean: true,
      keepalive: m.keepalive_s,
      reconnectPeriod: m.reconnect_ms,
      connectTimeout: 10_000,
      queueQoSZero: false,
      // a refused CONNACK (credentials, client id) would otherwise end the client for good
      reconnectOnConnackError: true,
      will: { topic: this.topics.status, payload: Buffer.from(this.statusPayload('offline')), qos: 1, retain: true },
      ...connectAuth(m),
    };
    const client = mqtt.connect(m.url, options);
    client.on('connect', () => {
      this.failures = 0;
      this.lastError = null;
      client.options.reconnectPeriod = m.reconnect_ms;
      this.since = new Date().toISOString();
      this.logger.info({ url: m.url }, 'connected to MQTT broker');
      this.store.event('broker', `connected to ${m.url}`);
      this.publishStatus('online');
      for (const [topic, payload] of this.retained) client.publish(topic, payload, { qos: 1, retain: true });
      if (this.commands.size) client.subscribe([...this.commands.keys()], { qos: 1 });
      // Every verdict — backlog or newly scored — waits a moment after a (re)connect, so that
      // subscribers reconnecting to the same restarted broker are subscribed again before it arrives.
      this.holdThenKick(m.resend_delay_ms);
    });
    client.on('message', (topic, payload) => {
      const command = this.commands.get(topic);
      if (!command) return;
      void command.handler(payload).then(
        (result) => client.publish(command.result, JSON.stringify(result), { qos: 1 }),
        (err: unknown) => client.publish(command.result, JSON.stringify({ result: 'error', message: (err as Error).message }), { qos: 1 }),
      );
    });
    const verdictTopics = new Set([this.topics.verdict, this.topics.plain]);
    client.on('packetsend', (packet) => {
      if (packet.cmd === 'publish' && packet.messageId !== undefined && verdictTopics.has(packet.topic)) this.verdictsInFlight.add(packet.messageId);
    });
    client.on('packetreceive', (packet) => {
      if (packet.cmd === 'puback' && packet.messageId !== undefined) this.verdictsInFlight.delete(packet.messageId);
    });
    client.on('close', () => {
      if (this.client) this.logger.warn('MQTT connection closed; verdicts wait in the outbox');
      this.dropInFlightVerdicts(client);
    });
    client.on('error', (err) => this.onError(client, err as Error & { code?: string | number }));
    this.client = client;
    this.statusTimer = setInterval(() => {
      if (this.connected) this.publishStatus('online');
    }, m.status_interval_s * 1000);
    this.statusTimer.unref();
    if (m.label_events) {
      // Labels are written by other processes too (`xray-qc label set|import`): looked for every 2 s.
      this.labelTimer = setInterval(() => {
        if (this.connected && !this.hold) this.kick();
      }, 2000);
      this.labelTimer.unref();
    }
  }

  /** Resolves once connected, or after `timeoutMs` (false). */
  async waitConnected(timeoutMs: number): Promise<boolean> {
    const deadline = performance.now() + timeoutMs;
    while (this.client && !this.connected && performance.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    return this.connected;
  }

  /** Publishes `stopped` (retained) when connected, then disconnects. */
  async stop(timeoutMs = 3000): Promise<void> {
    if (this.statusTimer) clearInterval(this.statusTimer);
    if (this.labelTimer) clearInterval(this.labelTimer);
    // Stopping during a hold sends nothing more (subscribers may not be back yet); `hold` stays
    // set, so that nothing is kicked from here on.
    const holding = this.hold !== null;
    if (this.hold) clearTimeout(this.hold);
    const client = this.client;
    if (!client) return;
    if (client.connected) {
      // Give the last verdicts a moment to be acknowledged; what remains is re-sent after restart.
      const deadline = performance.now() + timeoutMs;
      while (!holding && client.connected && this.store.outboxCount() > 0 && performance.now() < deadline) {
        this.kick();
        await new Promise((r) => setTimeout(r, 50));
      }
      await withTimeout(client.publishAsync(this.topics.status, this.statusPayload('stopped'), { qos: 1, retain: true }), timeoutMs).catch(() => undefined);
    }
    this.client = null;
    await withTimeout(client.endAsync(), timeoutMs).catch(() => client.end(true));
  }

  /**
   * A request topic `<prefix>/<suffix>`; the handler's result is published on `<prefix>/<resultSuffix>`
   * (default `<suffix>/result`). Register before start().
   */
  onCommand(suffix: string, handler: (payload: Buffer) => Promise<unknown>, resultSuffix = `${suffix}/result`): void {
    const p = this.settings.mqtt.topic_prefix;
    this.commands.set(`${p}/${suffix}`, { handler, result: `${p}/${resultSuffix}` });
  }

  /** A retained message, re-published on every reconnect. */
  setRetained(suffix: string, value: unknown): void {
    const topic = `${this.settings.mqtt.topic_prefix}/${suffix}`;
    const payload = JSON.stringify(value);
    this.retained.set(topic, payload);
    if (this.client?.connected) this.client.publish(topic, payload, { qos: 1, retain: true });
  }

  /**
   * A failed connection: back off exponentially — up to `reconnect_max_ms` for network errors, up
   * to a minute when the broker refused us (credentials, client id), where quick retries only
   * fill its log. Each new reason is recorded once in `events`; scoring goes on.
   */
  private onError(client: MqttClient, err: Error & { code?: string | number }): void {
    const m = this.settings.mqtt;
    const refused = typeof err.code === 'number' && err.code > 0; // CONNACK return codes 1–5
    const who = `client id ${this.clientId}${m.username ? `, user ${m.username}` : ', no user'}`;
    const reason = refused ? `broker refused the connection: ${err.message} (code ${err.code}; ${who})`
      : typeof err.code === 'string' && TLS_CODES.test(err.code) ? `TLS: ${err.message} (${err.code}); is mqtt.ca the broker's CA?`
        : err.message;
    this.failures++;
    const cap = refused ? Math.max(60_000, m.reconnect_max_ms) : m.reconnect_max_ms;
    const delay = Math.min(cap, m.reconnect_ms * 2 ** Math.min(this.failures - 1, 16));
    client.options.reconnectPeriod = delay;
    this.logger.warn({ err: reason, retryMs: delay, attempt: this.failures }, `MQTT: ${reason}; retrying in ${delay} ms`);
    if (reason !== this.lastError) this.store.event('broker', `${reason}; retrying with back-off`, { code: err.code ?? null });
    this.lastError = reason;
  }

  /** New rows in the outbox: send them (one flush loop at a time; none while holding). */
  kick(): void {
    if (this.hold) return; // the hold's timer kicks when it ends
    if (this.flushing) {
      this.flushAgain = true;
      return;
    }
    void this.flush();
  }

  private holdThenKick(ms: number): void {
    if (this.hold) clearTimeout(this.hold);
    this.hold = null;
    if (ms <= 0) {
      this.kick();
      return;
    }
    this.hold = setTimeout(() => {
      this.hold = null;
      this.kick();
    }, ms);
    this.hold.unref();
  }

  /**
   * mqtt.js re-sends its in-flight messages at once on reconnect, before our hold, and a PUBACK from
   * a broker that lost its sessions would mark the verdict published though no subscriber is back.
   * Take verdicts out of its store instead (`removeOutgoingMessage`, its public call, with the ids
   * `packetsend` showed): their publish fails ('Message removed'), the rows stay in the outbox and
   * go out, in seq order, when the hold ends.
   */
  private dropInFlightVerdicts(client: MqttClient): void {
    for (const id of this.verdictsInFlight) client.removeOutgoingMessage(id);
    this.verdictsInFlight.clear();
  }

  publishStatus(state: StationState): void {
    this.client?.publish(this.topics.status, this.statusPayload(state), { qos: 1, retain: true });
  }

  private statusPayload(state: StationState): string {
    const s = this.status();
    // `since`: when this state began — the connection for online/offline, now for stopped.
    const since = state === 'stopped' ? new Date().toISOString() : this.since;
    return JSON.stringify({ state, since, model: s.model, queue: s.queue, error: s.error, warnings: s.warnings, version: this.version });
  }

  /** Each label once acknowledged, after the verdicts (the plant needs the inspection first). */
  private async flushLabels(): Promise<void> {
    let after = 0;
    for (;;) {
      const client = this.client;
      if (!client?.connected) return;
      const rows = this.store.labelsPending(after, 100);
      if (rows.length === 0) return;
      for (const row of rows) {
        if (!client.connected) return;
        await withTimeout(client.publishAsync(this.topics.label, JSON.stringify(labelMessage(this.settings.stationId, row)), { qos: 1 }), 15_000);
        this.store.markLabelPublished(row.id, new Date().toISOString());
        after = row.id;
      }
    }
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      do {
        this.flushAgain = false;
        let after = 0;
        for (;;) {
          const client = this.client;
          if (!client?.connected) return;
          const rows = this.store.outboxPending(after, 100);
          if (rows.length === 0) break;
          for (const row of rows) {
            if (!client.connected) return;
            await withTimeout(client.publishAsync(row.topic, row.payload, { qos: 1, retain: false }), 15_000);
            if (this.settings.mqtt.plain_topic) {
              await withTimeout(client.publishAsync(this.topics.plain, plainText(row.payload), { qos: 1 }), 15_000);
            }
            this.store.markPublished(row.seq, new Date().toISOString());
            after = row.seq;
          }
        }
        if (this.settings.mqtt.label_events) await this.flushLabels();
      } while (this.flushAgain);
    } catch (err) {
      // Not acknowledged (connection lost, timeout): the rows stay in the outbox for the next round.
      this.logger.warn({ err: (err as Error).message }, 'verdict publish not acknowledged; will retry');
    } finally {
      this.flushing = false;
    }
    if (this.flushAgain && this.connected) this.kick();
  }
}

/**
 * `<seq> <VERDICT> <p_abnormal|-> <reason> <id> <part>` for PLCs that cannot parse JSON. `part` is
 * the verdict's part id when it has one, else the capture file's base name; bytes that would split
 * or garble the line (white space, controls, non-ASCII) become `_`.
 */
export function plainText(payload: string): string {
  const m = JSON.parse(payload) as { seq: number; verdict: string; p_abnormal: number | null; reason: string; id: string; file: string; part?: string | null };
  const part = (m.part ?? m.file.slice(m.file.lastIndexOf('/') + 1)).replace(/[^\x21-\x7e]/g, '_') || '-';
  return `${m.seq} ${m.verdict.toUpperCase()} ${m.p_abnormal === null ? '-' : m.p_abnormal.toFixed(4)} ${m.reason} ${m.id} ${part}`;
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    p.then((v) => { clearTimeout(t); resolve(v); }, (e: unknown) => { clearTimeout(t); reject(e as Error); });
  });
}
