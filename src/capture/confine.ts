import { realpath } from 'node:fs/promises';
import { sep } from 'node:path';
import { fsPath } from './names.js';

/**
 * capture.follow_symlinks false: a capture that is a link resolving outside the capture folder is
 * not read. `check` gives the reason for one that does, or null.
 */
export class Confinement {
  private constructor(private readonly root: string | null) {}

  /** `root` null: follow any link. The folder's own real path is the boundary. */
  static async create(dir: string, followSymlinks: boolean): Promise<Confinement> {
    return new Confinement(followSymlinks ? null : await realpath(dir).catch(() => dir));
  }

  async check(file: string): Promise<string | null> {
    const root = this.root;
    if (!root) return null;
    const real = await realpath(fsPath(file)).catch(() => null);
    if (real && real !== root && !real.startsWith(root + sep)) {
      return `${file} links to ${real}, outside the capture folder (capture.follow_symlinks is false)`;
    }
    return null;
  }
}
