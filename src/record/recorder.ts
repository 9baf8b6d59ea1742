import type { Logger } from 'pino';
import type { EventBus } from '../events.js';
import type { Bundle } from '../model/bundle.js';
import type { PartFields, PreparedCapture, PreparedOk, QueuedCapture, Scored, StationEvents } from '../pipeline/messages.js';
import { auditRecord } from './audit-record.js';
import type { Store } from './store.js';

/**
 * The record stage: one capture's audit row and its outbox message, in the transaction that also
 * takes it off the queue (store.ts); an error verdict is an `events` row too. Then
 * `verdict.recorded`, on which the publisher sends it.
 */
export class Recorder {
  readonly counts = { pass: 0, flag: 0, error: 0 };
  /** Captures whose path (and text) gave no bundle or part although capture.fields asks for them. */
  unmatched = 0;

  constructor(
    /** Where the bundle and part come from (capture/fields.ts), or null when capture.fields is off. */
    private readonly fields: { read(file: string, text?: PreparedOk['text']): PartFields } | null,
    private readonly stationId: string,
    private readonly verdictTopic: string,
    private readonly store: Store,
    private readonly logger: Logger,
    private readonly events: EventBus<StationEvents>,
  ) {}

  /** Throws when the database refuses (the capture then stays queued). */
  record(capture: QueuedCapture, bundle: Bundle, prepared: PreparedCapture, scored: Scored): void {
    const fields = this.fields?.read(capture.file, prepared.ok ? prepared.text : undefined);
    if (fields && fields.bundle === null && fields.part === null) this.unmatched++;
    const heat = scored.verdict !== 'error' && scored.heatmap ? { map: scored.heatmap, where: scored.where ?? null } : undefined;
    const { seq, id } = this.store.record(auditRecord(this.stationId, capture, bundle, prepared, scored, new Date(), fields), this.verdictTopic, heat);
    this.counts[scored.verdict]++;
    const ok = scored.verdict !== 'error';
    this.logger.info(
      { seq, file: capture.file, verdict: scored.verdict, reason: scored.reason, ...(ok ? { p_abnormal: scored.p_abnormal, ms: scored.timings_ms.total } : { error: scored.error }) },
      'capture scored',
    );
    if (!ok) this.store.event('error', `${capture.file}: ${scored.error.code}: ${scored.error.message}`, { seq });
    this.events.emit('verdict.recorded', { seq, id, file: capture.file, sha256: prepared.sha256, verdict: scored.verdict, reason: scored.reason, bundleSha256: bundle.manifestSha256, stats: prepared.ok ? prepared.stats : null });
  }
}
