import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { CLI, cli, jsonLines, pythonInline, tempDir } from './helpers.js';
import { writeMalformedSet, type Case } from './tools/malformed.js';

interface Line { file: string; verdict: string; reason: string; error?: { code: string; message: string } }

describe('score on malformed and odd TIFFs', () => {
  let dir: string;
  let model: string;
  let cases: Case[];
  beforeAll(() => {
    dir = tempDir('xray-qc-bad-');
    cases = writeMalformedSet(join(dir, 'files'));
    model = join(dir, 'model');
    expect(cli(['model', 'demo', '--tiny', '--out', model]).code).toBe(0);
  });

  it('gives every file its own line, errors with the expected code, odd-but-valid files scored', () => {
    expect(cases.length).toBeGreaterThanOrEqual(30);
    const files = cases.map((c) => join(dir, 'files', c.file));
    const r = cli(['score', '--json', '--model', model, ...files]);
    expect(r.code).toBe(2); // some files failed
    const lines = jsonLines<Line>(r.stdout);
    expect(lines.map((l) => l.file)).toEqual(files);
    const got = lines.map((l, i) => `${cases[i].file}: ${l.verdict === 'error' ? l.error?.code : 'scored'}`);
    expect(got).toEqual(cases.map((c) => `${c.file}: ${c.expect}`));
    for (const l of lines) {
      if (l.verdict === 'error') {
        expect(l.reason).toBe(l.error?.code);
        expect(l.error?.message).toMatch(/^[^\n]{3,500}$/); // one line, says something
      }
    }
  });

  it('stays well under 2 GB RSS and exits on its own', () => {
    const files = cases.map((c) => join(dir, 'files', c.file));
    const out = pythonInline(
      `
import resource, subprocess, sys
p = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=240)
print(p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
`,
      [process.execPath, CLI, 'score', '--json', '--model', model, ...files],
    );
    const [code, maxRssKiB] = out.trim().split(' ').map(Number);
    expect(code).toBe(2);
    expect(maxRssKiB).toBeGreaterThan(10_000);
    expect(maxRssKiB).toBeLessThan(2 * 1024 * 1024);
  });
});
