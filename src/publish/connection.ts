import { readFileSync } from 'node:fs';
import type { IClientOptions } from 'mqtt';

/** The `mqtt` section of the station's config (the password resolved). */
export interface MqttSettings {
  url: string;
  topic_prefix: string;
  client_id?: string;
  username: string | null;
  password: string | null;
  ca: string | null;
  cert: string | null;
  key: string | null;
  reconnect_ms: number;
  resend_delay_ms: number;
  reconnect_max_ms: number;
  keepalive_s: number;
  plain_topic: boolean;
  status_interval_s: number;
  label_events: boolean;
}

/** Credentials and TLS files for a connection to the station's broker (the daemon's and `run --check`'s). */
export function connectAuth(m: MqttSettings): Pick<IClientOptions, 'username' | 'password' | 'ca' | 'cert' | 'key'> {
  return {
    ...(m.username ? { username: m.username, password: m.password ?? undefined } : {}),
    ...(m.ca ? { ca: readFileSync(m.ca) } : {}),
    ...(m.cert ? { cert: readFileSync(m.cert) } : {}),
    ...(m.key ? { key: readFileSync(m.key) } : {}),
  };
}
