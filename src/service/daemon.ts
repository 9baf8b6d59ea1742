import { existsSync } from 'node:fs';
import { mkdir, realpath } from 'node:fs/promises';
import type { Logger } from 'pino';
import { CaptureWatcher } from '../capture/watcher.js';
import { cleanStaging, holdsNoModel } from '../model/repository.js';
import { Publisher } from '../publish/publisher.js';
import { openDatabase, type Db } from '../record/database.js';
import { Store } from '../record/store.js';
import { Scorer } from '../score/scorer.js';
import { Syncer } from '../sync/syncer.js';
import { scorerOptions, type Config } from './config.js';
import { tensorrtEnvironment } from '../infer/providers.js';
import { ModelSwitch } from './models.js';
import { permissionFindings } from './permissions.js';
import { Pipeline } from './pipeline.js';
import { SystemdNotifier } from './systemd.js';

interface Component {
  name: string;
  stop: () => Promise<void> | void;
}

/**
 * `xray-qc run`: owns the components and their order. Start: database → MQTT (connects in the
 * background) → model (loaded and warmed) → capture loop → model switching and sync → watcher
 * (+ reconcile) → READY=1. Stop: the reverse, so the capture in flight finishes and is recorded
 * before anything it needs goes away.
 */
export class Daemon {
  private readonly started: Component[] = [];
  private db: Db | null = null;
  private store: Store | null = null;
  private publisher: Publisher | null = null;
  private pipeline: Pipeline | null = null;
  private models: ModelSwitch | null = null;
  private syncer: Syncer | null = null;
  private watcher: CaptureWatcher | null = null;
  private watchdogTimer: NodeJS.Timeout | null = null;
  private stopping: Promise<void> | null = null;
  /** Why the last capture could not be queued (the database refused), or null. */
  private queueError: string | null = null;
  /** Why `start` failed (code: message), or null; the `stopped` status carries it. */
  private startError: string | null = null;

  constructor(
    private readonly config: Config,
    private readonly logger: Logger,
    private readonly notifier: SystemdNotifier,
    private readonly version: string,
  ) {}

  private get scorer(): Scorer | null {
    return this.pipeline?.activeScorer ?? null;
  }

  async start(signal?: AbortSignal): Promise<void> {
    try {
      await this.startComponents(signal);
    } catch (err) {
      const code = (err as { code?: string }).code;
      this.startError = `start failed: ${code ? `${code}: ` : ''}${(err as Error).message}`;
      throw err;
    }
  }

