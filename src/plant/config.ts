import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { issueLines } from '../model/manifest.js';
import { ConfigError } from '../service/config.js';

/**
 * The plant collector's configuration (`xray-qc collect --config plant.yaml`, docs/plant.md): as
 * strict as the station's — unknown keys are errors, secrets come from the environment, relative
 * paths are resolved against the file's folder, errors read `path: message`.
 */

const topic = z.string().regex(/^[^#\s$][^#\s]*$/, 'an MQTT topic filter (+ allowed, no #, no $share: the group is mqtt.group)');

export const PlantConfigSchema = z.strictObject({
  /** This collector's name: its MQTT client ids are `<collector_id>-<n>`. Two collectors need two names. */
  collector_id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,47}$/, 'letters, digits, _ and - (max 48)'),
  mqtt: z.strictObject({
    url: z.string().regex(/^(mqtts?|wss?):\/\//, 'mqtt://, mqtts://, ws:// or wss://'),
    /** The shared-subscription group: collectors in one group share the messages (`$share/<group>/…`). */
    group: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'letters, digits, _ and -').default('xray-qc-collect'),
    verdict_topic: topic.default('xray-qc/+/verdict'),
    label_topic: topic.nullable().default('xray-qc/+/label'),
    /** Connections per collector: a message is acknowledged only after its transaction commits, and one connection holds one message at a time, so commits batch across connections. */
    connections: z.number().int().min(1).max(64).default(16),
    /** How long the broker keeps a stopped collector's session (its unacknowledged messages). */
    session_expiry_s: z.number().int().min(0).max(4_294_967_295).default(7 * 86_400),
    username: z.string().min(1).nullable().default(null),
    password_env: z.string().min(1).nullable().default(null),
    ca: z.string().min(1).nullable().default(null),
    cert: z.string().min(1).nullable().default(null),
    key: z.string().min(1).nullable().default(null),
    keepalive_s: z.number().int().min(5).max(3600).default(30),
    reconnect_ms: z.number().int().min(100).max(600_000).default(1000),
  }),
  postgres: z.strictObject({
    /** The environment variable holding the connection URL (it carries the password). */
    url_env: z.string().min(1).default('XRAY_QC_PG_URL'),
    pool: z.number().int().min(1).max(32).default(4),
  }).default({ url_env: 'XRAY_QC_PG_URL', pool: 4 }),
  batch: z.strictObject({
    max: z.number().int().min(1).max(10_000).default(500),
    max_wait_ms: z.number().int().min(0).max(60_000).default(50),
    retry_ms: z.number().int().min(100).max(600_000).default(2000),
  }).default({ max: 500, max_wait_ms: 50, retry_ms: 2000 }),
  gaps: z.strictObject({
    /** A per-station seq gap still open after this long is reported (log line, alerts row). */
    report_after_s: z.number().min(1).max(30 * 86_400).default(600),
    check_s: z.number().min(1).max(86_400).default(60),
  }).default({ report_after_s: 600, check_s: 60 }),
});

type Raw = z.infer<typeof PlantConfigSchema>;

export interface PlantConfig extends Raw {
  source: string;
  mqtt: Raw['mqtt'] & { password: string | null };
  postgres: Raw['postgres'] & { url: string };
}

export function loadPlantConfig(path: string, env: NodeJS.ProcessEnv = process.env): PlantConfig {
  const source = resolve(path);
  let raw: unknown;
  try {
    raw = parseYaml(readFileSync(source, 'utf8'));
  } catch (err) {
    throw new ConfigError([`${source}: ${(err as Error).message.split('\n')[0]}`]);
  }
  return parsePlantConfig(raw, source, env);
}

export function parsePlantConfig(raw: unknown, source: string, env: NodeJS.ProcessEnv = process.env): PlantConfig {
  const result = PlantConfigSchema.safeParse(raw ?? {});
  if (!result.success) throw new ConfigError(issueLines(result.error));
  const c = result.data;
  const url = env[c.postgres.url_env];
  if (!url) throw new ConfigError([`postgres.url_env: environment variable ${c.postgres.url_env} is not set (postgres://user:password@host:5432/db)`]);
  const password = c.mqtt.password_env ? env[c.mqtt.password_env] || null : null;
  if (c.mqtt.password_env && c.mqtt.username && password === null) throw new ConfigError([`mqtt.password_env: environment variable ${c.mqtt.password_env} is not set (mqtt.username is)`]);
  const abs = (p: string | null): string | null => (p === null ? null : isAbsolute(p) ? p : resolve(dirname(source), p));
  return Object.freeze({
    ...c, source,
    mqtt: { ...c.mqtt, password, ca: abs(c.mqtt.ca), cert: abs(c.mqtt.cert), key: abs(c.mqtt.key) },
    postgres: { ...c.postgres, url },
  });
}
