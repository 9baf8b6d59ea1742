import { readFileSync } from 'node:fs';
import mqtt, { type ISubscriptionMap, type MqttClient } from 'mqtt';
import pg from 'pg';
import type { Logger } from 'pino';
import type { Component } from '../events.js';
import type { PlantConfig } from './config.js';
import { reportGaps } from './gaps.js';
import { ingest, parseMessage, type Item } from './ingest.js';
import { migratePlant } from './schema.js';

/**
 * `xray-qc collect` (docs/plant.md): every station's verdicts and labels from the plant broker
 * into PostgreSQL. It subscribes through an MQTT 5 shared subscription (`$share/<group>/…`), so
 * collectors of one group share the messages and one may die. A message's PUBACK is sent only
 * after the transaction holding it committed (mqtt.js `customHandleAcks`): a collector killed at
 * any moment leaves its unacknowledged messages in its broker session, which redelivers them
 * when it returns; they are then duplicates, kept once. mqtt.js hands a connection's next message
 * over only after the previous one's acknowledgement, so the collector opens
 * `mqtt.connections` connections and commits what they hold together.
 */

interface Pending { item: Item; ack: () => void; conn: number; epoch: number }

export class Collector implements Component {
  readonly name = 'collector';
  readonly stats = { verdicts: 0, labels: 0, duplicates: 0, conflicts: 0, invalid: 0, batches: 0, failures: 0 };
  private readonly pool: pg.Pool;
  private readonly clients: MqttClient[] = [];
  private readonly epochs: number[] = [];
  private pending: Pending[] = [];
  private flushing = false;
  private timer: NodeJS.Timeout | null = null;
  private gapTimer: NodeJS.Timeout | null = null;
  private readonly partitions = new Set<string>();
  private stopped = false;

  constructor(private readonly c: PlantConfig, private readonly logger: Logger) {
    this.pool = new pg.Pool({ connectionString: c.postgres.url, max: c.postgres.pool });
    this.pool.on('error', (err) => this.logger.warn({ err: err.message }, 'PostgreSQL connection lost'));
  }

  async start(): Promise<void> {
    const db = await this.pool.connect();
    try {
      const version = await migratePlant(db);
      this.logger.info({ schema: version }, 'plant database ready');
    } finally {
      db.release();
    }
    const m = this.c.mqtt;
    const topics = [m.verdict_topic, ...(m.label_topic ? [m.label_topic] : [])].map((t) => `$share/${m.group}/${t}`);
    for (let k = 0; k < m.connections; k++) {
      this.epochs.push(0);
      const client = mqtt.connect(m.url, {
        clientId: `${this.c.collector_id}-${k}`, protocolVersion: 5, clean: false, properties: { sessionExpiryInterval: m.session_expiry_s },
        keepalive: m.keepalive_s, reconnectPeriod: m.reconnect_ms, resubscribe: false,
        ...(m.username ? { username: m.username, password: m.password ?? undefined } : {}),
        ...(m.ca ? { ca: readFileSync(m.ca) } : {}), ...(m.cert ? { cert: readFileSync(m.cert) } : {}), ...(m.key ? { key: readFileSync(m.key) } : {}),
        customHandleAcks: (topic, message, _packet, done) => {
          this.pending.push({ item: parseMessage(topic, message), ack: () => done(0), conn: k, epoch: this.epochs[k] });
          this.schedule();
        },
      });
      client.on('connect', (ack) => {
        this.epochs[k]++;
        // Held messages of the previous connection are not acknowledged on this one: the broker redelivers them.
        this.pending = this.pending.filter((p) => p.conn !== k);
        // Subscribed again even when the session is present: mosquitto 2.0.11 does not restore a
        // shared subscription from its persistence file after a restart, and until this SUBACK
        // the broker drops what the stations publish (a seq gap: docs/plant.md). `resubscribe`
        // makes mqtt.js send it although it has the topic on its own list.
        client.subscribe({ ...Object.fromEntries(topics.map((t) => [t, { qos: 1 }])), resubscribe: true } as ISubscriptionMap, (err) => {
          if (err) this.logger.error({ err: err.message, topics }, 'could not subscribe');
          else if (k === 0) this.logger.info({ topics, session_present: ack.sessionPresent }, 'subscribed');
        });
        if (k === 0) this.logger.info({ url: m.url, topics, connections: m.connections }, 'connected to the plant broker');
      });
      client.on('error', (err) => this.logger.warn({ err: err.message, conn: k }, 'MQTT error'));
      client.on('offline', () => { if (k === 0) this.logger.warn('plant broker unreachable; reconnecting'); });
      this.clients.push(client);
    }
    this.gapTimer = setInterval(() => void this.checkGaps(), this.c.gaps.check_s * 1000);
  }

  /**
   * A batch goes when every connection holds a message (none can bring more before the commit)
   * or `batch.max` are held, else after `batch.max_wait_ms`.
   */
  private schedule(): void {
    if (this.flushing) return;
    const full = this.pending.length >= Math.min(this.c.batch.max, this.c.mqtt.connections);
    if (this.timer && !full) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => { this.timer = null; void this.flush(); }, full ? 0 : this.c.batch.max_wait_ms);
  }

  private async flush(): Promise<void> {
    if (this.flushing || this.stopped || !this.pending.length) return;
    this.flushing = true;
    const batch = this.pending.slice(0, this.c.batch.max);
    try {
      const db = await this.pool.connect();
      try {
        const r = await ingest(db, batch.map((p) => p.item), this.partitions);
        for (const p of r.partitions) this.partitions.add(p);
        this.stats.verdicts += r.verdicts;
        this.stats.labels += r.labels;
        this.stats.duplicates += r.duplicates;
        this.stats.conflicts += r.conflicts.length;
        this.stats.invalid += r.invalid;
        this.stats.batches++;
        for (const x of r.conflicts) this.logger.warn({ key: x.key }, x.message);
        if (r.invalid) this.logger.warn({ invalid: r.invalid }, 'messages that are no verdict or label were kept in alerts');
      } finally {
        db.release();
      }
      const done = new Set(batch);
      this.pending = this.pending.filter((p) => !done.has(p));
      for (const p of batch) if (this.epochs[p.conn] === p.epoch) p.ack(); // committed: now the PUBACK
    } catch (err) {
      this.stats.failures++;
      this.logger.error({ err: (err as Error).message, held: batch.length }, `PostgreSQL refused the batch; nothing acknowledged, retrying in ${this.c.batch.retry_ms} ms`);
      await new Promise((r) => setTimeout(r, this.c.batch.retry_ms));
    } finally {
      this.flushing = false;
    }
    if (this.pending.length) this.schedule();
  }

  private async checkGaps(): Promise<void> {
    try {
      const db = await this.pool.connect();
      try {
        for (const g of await reportGaps(db, this.c.gaps.report_after_s)) this.logger.warn(g, `station ${g.station_id}: seq ${g.from_seq}–${g.to_seq} missing for ${Math.round(g.open_s)} s (xray-qc collect backfill)`);
      } finally {
        db.release();
      }
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'gap check failed');
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.gapTimer) clearInterval(this.gapTimer);
    while (this.flushing) await new Promise((r) => setTimeout(r, 10));
    // Held, unacknowledged messages stay in the broker sessions for the next start.
    await Promise.all(this.clients.map((c) => c.endAsync(true).catch(() => undefined)));
    await this.pool.end();
  }
}
