import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { DEFAULT_MAX_PIXELS } from '../decode/tiff.js';
import { fieldPatternProblem } from '../capture/fields.js';
import type { ErrorCode } from '../errors.js';
import { PROVIDERS } from '../infer/messages.js';
import type { ModelOptions } from '../infer/model.js';
import { issueLines } from '../model/manifest.js';
import type { PrepareStageOptions } from '../prepare/stage.js';
import { parseListen } from '../review/auth.js';

/**
 * The station's configuration: one strict schema (unknown keys are errors), defaults, secrets from
 * the environment, relative paths resolved against the config file's folder. Errors read
 * `path: message`, one per line.
 */

const ms = z.number().int().nonnegative();

export const ConfigSchema = z.strictObject({
  station_id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/, 'letters, digits, _ and - (max 64)'),
  capture: z.strictObject({
    dir: z.string().min(1),
    patterns: z.array(z.string().min(1)).min(1).default(['**/*.tif', '**/*.tiff']),
    ignore: z.array(z.string().min(1)).default(['**/.*', '**/*.part', '**/*.tmp']),
    settle_ms: ms.max(600_000).default(500),
    incomplete_grace_ms: ms.max(600_000).default(5000),
    max_pixels: z.number().int().positive().default(DEFAULT_MAX_PIXELS),
    poll: z.boolean().default(false),
    follow_symlinks: z.boolean().default(false),
    rescan_s: z.number().min(0.2).max(86_400).default(60),
    /** How far below the daemon's CPU priority decoding + preprocessing run (niceness steps). */
    prepare_niceness: z.number().int().min(0).max(19).default(10),
    /** Where each capture's production bundle and part id come from (docs/quality.md). */
    fields: z.strictObject({
      path: z.string().min(1).nullable().default(null).superRefine((p, ctx) => {
        const why = p === null ? null : fieldPatternProblem(p);
        if (why) ctx.addIssue({ code: 'custom', message: why });
      }),
      tags: z.boolean().default(false),
    }).default({ path: null, tags: false }),
  }),
  model: z.strictObject({
    dir: z.string().min(1),
    providers: z.array(z.enum(PROVIDERS)).min(1).default(['cpu']),
    intra_op_threads: z.number().int().positive().optional(),
    intra_op_spinning: z.boolean().default(false),
    device_id: z.number().int().nonnegative().default(0),
    /** Removed (issue 19): onnxruntime-node never passed these to TensorRT. Kept only to say so. */
    tensorrt: z.unknown().optional(),
    /** Fall back to the previous model after this many consecutive inference failures. */
    fallback_after: z.number().int().positive().default(3),
  }),
  database: z.strictObject({
    path: z.string().min(1),
  }),
  mqtt: z.strictObject({
    url: z.string().regex(/^mqtts?:\/\/[^\s]+$/, 'must be mqtt://host[:port] or mqtts://host[:port]'),
    topic_prefix: z.string().regex(/^[^#+\s]+[^/#+\s]$/, 'no wildcards, spaces or trailing /').optional(),
    client_id: z.string().min(1).optional(),
    username: z.string().min(1).nullable().default(null),
    password_env: z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'an environment variable name').nullable().default('XRAY_QC_MQTT_PASSWORD'),
    /** systemd `LoadCredential=` name, read from $CREDENTIALS_DIRECTORY when the variable is unset. */
    password_credential: z.string().regex(/^[A-Za-z0-9._-]+$/, 'a credential name').nullable().default('mqtt-password'),
    ca: z.string().nullable().default(null),
    cert: z.string().nullable().default(null),
    key: z.string().nullable().default(null),
    reconnect_ms: ms.min(100).max(600_000).default(2000),
    resend_delay_ms: ms.max(60_000).default(1000),
    reconnect_max_ms: ms.min(100).max(600_000).default(10_000),
    keepalive_s: z.number().int().min(0).max(3600).default(30),
    plain_topic: z.boolean().default(false),
    /** Accept labels from an HMI on `<prefix>/label/set` (docs/quality.md; restrict who may publish there in the broker's ACL). */
    label_topic: z.boolean().default(false),
    /** Publish every label (QoS 1, once acknowledged) on `<prefix>/label` for the plant collector (docs/plant.md). */
    label_events: z.boolean().default(true),
    status_interval_s: z.number().int().min(1).max(3600).default(30),
  }),
  sync: z.strictObject({
    url: z.string().regex(/^https?:\/\/\S+$/, 'must be an http(s) URL'),
    channel: z.string().regex(/^[A-Za-z0-9._-]+$/).default('stable'),
    interval_s: z.number().int().min(1).max(86_400).default(300),
    trusted_keys: z.array(z.string().min(1)).default([]),
    require_signature: z.boolean().default(true),
    keep_versions: z.number().int().min(2).max(100).default(3),
    allow_insecure_http: z.boolean().default(false),
    max_manifest_bytes: z.number().int().min(1024).max(16 * 1024 * 1024).default(1024 * 1024),
    max_input_pixels: z.number().int().positive().default(16_000_000),
    mode: z.enum(['activate', 'shadow']).default('activate'),
    /** Install bundles whose manifest says fit: false (the fitness rule failed when they were trained). */
    allow_unfit: z.boolean().default(false),
  }).refine((s) => !s.require_signature || s.trusted_keys.length > 0, { message: 'at least one trusted key when require_signature is true', path: ['trusted_keys'] })
    .nullable().default(null),
  drift: z.strictObject({
    window: z.number().int().min(1).max(10_000).default(50),
    max_clipped: z.number().min(0).max(1).default(0.01),
  }).default({ window: 50, max_clipped: 0.01 }),
  /** The review page (docs/review.md): `enabled` runs it inside the daemon; `xray-qc review serve` runs it alone. */
  review: z.strictObject({
    enabled: z.boolean().default(false),
    listen: z.string().refine((s) => { try { parseListen(s); return true; } catch { return false; } }, 'HOST:PORT with an IP address, e.g. 127.0.0.1:8080').default('127.0.0.1:8080'),
    token_env: z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'an environment variable name').nullable().default('XRAY_QC_REVIEW_TOKEN'),
    token_credential: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'a systemd credential name').nullable().default(null),
  }).default({ enabled: false, listen: '127.0.0.1:8080', token_env: 'XRAY_QC_REVIEW_TOKEN', token_credential: null }),
  service: z.strictObject({
    stop_timeout_ms: ms.min(100).max(600_000).default(20_000),
    watchdog_ms: ms.min(100).max(600_000).nullable().default(null),
  }).default({ stop_timeout_ms: 20_000, watchdog_ms: null }),
});