  private async startComponents(signal?: AbortSignal): Promise<void> {
    const c = this.config;
    const step = (): void => {
      if (signal?.aborted) throw new Error('start aborted');
    };
    this.db = openDatabase(c.database.path);
    const store = new Store(this.db);
    this.store = store;
    this.started.push({ name: 'database', stop: () => { this.db?.close(); } });
    store.event('start', `xray-qc ${this.version} starting`, { pid: process.pid, config: c.source });
    for (const finding of permissionFindings(c)) {
      this.logger.warn(`permissions: ${finding}`);
      store.event('security', finding);
    }
    step();

    // MQTT before the model: a model that takes minutes to load (TensorRT) or fails to load is
    // seen on the status topic, with the reason (`error`) when the start fails.
    this.publisher = new Publisher(c, store, this.logger, () => ({
      model: this.scorer?.modelRef ?? null, queue: safeCount(() => store.queueCount()),
      error: this.fault(),
    }), this.version);
    // Commands are subscribed on connect: registered before it.
    this.publisher.onCommand('cmd/sync', async (payload) => {
      const request = parseRequest(payload);
      const result = this.syncer ? await this.syncer.check('mqtt request', true) : { result: 'skipped', message: 'the station is still starting' };
      return { ...result, correlation_id: request.correlation_id ?? null };
    });
    await this.publisher.start();
    this.started.push({ name: 'mqtt', stop: () => this.publisher?.stop() });

    let scorer: Scorer | null = null;
    try {
      const switcher = new ModelSwitch({
        config: c, store, logger: this.logger, pipeline: () => this.pipeline!, announce: (s, previous) => this.announceModel(s, previous),
        holdSync: () => this.syncer?.hold() ?? Promise.resolve(),
      });
      this.models = switcher;
      if (switcher.isRepository && c.sync) await mkdir(switcher.repo, { recursive: true }); // sync installs into it
      if (switcher.isRepository && existsSync(switcher.repo)) await cleanStaging(switcher.repo); // what a crash mid-download left behind
      // TensorRT reads its settings from the environment when a session is created.
      Object.assign(process.env, tensorrtEnvironment(c.model.providers, c.model.tensorrt));
      if (c.sync && (await holdsNoModel(switcher.repo))) {
        // a fresh station: start, keep captures queued, and score them once sync installs a model
        this.logger.warn({ dir: switcher.repo, sync: c.sync.url }, 'no model yet: waiting for the first one from model sync');
        store.event('model', `no model in ${switcher.repo}: waiting for the first one from ${c.sync.url}`);
      } else {
        scorer = await Scorer.open(c.model.dir, scorerOptions(c));
      }
    } catch (err) {
      const code = (err as { code?: string }).code ?? 'MODEL_LOAD_FAILED';
      store.event('error', `model ${c.model.dir}: ${code}: ${(err as Error).message}`);
      throw err;
    }
    this.started.push({ name: 'model', stop: () => (this.scorer ?? scorer)?.close() });
    if (scorer) this.modelLoaded(scorer, store);
    step();

    this.syncer = new Syncer({
      config: c, store, logger: this.logger, repo: c.model.dir, active: () => this.scorer?.bundle ?? null,
      activate: (s, folder) => this.models!.activate(s, folder, 'model sync'),
    });

    this.pipeline = new Pipeline({
      stationId: c.station_id,
      verdictTopic: this.publisher.topics.verdict,
      incompleteGraceMs: c.capture.incomplete_grace_ms,
      confineTo: c.capture.follow_symlinks ? null : await realpath(c.capture.dir).catch(() => c.capture.dir),
      store,
      scorer,
      logger: this.logger,
      onRecorded: () => this.publisher?.kick(),
      onFault: () => this.faultChanged(),
      onModelFailures: (n) => this.models?.onFailures(n),
    });
    await this.pipeline.start();
    this.started.push({ name: 'pipeline', stop: () => this.pipeline?.stop() });

    await this.models!.start(scorer);
    this.started.push({ name: 'model switching', stop: () => this.models?.stop() });
    if (c.sync) {
      if (!this.models!.isRepository) throw new Error('sync needs model.dir to be a repository (bundles + active), not a single bundle');
      await this.syncer.start();
      this.started.push({ name: 'sync', stop: () => this.syncer?.stop() });
    }

    const logger = this.logger;
    const pipelineRef = (): Pipeline | null => this.pipeline;
    const queueFault = (message: string | null): void => {
      if (message === this.queueError) return;
      this.queueError = message;
      this.faultChanged();
    };
    this.watcher = new CaptureWatcher({
      dir: c.capture.dir, patterns: c.capture.patterns, ignore: c.capture.ignore, settleMs: c.capture.settle_ms,
      poll: c.capture.poll, logger: this.logger,
      onSettled: function queue(this: void, f) {
        try {
          if (store.auditedByStat(f.path, f.size, f.mtimeMs)) return;
          store.enqueue({ file_path: f.path, file_bytes: f.size, file_mtime_ms: f.mtimeMs });
          queueFault(null);
          pipelineRef()?.wake();
        } catch (err) {
          queueFault(`database: ${(err as Error).message}`);
          // The database refused (disk full, I/O error): the file stays where it is; try again
          // later (and the reconcile at the next start finds it in any case).
          logger.error({ file: f.path, err: (err as Error).message }, 'could not queue capture; retrying in 5 s');
          setTimeout(() => queue(f), 5000).unref();
        }
      },
    });
    await this.watcher.start();
    this.started.push({ name: 'watcher', stop: () => this.watcher?.stop() });
    const known = (f: { path: string; size: number; mtimeMs: number }): boolean => store.auditedByStat(f.path, f.size, f.mtimeMs) || store.isQueued(f.path);
    const found = await this.watcher.reconcile(known);
    this.watcher.startRescan(c.capture.rescan_s * 1000, known, (missing) => {
      const message = missing ? `capture folder ${c.capture.dir} is missing` : `capture folder ${c.capture.dir} is back`;
      (missing ? this.logger.error.bind(this.logger) : this.logger.info.bind(this.logger))(message);
      store.event(missing ? 'error' : 'capture', message);
      this.faultChanged();
    });
    this.logger.info({ dir: c.capture.dir, found, queued: store.queueCount() }, 'watching the capture folder');
    this.pipeline.wake();

    // what is known only now (no model yet, a missing folder) goes to the status topic at once
    if (this.fault() && this.publisher?.connected) this.publisher.publishStatus('online');
    this.notifier.ready(this.summary());
    this.startWatchdog();
  }

  /** Idempotent; the first call does the work. */
  stop(reason = 'stop requested'): Promise<void> {
    this.stopping ??= this.doStop(reason);
    return this.stopping;
  }

