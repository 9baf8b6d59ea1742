import type { Logger } from 'pino';
import { Confinement } from '../capture/confine.js';
import { FieldReader, type FieldSettings } from '../capture/fields.js';
import type { Component, EventBus } from '../events.js';
import type { Model } from '../infer/model.js';
import { scorePrepared } from '../infer/score.js';
import type { StationEvents } from '../pipeline/messages.js';
import { CaptureLoop } from '../pipeline/loop.js';
import type { LoopStages } from '../pipeline/stages.js';
import { PrepareStage, type PrepareStageOptions } from '../prepare/stage.js';
import { Recorder } from '../record/recorder.js';
import type { Store } from '../record/store.js';

export interface CapturePathSettings {
  stationId: string;
  verdictTopic: string;
  captureDir: string;
  followSymlinks: boolean;
  incompleteGraceMs: number;
  prepare: PrepareStageOptions;
  fields: FieldSettings;
}

/**
 * The capture path put together: confinement (capture) → the preparation stage → the model
 * (infer) → the decision → the record stage, scheduled by the loop. One preparation stage
 * serves every model the station loads.
 */
export class CapturePath implements Component {
  readonly name = 'capture path';
  readonly prepare: PrepareStage;
  readonly recorder: Recorder;
  readonly loop: CaptureLoop<Model>;
  private confinement: Confinement | null = null;

  constructor(private readonly settings: CapturePathSettings, store: Store, logger: Logger, events: EventBus<StationEvents>, initial: Model | null) {
    this.prepare = new PrepareStage(settings.prepare);
    const fields = new FieldReader(settings.captureDir, settings.fields);
    this.recorder = new Recorder(fields.enabled ? fields : null, settings.stationId, settings.verdictTopic, store, logger, events);
    const stage = this.prepare;
    const stages: LoopStages<Model> = {
      queued: (n) => store.queueHead(n),
      audited: (file, sha256) => store.auditedBySha(file, sha256),
      dequeue: (file) => store.dequeue(file),
      prepare: async (capture, model) => {
        const outside = await this.confinement?.check(capture.file);
        if (outside) return { ok: false, file: capture.file, stat: null, sha256: null, error: { code: 'FILE_OUTSIDE_CAPTURE_DIR', message: outside } };
        return stage.prepare(capture.file, model.contract);
      },
      release: (p) => stage.release(p),
      score: (p, model, startedAt) => scorePrepared(model, p, stage, startedAt),
      record: (capture, model, prepared, scored) => this.recorder.record(capture, model.bundle, prepared, scored),
    };
    this.loop = new CaptureLoop(stages, { logger, events, incompleteGraceMs: settings.incompleteGraceMs }, initial);
  }

  async start(): Promise<void> {
    this.confinement ??= await Confinement.create(this.settings.captureDir, this.settings.followSymlinks);
    await this.prepare.start();
    await this.loop.start();
  }

  /** The capture in inference finishes and is recorded, then the preparation thread ends. */
  async stop(): Promise<void> {
    await this.loop.stop();
    await this.prepare.stop();
  }
}