export type RawConfig = z.infer<typeof ConfigSchema>;

export interface Config extends RawConfig {
  /** The config file's absolute path. */
  source: string;
  mqtt: RawConfig['mqtt'] & { topic_prefix: string; password: string | null };
  /** `token`: from review.token_env's variable or review.token_credential, never from the file. */
  review: RawConfig['review'] & { token: string | null };
}

/** How every model of this station is opened (daemon start, sync, operator switches). */
export function modelOptions(c: Config): ModelOptions {
  return { providers: c.model.providers, intraOpThreads: c.model.intra_op_threads, intraOpSpinning: c.model.intra_op_spinning, deviceId: c.model.device_id };
}

/** The station's one preparation stage. */
export function prepareOptions(c: Config): PrepareStageOptions {
  return { decode: { maxPixels: c.capture.max_pixels }, niceIncrement: c.capture.prepare_niceness };
}

export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID' satisfies ErrorCode;
  constructor(readonly lines: string[]) {
    super(lines.join('\n'));
    this.name = 'ConfigError';
  }
}

/**
 * A YAML syntax error as `(yaml) FILE:LINE:COL: message`, then the file's lines around it as the
 * yaml library shows them (indented), so that the offending line is on screen.
 */
function yamlErrorLines(source: string, err: Error & { linePos?: Array<{ line: number; col: number }> }): string[] {
  const [first, ...frame] = err.message.split('\n');
  const at = err.linePos?.[0];
  const where = at ? `${source}:${at.line}:${at.col}` : source;
  return [`(yaml) ${where}: ${first.replace(/:$/, '')}`, ...frame.filter((l) => l.trim() !== '').map((l) => `    ${l}`)];
}

export function loadConfig(path: string, env: NodeJS.ProcessEnv = process.env): Config {
  const source = resolve(path);
  let text: string;
  try {
    text = readFileSync(source, 'utf8');
  } catch (err) {
    throw new ConfigError([`${source}: ${(err as Error).message}`]);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    throw new ConfigError(yamlErrorLines(source, err as Error & { linePos?: Array<{ line: number; col: number }> }));
  }
  return parseConfig(raw, source, env);
}

export function parseConfig(raw: unknown, source: string, env: NodeJS.ProcessEnv = process.env): Config {
  const result = ConfigSchema.safeParse(raw ?? {});
  if (!result.success) throw new ConfigError(issueLines(result.error));
  const c = result.data;
  if (c.model.tensorrt !== undefined) {
    throw new ConfigError(['model.tensorrt: removed: onnxruntime-node passes only the device id to TensorRT, which then ignores its ORT_TENSORRT_* settings, so fp16, int8 and engine_cache_dir did nothing (docs/deploy.md); delete this section']);
  }
  const base = dirname(source);
  const abs = (p: string): string => (isAbsolute(p) ? p : resolve(base, p));
  const nullable = (p: string | null): string | null => (p === null ? null : abs(p));
  const password = (c.mqtt.password_env && env[c.mqtt.password_env]) || credential(c.mqtt.password_credential, env); // empty = unset
  if (c.mqtt.username && (c.mqtt.password_env || c.mqtt.password_credential) && password === null) {
    throw new ConfigError([`mqtt.password_env: neither environment variable ${c.mqtt.password_env ?? '(none)'} nor credential ${c.mqtt.password_credential ?? '(none)'} in $CREDENTIALS_DIRECTORY is set (mqtt.username is)`]);
  }
  return Object.freeze({
    ...c,
    source,
    capture: { ...c.capture, dir: abs(c.capture.dir) },
    model: { ...c.model, dir: abs(c.model.dir) },
    database: { path: abs(c.database.path) },
    review: { ...c.review, token: (c.review.token_env && env[c.review.token_env]) || credential(c.review.token_credential, env) },
    sync: c.sync ? { ...c.sync, url: c.sync.url.replace(/\/+$/, ''), trusted_keys: c.sync.trusted_keys.map(abs) } : null,
    mqtt: {
      ...c.mqtt,
      topic_prefix: c.mqtt.topic_prefix ?? `xray-qc/${c.station_id}`,
      ca: nullable(c.mqtt.ca), cert: nullable(c.mqtt.cert), key: nullable(c.mqtt.key),
      password,
    },
  });
}

/** A systemd credential (`LoadCredential=name:…`): the file's text without its final newline, or null. */
function credential(name: string | null, env: NodeJS.ProcessEnv): string | null {
  const dir = env.CREDENTIALS_DIRECTORY;
  if (!name || !dir) return null;
  try {
    return readFileSync(resolve(dir, name), 'utf8').replace(/\r?\n$/, '') || null;
  } catch {
    return null;
  }
}
