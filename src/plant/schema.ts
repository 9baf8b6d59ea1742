import type pg from 'pg';

/**
 * The plant database (docs/plant.md): numbered migrations, like the station's, recorded in
 * `xray_qc_schema`; applied under an advisory lock so that collectors starting together migrate
 * once. `inspections` is partitioned by month of `scored_at` (native range partitioning; a
 * month's partition is created by the first transaction that needs it). `received` is the
 * idempotency register: one row per inspection id, so `ON CONFLICT (id) DO NOTHING` holds across
 * partitions (a partitioned table's unique keys must include the partition key).
 */

export const PLANT_MIGRATIONS: string[] = [
  // 1: inspections, labels, the register, alerts, and the plant's views
  `
  CREATE TABLE received (
    id              text PRIMARY KEY,
    station_id      text NOT NULL,
    seq             bigint NOT NULL,
    scored_at       timestamptz NOT NULL,
    payload_sha256  text NOT NULL,        -- of the verdict message, keys sorted
    source          text NOT NULL,        -- mqtt, backfill
    received_at     timestamptz NOT NULL DEFAULT now()
  );
  CREATE UNIQUE INDEX received_station_seq ON received (station_id, seq);
  CREATE TABLE inspections (
    id             text NOT NULL,
    station_id     text NOT NULL,
    seq            bigint NOT NULL,
    file           text NOT NULL,
    captured_at    timestamptz,
    scored_at      timestamptz NOT NULL,
    verdict        text NOT NULL CHECK (verdict IN ('pass', 'flag', 'error')),
    reason         text NOT NULL,
    p_abnormal     double precision,
    threshold      double precision,
    model_name     text,
    model_version  integer,
    model_sha256   text,
    bundle_sha256  text,
    latency_ms     double precision,
    error_code     text,
    error_message  text,
    bundle         text,
    part_id        text,
    PRIMARY KEY (id, scored_at)
  ) PARTITION BY RANGE (scored_at);
  CREATE INDEX inspections_station ON inspections (station_id, scored_at);
  CREATE INDEX inspections_bundle ON inspections (bundle, scored_at);
  CREATE TABLE labels (
    station_id     text NOT NULL,
    label_id       bigint NOT NULL,      -- the station's labels.id
    inspection_id  text NOT NULL,
    label          text NOT NULL CHECK (label IN ('normal', 'abnormal')),
    labelled_by    text,
    note           text,
    source         text NOT NULL,
    labelled_at    timestamptz NOT NULL,
    payload_sha256 text NOT NULL,
    received_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (station_id, label_id)
  );
  CREATE INDEX labels_inspection ON labels (inspection_id, label_id);
  CREATE TABLE alerts (
    id             bigserial PRIMARY KEY,
    at             timestamptz NOT NULL DEFAULT now(),
    kind           text NOT NULL,        -- conflict, invalid, gap
    station_id     text,
    ref            text,                 -- the inspection id, label key or gap
    message        text NOT NULL,
    payload        text
  );
  CREATE UNIQUE INDEX alerts_gap ON alerts (station_id, ref) WHERE kind = 'gap';
  CREATE VIEW current_labels AS
    SELECT DISTINCT ON (station_id, inspection_id) station_id, inspection_id, label, label_id
    FROM labels ORDER BY station_id, inspection_id, label_id DESC;
  -- the confusion counts with the rules of xray-qc audit accuracy (an uncertain flag predicts abnormal)
  CREATE VIEW accuracy_counts AS
    SELECT i.station_id, coalesce(i.bundle, '(none)') AS bundle,
      coalesce(i.model_name || ' v' || i.model_version, '(none)') AS model, (i.scored_at AT TIME ZONE 'UTC')::date AS day,
      count(*) AS n, count(*) FILTER (WHERE i.verdict = 'error') AS errors,
      count(*) FILTER (WHERE i.verdict = 'flag' AND c.label = 'abnormal') AS tp,
      count(*) FILTER (WHERE i.verdict = 'flag' AND c.label = 'normal') AS fp,
      count(*) FILTER (WHERE i.verdict = 'pass' AND c.label = 'normal') AS tn,
      count(*) FILTER (WHERE i.verdict = 'pass' AND c.label = 'abnormal') AS fn
    FROM inspections i LEFT JOIN current_labels c ON c.station_id = i.station_id AND c.inspection_id = i.id
    GROUP BY 1, 2, 3, 4;
  CREATE VIEW daily_flag_rate AS
    SELECT station_id, (scored_at AT TIME ZONE 'UTC')::date AS day, count(*) AS n,
      count(*) FILTER (WHERE verdict = 'flag') AS flags, count(*) FILTER (WHERE verdict = 'error') AS errors,
      round(100.0 * count(*) FILTER (WHERE verdict = 'flag') / nullif(count(*) FILTER (WHERE verdict <> 'error'), 0), 2) AS flag_rate_pct
    FROM inspections GROUP BY 1, 2;
  CREATE VIEW models_in_service AS
    SELECT station_id, model_name, model_version, model_sha256, min(scored_at) AS first_scored, max(scored_at) AS last_scored, count(*) AS n
    FROM inspections WHERE model_name IS NOT NULL GROUP BY 1, 2, 3, 4;
  `,
];

