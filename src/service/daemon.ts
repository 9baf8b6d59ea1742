import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import type { Logger } from 'pino';
import { CaptureIntake } from '../capture/intake.js';
import { EventBus } from '../events.js';
import type { Model } from '../infer/model.js';
import { OnnxModel } from '../infer/onnx-model.js';
import { scoreFile } from '../infer/score.js';
import { cleanStaging, holdsNoModel, readShadow, setShadow } from '../model/repository.js';
import { modelCaveat } from '../model/caveat.js';
import type { StationEvents } from '../pipeline/messages.js';
import { Publisher } from '../publish/publisher.js';
import { DriftMonitor } from '../quality/drift.js';
import { ShadowRunner } from '../quality/shadow.js';
import { openDatabase, type Db } from '../record/database.js';
import { setLabel } from '../record/labels.js';
import { Store } from '../record/store.js';
import { checkGolden } from '../sync/golden.js';
import { Syncer } from '../sync/syncer.js';
import { modelOptions, prepareOptions, type Config } from './config.js';
import { FaultBoard } from './faults.js';
import { Lifecycle } from './lifecycle.js';
import { ModelSwitch } from './models.js';
import { permissionFindings } from './permissions.js';
import { CapturePath } from './station.js';
import { SystemdNotifier } from './systemd.js';
import { parseListen } from '../review/auth.js';

/** Test hook (test/faults): preparing a file whose name contains this text throws an unexpected error. */
const INJECT_PREPARE_FAULT = 'XRAY_QC_TEST_INJECT_PREPARE_FAULT';

/**
 * `xray-qc run`, the composition root: makes the components, wires their events, and starts them
 * in order — database → MQTT (connects in the background) → model (loaded and warmed) → capture
 * path (preparation + loop) → model switching → sync → capture intake (watcher + reconcile) →
 * READY=1. Stop: the reverse (lifecycle.ts). docs/architecture.md draws it.
 */
export class Daemon {
  private readonly events: EventBus<StationEvents>;
  private readonly faults: FaultBoard;
  private readonly lifecycle: Lifecycle;
  private store: Store | null = null;
  private publisher: Publisher | null = null;
  private path: CapturePath | null = null;
  private models: ModelSwitch | null = null;
  private syncer: Syncer | null = null;
  private watchdogTimer: NodeJS.Timeout | null = null;
  private stopping: Promise<void> | null = null;
  private starting: Promise<void> | null = null;
  private startFailed = false;

  constructor(
    private readonly config: Config,
    private readonly logger: Logger,
    private readonly notifier: SystemdNotifier,
    private readonly version: string,
  ) {
    this.events = new EventBus((event, err) => logger.error({ event, err: err.message, stack: err.stack }, 'event listener failed'));
    this.faults = new FaultBoard(this.events, () => this.statusChanged());
    this.lifecycle = new Lifecycle(logger);
  }

  /** The first model is loading (the status topic says `"model": "loading"`). */
  private modelLoading = false;

  /** The model new captures are scored with (null: none yet). */
  private get serving(): Model | null {
    return this.path?.loop.serving ?? null;
  }

  async start(signal?: AbortSignal): Promise<void> {
    this.starting = this.startComponents(() => {
      if (signal?.aborted) throw new Error('start aborted');
    });
    try {
      await this.starting;
    } catch (err) {
      const code = (err as { code?: string }).code ?? 'START_FAILED';
      this.startFailed = true;
      this.events.emit('fault.changed', { source: 'start', message: `start failed: ${code}: ${(err as Error).message}` });
      throw err;
    }
  }

