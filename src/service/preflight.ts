import { constants, existsSync } from 'node:fs';
import { modelCaveat } from '../model/caveat.js';
import { access, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import mqtt from 'mqtt';
import { holdsNoModel } from '../model/repository.js';
import { connectAuth } from '../publish/connection.js';
import { OnnxModel } from '../infer/onnx-model.js';
import { checkRegistryUrl } from '../sync/http.js';
import { loadPublicKeys } from '../sync/signing.js';
import { modelOptions, type Config } from './config.js';

/**
 * `xray-qc run --check`: what `run` will need, checked before the station is started — the model
 * repository loads (manifest, sha256, graph, a warm-up inference), the capture folder can be read,
 * the database's folder can be written, key and certificate files parse, the sync URL is one the
 * syncer accepts, and whether the broker answers (a warning: the station runs without it).
 */

export interface Finding {
  level: 'error' | 'warning';
  /** The config key the finding is about. */
  path: string;
  message: string;
}

export interface PreflightOptions {
  /** How long to wait for the broker's CONNACK (default 3 s). */
  brokerTimeoutMs?: number;
}

export async function preflight(c: Config, o: PreflightOptions = {}): Promise<Finding[]> {
  const findings: Finding[] = [];
  const error = (path: string, message: string): void => { findings.push({ level: 'error', path, message }); };
  const warning = (path: string, message: string): void => { findings.push({ level: 'warning', path, message }); };

  await checkModel(c, error, warning);
  await checkReadableFolder(c.capture.dir, 'capture.dir', error);
  await checkWritableParent(c.database.path, error);
  for (const key of ['ca', 'cert', 'key'] as const) {
    const path = c.mqtt[key];
    if (path) await access(path, constants.R_OK).catch((err: Error) => error(`mqtt.${key}`, `${path}: ${reason(err)}`));
  }
  if (c.sync) {
    try {
      checkRegistryUrl(c.sync.url, c.sync.allow_insecure_http);
    } catch (err) {
      error('sync.url', (err as Error).message);
    }
    for (const path of c.sync.trusted_keys) {
      await loadPublicKeys([path]).catch((err: Error) => error('sync.trusted_keys', `${path}: ${reason(err)}`));
    }
  }
  const broker = await brokerAnswers(c, o.brokerTimeoutMs ?? 3000);
  if (broker.refused) error('mqtt.url', broker.refused);
  else if (!broker.ok) warning('mqtt.url', `${c.mqtt.url} did not answer within ${(o.brokerTimeoutMs ?? 3000) / 1000} s (${broker.why}); the station runs without it, verdicts wait in the outbox`);
  return findings;
}

async function checkModel(c: Config, error: (p: string, m: string) => void, warning: (p: string, m: string) => void): Promise<void> {
  const dir = c.model.dir;
  if (await holdsNoModel(dir)) { // the rule `run` follows
    const what = existsSync(dir) ? 'is empty' : 'does not exist';
    if (c.sync) warning('model.dir', `${dir} ${what}: the station will wait for its first model from ${c.sync.url}`);
    else error('model.dir', `${dir} ${what}${what === 'is empty' ? ': put a bundle there (docs/model-bundle.md) or configure sync' : ''}`);
    return;
  }
  try {
    const model = await OnnxModel.open(dir, modelOptions(c));
    await model.close();
    const m = model.bundle.manifest;
    const caveat = modelCaveat(m);
    if (caveat) warning('model.dir', `the active model ${m.name} v${m.version} ${caveat}`);
  } catch (err) {
    const code = (err as { code?: string }).code;
    error('model.dir', `${code ? `${code}: ` : ''}${(err as Error).message}`);
  }
}

async function checkReadableFolder(dir: string, path: string, error: (p: string, m: string) => void): Promise<void> {
  const s = await stat(dir).catch(() => null);
  if (!s) return error(path, `${dir} does not exist`);
  if (!s.isDirectory()) return error(path, `${dir} is not a folder`);
  await access(dir, constants.R_OK | constants.X_OK).catch(() => error(path, `${dir} cannot be read by this user`));
}

/** The database file's folder, or the nearest existing one above it (run creates the rest), is writable. */
async function checkWritableParent(file: string, error: (p: string, m: string) => void): Promise<void> {
  let dir = dirname(file);
  while (!(await stat(dir).then((s) => s.isDirectory(), () => false))) {
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  await access(dir, constants.W_OK | constants.X_OK).catch(() => error('database.path', `${dir} cannot be written by this user (the database ${file} goes there)`));
}

/** One connection attempt: ok, refused by the broker (credentials, client id), or no answer and why. */
async function brokerAnswers(c: Config, timeoutMs: number): Promise<{ ok: boolean; refused?: string; why?: string }> {
  const m = c.mqtt;
  let auth: ReturnType<typeof connectAuth>;
  try {
    auth = connectAuth(m);
  } catch {
    return { ok: false, why: 'TLS files unreadable' };
  }
  return new Promise((resolve) => {
    const client = mqtt.connect(m.url, {
      clientId: `${m.client_id ?? `xray-qc-${c.station_id}`}-check`, clean: true, reconnectPeriod: 0, connectTimeout: timeoutMs, ...auth,
    });
    let done = false;
    const finish = (r: { ok: boolean; refused?: string; why?: string }): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      client.end(true);
      resolve(r);
    };
    const timer = setTimeout(() => finish({ ok: false, why: 'timed out' }), timeoutMs + 200);
    client.on('connect', () => finish({ ok: true }));
    client.on('error', (err: Error & { code?: string | number }) => {
      if (typeof err.code === 'number') finish({ ok: false, refused: `${m.url} refused the connection: ${err.message}` });
      else finish({ ok: false, why: err.message });
    });
    client.on('close', () => finish({ ok: false, why: 'connection closed' }));
  });
}

function reason(err: Error): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES') return 'permission denied';
  return err.message;
}
