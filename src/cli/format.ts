import type { Command } from 'commander';
import { csvCell } from './db.js';
import { parseChoice } from './options.js';

/**
 * How every read command prints its rows (`--format`, docs/database.md "Output formats"):
 * - `table` (the default): aligned columns for a person, a header line first; numbers right-aligned;
 * - `json`: one JSON object per line with every field, values as stored (rates as fractions 0–1);
 * - `csv`: RFC 4180, a header line, then the same fields and values as `json` (empty for null);
 * - `md`: the table's columns and texts as a Markdown table.
 * In `table` and `md` a count is an integer, a rate or share a percentage with one decimal, a score
 * (p_abnormal) four decimals, milliseconds one decimal, and `-` stands for "none".
 */

export const FORMATS = ['table', 'json', 'csv', 'md'] as const;
export type Format = (typeof FORMATS)[number];

/** One column of the table (and md) view. */
export interface Column<R> {
  head: string;
  text: (r: R) => string;
  /** Right-aligned: numbers. */
  right?: boolean;
}

/** A command's rows for every format: the table's columns and the fields of json and csv. */
export interface View<R> {
  columns: Array<Column<R>>;
  /** The csv header, in order; json writes the whole row. */
  fields: ReadonlyArray<keyof R & string>;
}

const NONE = '-';
const isNone = (x: unknown): x is null | undefined => x === null || x === undefined;

/** Cell texts for table and md, one rule per kind of number. */
export const show = {
  count: (n: number | null | undefined): string => (isNone(n) ? NONE : n.toFixed(0)),
  /** A fraction 0–1 as a percentage with one decimal (`0.41666` → `41.7`); the header says `%`. */
  pct: (x: number | null | undefined): string => (isNone(x) ? NONE : (100 * x).toFixed(1)),
  score: (x: number | null | undefined): string => (isNone(x) ? NONE : x.toFixed(4)),
  ms: (x: number | null | undefined): string => (isNone(x) ? NONE : x.toFixed(1)),
  fixed: (digits: number) => (x: number | null | undefined): string => (isNone(x) ? NONE : x.toFixed(digits)),
  text: (s: unknown): string => (isNone(s) || s === '' ? NONE : String(s)),
};

/** `--format` (and, where a command had it before, `--json` as its alias). */
export function formatOption(cmd: Command, jsonAlias = false): Command {
  cmd.option('--format <f>', `${FORMATS.join('|')} (docs/database.md, "Output formats")`, parseChoice(FORMATS), 'table');
  return jsonAlias ? cmd.option('--json', 'the same as --format json') : cmd;
}

export function formatOf(o: { format: Format; json?: boolean }): Format {
  return o.json ? 'json' : o.format;
}

function table(cells: string[][], right: boolean[]): string[] {
  const widths = cells[0].map((_, i) => Math.max(...cells.map((row) => row[i].length)));
  return cells.map((row) => row.map((c, i) => (right[i] ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd());
}

const mdCell = (s: string): string => s.replace(/\|/g, '\\|');

/** The rows in `format`, one line each (with a newline), as one string. */
export function render<R extends object>(rows: readonly R[], format: Format, view: View<R>): string {
  let lines: string[];
  switch (format) {
    case 'json':
      lines = rows.map((r) => JSON.stringify(r));
      break;
    case 'csv':
      lines = [view.fields.join(','), ...rows.map((r) => view.fields.map((f) => csvCell(r[f])).join(','))];
      break;
    case 'md': {
      const head = view.columns.map((c) => mdCell(c.head));
      lines = [`| ${head.join(' | ')} |`, `|${view.columns.map((c) => (c.right ? '---:' : '---')).join('|')}|`,
        ...rows.map((r) => `| ${view.columns.map((c) => mdCell(c.text(r))).join(' | ')} |`)];
      break;
    }
    case 'table':
      lines = table([view.columns.map((c) => c.head), ...rows.map((r) => view.columns.map((c) => c.text(r)))], view.columns.map((c) => !!c.right));
      break;
  }
  return lines.length ? `${lines.join('\n')}\n` : '';
}

export function writeRows<R extends object>(rows: readonly R[], format: Format, view: View<R>): void {
  process.stdout.write(render(rows, format, view));
}