  private async startComponents(step: () => void): Promise<void> {
    const c = this.config;
    const db = openDatabase(c.database.path);
    const store = new Store(db);
    this.store = store;
    this.lifecycle.add('database', () => {
      db.close();
    });
    store.event('start', `xray-qc ${this.version} starting`, { pid: process.pid, config: c.source });
    for (const finding of permissionFindings(c)) {
      this.logger.warn(`permissions: ${finding}`);
      store.event('security', finding);
    }
    step();

    // MQTT before the model: a model that takes minutes to load (TensorRT) or fails to load is
    // seen on the status topic, with the reason (`error`) when the start fails.
    const publisher = new Publisher({ stationId: c.station_id, mqtt: c.mqtt }, store, this.logger, () => ({
      model: this.serving?.ref ?? (this.modelLoading ? 'loading' : null), queue: safeCount(() => store.queueCount()), error: this.faults.current, warnings: this.faults.warnings,
    }), this.version);
    this.publisher = publisher;
    publisher.onCommand('cmd/sync', async (payload) => {
      const request = parseRequest(payload);
      const result = this.syncer ? await this.syncer.check('mqtt request', true) : { result: 'skipped', message: 'the station is still starting' };
      return { ...result, correlation_id: request.correlation_id ?? null };
    });
    if (c.mqtt.label_topic) publisher.onCommand('label/set', async (payload) => labelRequest(db, payload), 'label/result');
    this.events.on('verdict.recorded', () => publisher.kick());
    this.events.on('model.activated', (a) => this.announce(a));
    await this.lifecycle.start(publisher);

    this.modelLoading = true;
    const initial = await this.openInitialModel(store).finally(() => { this.modelLoading = false; });
    this.lifecycle.add('model', () => (this.serving ?? initial)?.close());
    step();

    const inject = process.env[INJECT_PREPARE_FAULT];
    const path = new CapturePath({
      stationId: c.station_id, verdictTopic: publisher.topics.verdict, captureDir: c.capture.dir, followSymlinks: c.capture.follow_symlinks,
      incompleteGraceMs: c.capture.incomplete_grace_ms, fields: c.capture.fields, prepare: { ...prepareOptions(c), ...(inject ? { inject: { throwOnNameContaining: inject } } : {}) },
    }, store, this.logger, this.events, initial);
    this.path = path;
    this.events.on('capture.queued', () => path.loop.wake());
    await this.lifecycle.start(new DriftMonitor(c.drift, this.events, (kind, message, data) => store.event(kind, message, data), this.logger));
    await this.lifecycle.start(path);
    const priority = path.prepare.priority;
    this.logger.info({ prepareThread: priority }, 'preparation thread started');
    if (priority && 'error' in priority) this.logger.warn({ error: priority.error }, 'could not lower the preparation thread\'s priority; it competes with inference at full priority');

    const openModel = (dir: string): Promise<Model> => this.openModel(dir);
    const golden = (m: Model): Promise<string | null> => checkGolden(m.bundle.dir, (file) => scoreFile(file, m, path.prepare));
    const models = new ModelSwitch({
      repo: c.model.dir, keepVersions: c.sync?.keep_versions ?? 3, fallbackAfter: c.model.fallback_after, store, logger: this.logger,
      events: this.events, swap: (m) => path.loop.swap(m), openModel, checkGolden: golden, holdSync: () => this.syncer?.hold() ?? Promise.resolve(),
    }, initial);
    this.models = models;
    await this.lifecycle.start(models);
    if (c.sync) {
      if (!models.isRepository) throw new Error('sync needs model.dir to be a repository (bundles + active), not a single bundle');
      this.syncer = new Syncer({
        settings: c.sync, store, logger: this.logger, repo: c.model.dir, active: () => this.serving?.bundle ?? null, openModel, checkGolden: golden,
        activate: (m, folder) => models.activate(m, folder, 'model sync'),
        shadow: async (m, folder) => {
          await m.close();
          await setShadow(c.model.dir, folder);
          store.event('shadow', `model sync staged ${folder} as the shadow candidate (sync.mode: shadow)`, { folder });
        },
        shadowFolder: () => readShadow(c.model.dir),
      });
      await this.lifecycle.start(this.syncer);
    }

    if (models.isRepository) {
      await this.lifecycle.start(new ShadowRunner({
        repo: c.model.dir, events: this.events, logger: this.logger, prepare: path.prepare,
        lineIdle: () => path.loop.idle && safeCount(() => store.queueCount()) === 0,
        openModel: (dir) => OnnxModel.open(dir, { ...modelOptions(c), niceIncrement: 19 }),
        save: (r) => store.shadowScore(r), event: (message, data) => store.event('shadow', message, data),
      }));
    }
    if (c.review.enabled) {
      // The review page in this process (docs/review.md): its own read-only connection, labels only
      // written. Loaded only when enabled: a station without it never loads the web server.
      const { ReviewServer } = await import('../review/server.js');
      const review = new ReviewServer({ database: c.database.path, modelDir: c.model.dir, stationId: c.station_id, listen: parseListen(c.review.listen), token: c.review.token });
      await this.lifecycle.start(review);
      this.logger.info({ review: `http://${review.address}/` }, 'review page listening');
    }
    await this.lifecycle.start(new CaptureIntake(c.capture, store, this.logger, this.events));
    this.notifier.ready(this.summary());
    this.startWatchdog();
  }

