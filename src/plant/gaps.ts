import type pg from 'pg';

/**
 * Per-station `seq` gaps (docs/plant.md). A station numbers its audit rows 1, 2, 3 … without
 * reuse, so a hole between two received seqs is a verdict the plant has not got (yet: shared
 * subscriptions do not keep order, so most holes close within seconds). A hole is open since the
 * later row arrived; one open longer than the limit is reported once (an `alerts` row, kind
 * `gap`) and is what `xray-qc collect backfill` fills.
 */

export interface Gap { station_id: string; from_seq: number; to_seq: number; missing: number; open_since: string; open_s: number }

export async function openGaps(db: pg.ClientBase, olderThanS: number): Promise<Gap[]> {
  const { rows } = await db.query<{ station_id: string; from_seq: string; to_seq: string; open_since: Date; open_s: number }>(`
    SELECT station_id, prev + 1 AS from_seq, seq - 1 AS to_seq, received_at AS open_since,
      extract(epoch FROM now() - received_at)::float8 AS open_s
    FROM (SELECT station_id, seq, received_at, lag(seq) OVER (PARTITION BY station_id ORDER BY seq) AS prev FROM received) r
    WHERE seq > prev + 1 AND received_at <= now() - make_interval(secs => $1)
    ORDER BY station_id, from_seq`, [olderThanS]);
  return rows.map((r) => ({
    station_id: r.station_id, from_seq: Number(r.from_seq), to_seq: Number(r.to_seq), missing: Number(r.to_seq) - Number(r.from_seq) + 1,
    open_since: r.open_since.toISOString(), open_s: r.open_s,
  }));
}

/** The gaps open past the limit that have no alert yet: each gets its `alerts` row, and is returned once. */
export async function reportGaps(db: pg.ClientBase, olderThanS: number): Promise<Gap[]> {
  const reported: Gap[] = [];
  for (const g of await openGaps(db, olderThanS)) {
    const r = await db.query(
      "INSERT INTO alerts (kind, station_id, ref, message) VALUES ('gap', $1, $2, $3) ON CONFLICT (station_id, ref) WHERE kind = 'gap' DO NOTHING RETURNING id",
      [g.station_id, `${g.from_seq}-${g.to_seq}`, `seq ${g.from_seq}–${g.to_seq} (${g.missing}) missing since ${g.open_since}`]);
    if (r.rowCount) reported.push(g);
  }
  return reported;
}