const LOCK = 0x78726179; // 'xray'

export async function migratePlant(client: pg.ClientBase): Promise<number> {
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1)', [LOCK]);
    await client.query('CREATE TABLE IF NOT EXISTS xray_qc_schema (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())');
    const { rows } = await client.query<{ v: number | null }>('SELECT max(version) AS v FROM xray_qc_schema');
    const current = rows[0].v ?? 0;
    if (current > PLANT_MIGRATIONS.length) throw new Error(`plant database schema version ${current} is newer than this xray-qc knows (${PLANT_MIGRATIONS.length})`);
    for (let v = current; v < PLANT_MIGRATIONS.length; v++) {
      await client.query(PLANT_MIGRATIONS[v]);
      await client.query('INSERT INTO xray_qc_schema (version) VALUES ($1)', [v + 1]);
    }
    await client.query('COMMIT');
    return PLANT_MIGRATIONS.length;
  } catch (err) {
    await client.query('ROLLBACK');
    throw err;
  }
}

/** `inspections_y2026m11` for a time stamp in November 2026 (UTC), with its bounds. */
export function monthPartition(scoredAt: string): { name: string; from: string; to: string } {
  const d = new Date(scoredAt);
  const y = d.getUTCFullYear();
  const m = d.getUTCMonth();
  const iso = (yy: number, mm: number): string => new Date(Date.UTC(yy, mm, 1)).toISOString();
  return { name: `inspections_y${y}m${String(m + 1).padStart(2, '0')}`, from: iso(y, m), to: iso(y, m + 1) };
}

/**
 * Creates the months' partitions that do not exist yet, inside the caller's transaction, and
 * returns their names: the caller counts them as known once the transaction has committed.
 */
export async function ensurePartitions(client: pg.ClientBase, scoredAt: Iterable<string>, known: ReadonlySet<string>): Promise<string[]> {
  const wanted = new Map<string, ReturnType<typeof monthPartition>>();
  for (const t of scoredAt) {
    const p = monthPartition(t);
    if (!known.has(p.name)) wanted.set(p.name, p);
  }
  if (!wanted.size) return [];
  await client.query('SELECT pg_advisory_xact_lock($1, 1)', [LOCK]); // two collectors, one new month
  for (const p of wanted.values()) {
    await client.query(`CREATE TABLE IF NOT EXISTS ${p.name} PARTITION OF inspections FOR VALUES FROM ('${p.from}') TO ('${p.to}')`);
  }
  return [...wanted.keys()];
}