  /** The model in model.dir, or null for a fresh station whose first model comes from sync. */
  private async openInitialModel(store: Store): Promise<Model | null> {
    const c = this.config;
    const repo = c.model.dir;
    const isRepository = !existsSync(`${repo}/manifest.json`);
    try {
      if (isRepository && c.sync) await mkdir(repo, { recursive: true }); // sync installs into it
      if (isRepository && existsSync(repo)) await cleanStaging(repo); // what a crash mid-download left behind
      if (c.sync && (await holdsNoModel(repo))) {
        // a fresh station: start, keep captures queued, and score them once sync installs a model
        this.logger.warn({ dir: repo, sync: c.sync.url }, 'no model yet: waiting for the first one from model sync');
        store.event('model', `no model in ${repo}: waiting for the first one from ${c.sync.url}`);
        this.events.emit('fault.changed', { source: 'model', message: 'waiting for a model: none installed yet (model sync installs the first; captures stay queued)' });
        return null;
      }
      return await this.openModel(repo);
    } catch (err) {
      const code = (err as { code?: string }).code ?? 'MODEL_LOAD_FAILED';
      store.event('error', `model ${repo}: ${code}: ${(err as Error).message}`);
      throw err;
    }
  }

  private async openModel(dir: string): Promise<Model> {
    const model = await OnnxModel.open(dir, modelOptions(this.config));
    for (const w of model.load.warnings) this.logger.warn(w);
    return model;
  }

  /** Idempotent; the first call does the work. */
  stop(reason = 'stop requested'): Promise<void> {
    this.stopping ??= this.doStop(reason);
    return this.stopping;
  }

  summary(): string {
    const n = this.path?.recorder.counts ?? { pass: 0, flag: 0, error: 0 };
    const m = this.serving?.ref;
    const model = m ? `${m.name} v${m.version}` : 'no model';
    const queue = safeCount(() => this.store?.queueCount() ?? 0);
    const outbox = safeCount(() => this.store?.outboxCount() ?? 0);
    const error = this.faults.current;
    const fault = error ? `ERROR ${error}; ` : '';
    const p = this.publisher;
    const unmatched = this.path?.recorder.unmatched ? ` (${this.path.recorder.unmatched} without bundle or part: capture.fields did not match)` : '';
    return `${fault}scored ${n.pass + n.flag + n.error} (${n.flag} flag, ${n.error} error)${unmatched}; queue ${queue}; unpublished ${outbox}; ${model}; mqtt ${p?.connected ? 'connected' : `disconnected${p?.lastError ? ` (${p.lastError})` : ''}`}`;
  }

  /** A fault began or ended, a model was activated: the status topic and STATUS= say so at once. */
  private statusChanged(): void {
    if (this.publisher?.connected) this.publisher.publishStatus('online');
    this.notifier.status(this.summary());
  }

