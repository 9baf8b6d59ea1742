import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { dirname, join, normalize, resolve, sep } from 'node:path';
import { readManifest } from '../model/bundle.js';
import { writeFileAtomic } from '../model/repository.js';

/**
 * A static model registry: `<root>/<name>/<version>/{manifest.json, manifest.sig, files…}` and
 * `<root>/channels/<channel>.json` pointing at one version. Any static HTTP server can serve it;
 * `registry serve` is a small one with ETag / If-None-Match.
 */

export interface ChannelPointer {
  name: string;
  version: number;
  /** Path of the bundle folder relative to the registry root, with a trailing slash. */
  path: string;
  manifest_sha256: string;
  published_at: string;
}

export async function publish(bundleDir: string, root: string, channel: string): Promise<ChannelPointer> {
  if (!/^[A-Za-z0-9._-]+$/.test(channel)) throw new Error(`channel '${channel}': letters, digits, . _ -`);
  const manifest = await readManifest(bundleDir);
  const rel = `${manifest.name}/${manifest.version}/`;
  const target = join(root, manifest.name, String(manifest.version));
  const tmp = `${target}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  for (const name of [...Object.keys(manifest.files), 'manifest.json', 'manifest.sig']) {
    const src = join(bundleDir, name);
    try {
      await stat(src);
    } catch {
      if (name === 'manifest.sig') continue; // an unsigned bundle may be published; stations that require signatures refuse it
      throw new Error(`${src} is missing`);
    }
    await mkdir(dirname(join(tmp, name)), { recursive: true });
    await copyFile(src, join(tmp, name));
  }
  await rm(target, { recursive: true, force: true });
  await mkdir(dirname(target), { recursive: true });
  await rename(tmp, target);
  const pointer: ChannelPointer = {
    name: manifest.name,
    version: manifest.version,
    path: rel,
    manifest_sha256: createHash('sha256').update(await readFile(join(target, 'manifest.json'))).digest('hex'),
    published_at: new Date().toISOString(),
  };
  await mkdir(join(root, 'channels'), { recursive: true });
  await writeFileAtomic(join(root, 'channels', `${channel}.json`), `${JSON.stringify(pointer, null, 2)}\n`);
  return pointer;
}

/** A plain static file server for the registry: GET/HEAD, ETag, If-None-Match, no listing. */
export function serveRegistry(root: string): Server {
  const base = resolve(root);
  return createServer((req, res) => {
    void (async () => {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD' }).end();
        return;
      }
      let path: string;
      try {
        path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
      } catch {
        res.writeHead(400).end();
        return;
      }
      const file = normalize(join(base, path));
      if (!file.startsWith(base + sep) || path.split('/').some((p) => p.startsWith('.'))) {
        res.writeHead(404).end();
        return;
      }
      let info;
      try {
        info = await stat(file);
      } catch {
        res.writeHead(404).end();
        return;
      }
      if (!info.isFile()) {
        res.writeHead(404).end();
        return;
      }
      const etag = `"${info.size.toString(16)}-${Math.floor(info.mtimeMs).toString(16)}"`;
      if (req.headers['if-none-match'] === etag) {
        res.writeHead(304, { etag }).end();
        return;
      }
      const type = file.endsWith('.json') ? 'application/json' : 'application/octet-stream';
      res.writeHead(200, { etag, 'content-length': info.size, 'content-type': type, 'cache-control': 'no-cache' });
      if (req.method === 'HEAD') {
        res.end();
        return;
      }
      createReadStream(file).pipe(res);
    })().catch(() => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
}
