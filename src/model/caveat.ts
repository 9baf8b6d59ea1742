/**
 * What anyone relying on a model's verdicts must be told of it, in one phrase, or null: it failed
 * the fitness rule (`fit: false`, activated with --force), is the untrained tiny demo, or was
 * trained on synthetic captures only. Said by the daemon's log and status `warnings`, `run
 * --check` and `score`; the verdict's `model` carries the flags themselves.
 */
export function modelCaveat(m: { untrained?: boolean; synthetic?: boolean; fit?: boolean }): string | null {
  if (m.fit === false) return 'FAILED the fitness rule when it was trained (fit: false; installed with --force): its verdicts are not to be trusted';
  if (m.untrained) return 'is the UNTRAINED demo model: its verdicts mean nothing';
  if (m.synthetic) return 'was trained on synthetic captures only: a demonstration, not a model for a line';
  return null;
}