  private announce(a: StationEvents['model.activated']): void {
    const m = a.model;
    this.events.emit('fault.changed', { source: 'model', message: null });
    const caveat = modelCaveat(m);
    if (caveat) this.logger.warn(`the active model ${caveat}`);
    // an unfit model serving is a condition the line must act on; untrained / synthetic are in `model` itself
    this.events.emit('warning.changed', { source: 'model', message: m.fit === false ? `model: ${m.name} v${m.version} ${caveat}` : null });
    this.publisher?.setRetained('model', {
      name: m.name, version: m.version, sha256: m.sha256, bundle_sha256: a.bundleSha256, untrained: m.untrained ?? false, synthetic: m.synthetic ?? false, fit: m.fit ?? null,
      provider: a.provider, activated_at: new Date().toISOString(), previous: a.previous,
    });
    this.statusChanged();
  }

  private startWatchdog(): void {
    const interval = this.config.service.watchdog_ms ?? SystemdNotifier.watchdogIntervalMs();
    if (!interval) return;
    let busy = false;
    this.watchdogTimer = setInterval(() => {
      if (busy || this.stopping) return;
      busy = true;
      // This tick running proves the main loop answers; the ping proves the inference worker does
      // (no model yet: no inference worker to ask; the main loop answering is the proof).
      void (this.serving ? this.serving.ping(interval * 2) : Promise.resolve(true)).then((ok) => {
        busy = false;
        if (ok && !this.stopping) {
          this.notifier.watchdog();
          this.notifier.status(this.summary());
        } else if (!ok) {
          this.logger.error('inference worker did not answer the watchdog ping');
        }
      });
    }, interval);
  }

  private async doStop(reason: string): Promise<void> {
    this.notifier.stopping(`stopping: ${reason}`);
    this.logger.info({ reason }, 'stopping');
    // A start that failed within moments of connecting: give the connection a moment, so that the
    // `stopped` status with the reason reaches the line.
    if (this.startFailed) await this.publisher?.waitConnected(3000);
    // A stop during start waits for the step in progress (a model loading in its worker must not
    // be torn down mid-call: ONNX Runtime aborts the process), which then ends the start; what
    // it opened is stopped with the rest. (stop_timeout_ms bounds the wait.)
    await this.starting?.catch(() => undefined);
    if (this.watchdogTimer) clearInterval(this.watchdogTimer);
    await this.lifecycle.stopAll((name) => {
      if (name === 'database') this.store?.event('stop', `xray-qc stopped: ${reason}`, { summary: this.summary() });
    });
  }
}

/** A count for a status line; -1 when the database cannot answer (the status must still go out). */
function safeCount(f: () => number): number {
  try {
    return f();
  } catch {
    return -1;
  }
}

/** `<prefix>/label/set`: `{"id", "label", "by"?, "note"?, "correlation_id"?}` → `{result: "ok"|"error", …}` on `<prefix>/label/result`. */
function labelRequest(db: Db, payload: Buffer): Record<string, unknown> {
  let request: Record<string, unknown>;
  try {
    request = JSON.parse(payload.toString('utf8')) as Record<string, unknown>;
  } catch {
    return { result: 'error', code: 'LABEL_INVALID', message: 'not JSON', correlation_id: null };
  }
  const correlation_id = typeof request.correlation_id === 'string' ? request.correlation_id : null;
  const text = (v: unknown): string | null => (typeof v === 'string' ? v : null);
  try {
    const r = setLabel(db, { ref: text(request.id) ?? '', label: text(request.label) ?? '', by: text(request.by), note: text(request.note), source: 'mqtt' });
    return { result: 'ok', inspection: r.inspection, label: request.label, added: r.added, correlation_id };
  } catch (err) {
    return { result: 'error', code: (err as { code?: string }).code ?? 'LABEL_INVALID', message: (err as Error).message, correlation_id };
  }
}

function parseRequest(payload: Buffer): { correlation_id?: string } {
  try {
    const v = JSON.parse(payload.toString('utf8')) as { correlation_id?: unknown };
    return typeof v.correlation_id === 'string' ? { correlation_id: v.correlation_id } : {};
  } catch {
    return {};
  }
}
