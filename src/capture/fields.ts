import { relative, sep } from 'node:path';
import type { PartFields } from '../pipeline/messages.js';

/** `capture.fields`: where a capture's production bundle and part id come from. */
export interface FieldSettings {
  /** A regular expression with named groups `bundle` and/or `part` over the path relative to capture.dir ('/'-separated). */
  path: string | null;
  /** Read `bundle` / `part` from the TIFF's ImageDescription (`key=value;…` or JSON), the part from DocumentName. */
  tags: boolean;
}

export interface CaptureText { imageDescription?: string; documentName?: string }

/** Checks a `capture.fields.path` pattern: null when usable, else why not. */
export function fieldPatternProblem(pattern: string): string | null {
  let re: RegExp;
  try {
    re = new RegExp(pattern);
  } catch (err) {
    return (err as Error).message;
  }
  const groups = Object.keys(new RegExp(`${re.source}|`).exec('')?.groups ?? {});
  return groups.includes('bundle') || groups.includes('part') ? null : 'needs a named group (?<bundle>…) or (?<part>…)';
}

const clean = (v: unknown): string | null => (typeof v === 'string' && v.trim() ? v.trim().slice(0, 200) : typeof v === 'number' ? String(v) : null);

/** `bundle=B7;part=P-0042` or `{"bundle": "B7", "part": "P-0042"}` (`part_id` also read). */
export function fieldsFromDescription(text: string): PartFields {
  const t = text.trim();
  if (t.startsWith('{')) {
    try {
      const v = JSON.parse(t) as Record<string, unknown>;
      return { bundle: clean(v.bundle), part: clean(v.part ?? v.part_id) };
    } catch {
      return { bundle: null, part: null };
    }
  }
  const pairs = new Map(t.split(/[;\n]/).map((kv) => kv.split('=')).filter((kv) => kv.length === 2).map(([k, v]) => [k.trim().toLowerCase(), v]));
  return { bundle: clean(pairs.get('bundle')), part: clean(pairs.get('part') ?? pairs.get('part_id')) };
}

/**
 * A capture's bundle and part: from its path first, then (where `tags`) what the path did not
 * give from its TIFF text. A path that does not match gives nulls (and is scored as usual).
 */
export class FieldReader {
  private readonly pattern: RegExp | null;

  constructor(private readonly captureDir: string, private readonly settings: FieldSettings) {
    this.pattern = settings.path ? new RegExp(settings.path) : null;
  }

  get enabled(): boolean {
    return this.pattern !== null || this.settings.tags;
  }

  read(file: string, text?: CaptureText): PartFields {
    let bundle: string | null = null;
    let part: string | null = null;
    if (this.pattern) {
      const groups = this.pattern.exec(relative(this.captureDir, file).split(sep).join('/'))?.groups;
      bundle = clean(groups?.bundle);
      part = clean(groups?.part);
    }
    if (this.settings.tags && text) {
      const fromText = text.imageDescription ? fieldsFromDescription(text.imageDescription) : { bundle: null, part: null };
      bundle ??= fromText.bundle;
      part ??= fromText.part ?? clean(text.documentName);
    }
    return { bundle, part };
  }
}
