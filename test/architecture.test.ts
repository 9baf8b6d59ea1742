import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './helpers.js';

/**
 * docs/architecture.md's "who may import whom", checked against the sources: every import from
 * another folder of src/ is allowed by the table, and the folders import each other without a
 * cycle. `root` is the files directly in src/ (errors, events, wasm, transfer, worker-url).
 */

const SRC = join(ROOT, 'src');

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

const folderOf = (file: string): string => {
  const parts = relative(SRC, file).split('/');
  return parts.length === 1 ? 'root' : parts[0];
};

/** folder → the folders it imports (type-only imports count: they are dependencies too). */
function importGraph(): Map<string, Set<string>> {
  const graph = new Map<string, Set<string>>();
  for (const file of files(SRC)) {
    const from = folderOf(file);
    const deps = graph.get(from) ?? new Set<string>();
    graph.set(from, deps);
    for (const m of readFileSync(file, 'utf8').matchAll(/from '(\.{1,2}\/[^']+)'/g)) {
      const to = folderOf(join(file, '..', m[1]));
      if (to !== from) deps.add(to);
    }
  }
  return graph;
}

/** The table in docs/architecture.md: `| folder | may import |`. */
function allowed(): Map<string, Set<string>> {
  const doc = readFileSync(join(ROOT, 'docs/architecture.md'), 'utf8');
  const table = doc.slice(doc.indexOf('| folder | may import |'));
  const rows = [...table.slice(0, table.indexOf('\n\n')).matchAll(/^\| `([a-z]+)\/?` \| ([^|]*) \|/gm)];
  return new Map(rows.map((r) => [r[1], new Set([...r[2].matchAll(/`([a-z]+)\/?`/g)].map((x) => x[1]))]));
}

describe('architecture', () => {
  it('every cross-folder import is one the table in docs/architecture.md allows', () => {
    const rules = allowed();
    const graph = importGraph();
    expect(rules.size).toBeGreaterThan(10);
    const unlisted = [...graph.keys()].filter((f) => !rules.has(f));
    expect(unlisted, 'folders missing from the table').toEqual([]);
    const breaches = [...graph].flatMap(([from, deps]) => [...deps].filter((to) => !rules.get(from)!.has(to)).map((to) => `${from} → ${to}`));
    expect(breaches).toEqual([]);
  });

  it('the folders import each other without a cycle', () => {
    const graph = importGraph();
    const state = new Map<string, 'open' | 'done'>();
    const cycles: string[] = [];
    const visit = (node: string, path: string[]): void => {
      if (state.get(node) === 'done') return;
      if (state.get(node) === 'open') {
        cycles.push([...path.slice(path.indexOf(node)), node].join(' → '));
        return;
      }
      state.set(node, 'open');
      for (const next of graph.get(node) ?? []) visit(next, [...path, node]);
      state.set(node, 'done');
    };
    for (const node of graph.keys()) visit(node, []);
    expect(cycles).toEqual([]);
    expect(graph.get('pipeline')).toEqual(new Set(['root'])); // the messages and the loop depend on nothing else
  });
});
