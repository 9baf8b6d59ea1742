import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, EVENT_KINDS } from '../src/errors.js';
import { ROOT } from './helpers.js';

describe('error codes', () => {
  it('every code in src/errors.ts is documented in docs/scoring.md, and nothing else is', () => {
    const doc = readFileSync(join(ROOT, 'docs/scoring.md'), 'utf8');
    const section = doc.slice(doc.indexOf('## 6. Error codes'));
    const documented = [...section.matchAll(/^\| `([A-Z0-9_]+)` \|/gm)].map((m) => m[1]);
    expect(documented.sort()).toEqual(Object.keys(ERROR_CODES).sort());
  });

  it('every event kind is documented in docs/database.md, and nothing else is', () => {
    const doc = readFileSync(join(ROOT, 'docs/database.md'), 'utf8');
    const section = doc.slice(doc.indexOf('| kind | what happened |'));
    const documented = [...section.slice(0, section.indexOf('\n\n')).matchAll(/^\| `([a-z]+)` \|/gm)].map((m) => m[1]);
    expect(documented.sort()).toEqual(Object.keys(EVENT_KINDS).sort());
  });
});
