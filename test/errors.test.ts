import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../src/errors.js';
import { ROOT } from './helpers.js';

describe('error codes', () => {
  it('every code in src/errors.ts is documented in docs/scoring.md, and nothing else is', () => {
    const doc = readFileSync(join(ROOT, 'docs/scoring.md'), 'utf8');
    const section = doc.slice(doc.indexOf('## 6. Error codes'));
    const documented = [...section.matchAll(/^\| `([A-Z0-9_]+)` \|/gm)].map((m) => m[1]);
    expect(documented.sort()).toEqual(Object.keys(ERROR_CODES).sort());
  });
});
