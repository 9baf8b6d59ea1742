import type pg from 'pg';
import { report, type AccuracyRow, type Counts } from '../audit/accuracy.js';

/**
 * `xray-qc audit accuracy --pg URL` (docs/plant.md): the station's accuracy table with the same
 * rules (audit/accuracy.ts) over every station's rows in the plant database — an inspection's
 * label is its station's latest for it; `flag`, and by default `uncertain`, predict abnormal;
 * `error` rows are counted apart. Groups as on the station, plus `station` and `station-bundle`.
 */

export type PlantGroup = 'station' | 'station-bundle' | 'bundle' | 'model' | 'day' | 'week' | 'month';

const UTC = "(i.scored_at AT TIME ZONE 'UTC')";
const GROUP: Record<PlantGroup, string> = {
  station: 'i.station_id',
  'station-bundle': "i.station_id || '/' || coalesce(i.bundle, '(none)')",
  bundle: "coalesce(i.bundle, '(none)')",
  model: "coalesce(i.model_name || ' v' || i.model_version, '(none)')",
  day: `to_char(${UTC}, 'YYYY-MM-DD')`,
  // SQLite's %W: the week of the year, Monday first, days before the first Monday in week 00
  week: `to_char(${UTC}, 'YYYY') || '-W' || lpad(((extract(doy FROM ${UTC})::int - 1 + 7 - (extract(dow FROM ${UTC})::int + 6) % 7) / 7)::text, 2, '0')`,
  month: `to_char(${UTC}, 'YYYY-MM')`,
};

export async function plantAccuracy(db: pg.ClientBase, o: { by: PlantGroup; since?: string; until?: string; station?: string; model?: string; uncertain: 'flag' | 'exclude' }): Promise<AccuracyRow[]> {
  const params: unknown[] = [];
  const where: string[] = [];
  const p = (v: unknown): string => { params.push(v); return `$${params.length}`; };
  if (o.since) where.push(`i.scored_at >= ${p(o.since)}::timestamptz`);
  if (o.until) where.push(`i.scored_at < ${p(o.until)}::timestamptz`);
  if (o.station) where.push(`i.station_id = ${p(o.station)}`);
  if (o.model) {
    const [name, version] = o.model.split(':');
    where.push(`i.model_name = ${p(name)}`);
    if (version !== undefined) where.push(`i.model_version = ${p(Number(version))}`);
  }
  const excluded = o.uncertain === 'exclude' ? "i.reason = 'uncertain'" : 'false';
  const scored = `i.verdict <> 'error' AND NOT (${excluded})`;
  const n = (cond: string): string => `count(*) FILTER (WHERE ${cond})::int`;
  const { rows } = await db.query<Counts>(`
    SELECT ${GROUP[o.by]} AS grp, count(*)::int AS n,
      ${n("i.verdict = 'error'")} AS errors,
      ${n(`i.verdict <> 'error' AND (${excluded})`)} AS uncertain_excluded,
      ${n(`${scored} AND c.label IS NOT NULL`)} AS labelled,
      ${n(`${scored} AND i.verdict = 'flag' AND c.label = 'abnormal'`)} AS tp,
      ${n(`${scored} AND i.verdict = 'flag' AND c.label = 'normal'`)} AS fp,
      ${n(`${scored} AND i.verdict = 'pass' AND c.label = 'normal'`)} AS tn,
      ${n(`${scored} AND i.verdict = 'pass' AND c.label = 'abnormal'`)} AS fn,
      ${n("i.verdict <> 'error'")} AS verdicts,
      ${n("i.verdict <> 'error' AND c.label IS NOT NULL")} AS any_labelled,
      ${n("i.verdict = 'flag' AND c.label IS NULL")} AS review_backlog
    FROM inspections i LEFT JOIN current_labels c ON c.station_id = i.station_id AND c.inspection_id = i.id
    ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
    GROUP BY grp`, params);
  return report(rows);
}