  summary(): string {
    const n = this.pipeline?.counts ?? { pass: 0, flag: 0, error: 0, skipped: 0 };
    const model = this.scorer ? `${this.scorer.modelRef.name} v${this.scorer.modelRef.version}` : 'no model';
    const queue = safeCount(() => this.store?.queueCount() ?? 0);
    const outbox = safeCount(() => this.store?.outboxCount() ?? 0);
    const error = this.fault();
    const fault = error ? `ERROR ${error}; ` : '';
    return `${fault}scored ${n.pass + n.flag + n.error} (${n.flag} flag, ${n.error} error); queue ${queue}; unpublished ${outbox}; ${model}; mqtt ${this.publisher?.connected ? 'connected' : `disconnected${this.publisher?.lastError ? ` (${this.publisher.lastError})` : ''}`}`;
  }

  /** The station fault the line must see (status topic `error`, STATUS=), or null. */
  private fault(): string | null {
    return this.startError ?? this.pipeline?.recordError ?? this.queueError
      ?? (this.watcher?.folderMissing ? `capture folder ${this.config.capture.dir} is missing` : null)
      ?? (this.pipeline && !this.scorer ? 'waiting for a model: none installed yet (model sync installs the first; captures stay queued)' : null);
  }

  /** A fault began or ended: the status topic and STATUS= say so at once, not at the next interval. */
  private faultChanged(): void {
    if (this.publisher?.connected) this.publisher.publishStatus('online');
    this.notifier.status(this.summary());
  }

  private modelLoaded(scorer: Scorer, store: Store): void {
    for (const w of scorer.load.warnings) this.logger.warn(w);
    const m = scorer.bundle;
    store.modelActivated({ name: m.manifest.name, version: m.manifest.version, sha256: m.modelSha256, bundleSha256: m.manifestSha256, dir: m.dir, how: 'start', previous: null });
    store.event('model', `loaded ${m.manifest.name} v${m.manifest.version} on ${scorer.load.provider}`, { dir: m.dir });
    this.logger.info({ model: scorer.modelRef, provider: scorer.load.provider, warmupMs: Math.round(scorer.load.warmupMs), prepareThread: scorer.prepareThread }, 'model loaded');
    const thread = scorer.prepareThread;
    if (thread && 'error' in thread) this.logger.warn({ error: thread.error }, 'could not lower the preparation thread\'s priority; it competes with inference at full priority');
    if (m.manifest.untrained) this.logger.warn('the active model is the UNTRAINED demo model: its verdicts mean nothing');
    else if (m.manifest.synthetic) this.logger.warn('the active model was trained on synthetic captures only: a demonstration');
  }

  private announceModel(scorer: Scorer, previous: string | null): void {
    const m = scorer.bundle.manifest;
    this.publisher?.setRetained('model', {
      name: m.name, version: m.version, sha256: scorer.bundle.modelSha256, bundle_sha256: scorer.bundle.manifestSha256, untrained: m.untrained ?? false, synthetic: m.synthetic ?? false,
      provider: scorer.load.provider, activated_at: new Date().toISOString(), previous,
    });
    if (this.publisher?.connected) this.publisher.publishStatus('online');
    this.notifier.status(this.summary());
  }

  private startWatchdog(): void {
    const interval = this.config.service.watchdog_ms ?? SystemdNotifier.watchdogIntervalMs();
    if (!interval) return;
    let busy = false;
    this.watchdogTimer = setInterval(() => {
      if (busy || this.stopping) return;
      busy = true;
      // This tick running proves the main loop answers; the ping proves the inference worker does.
      // no model yet: no inference worker to ask; the main loop answering is the proof
      void (this.scorer ? this.scorer.ping(interval * 2) : Promise.resolve(true)).then((ok) => {
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
    if (this.startError) await this.publisher?.waitConnected(3000);
    if (this.watchdogTimer) clearInterval(this.watchdogTimer);
    for (const c of [...this.started].reverse()) {
      if (c.name === 'database') this.store?.event('stop', `xray-qc stopped: ${reason}`, { summary: this.summary() });
      try {
        await c.stop();
      } catch (err) {
        this.logger.error({ component: c.name, err: (err as Error).message }, 'error while stopping');
      }
    }
    this.started.length = 0;
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

function parseRequest(payload: Buffer): { correlation_id?: string } {
  try {
    const v = JSON.parse(payload.toString('utf8')) as { correlation_id?: unknown };
    return typeof v.correlation_id === 'string' ? { correlation_id: v.correlation_id } : {};
  } catch {
    return {};
  }
}
