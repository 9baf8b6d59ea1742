import { createWriteStream } from 'node:fs';
import { isIP } from 'node:net';

/**
 * GETs with hard byte limits: the registry is trusted for nothing, so a response is read only up
 * to the size we expect, and a longer one is refused, not truncated.
 */

export class FetchError extends Error {
  constructor(message: string, readonly status?: number) {
    super(message);
  }
}

export function checkRegistryUrl(url: string, allowInsecureHttp: boolean): void {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new FetchError(`not a URL: ${url}`);
  }
  if (u.protocol === 'https:') return;
  if (u.protocol !== 'http:') throw new FetchError(`${u.protocol} is not supported (https, or http to a loopback address)`);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const loopback = host === 'localhost' || (isIP(host) === 4 && host.startsWith('127.')) || host === '::1';
  if (!loopback && !allowInsecureHttp) throw new FetchError(`plain http to ${host} refused (set sync.allow_insecure_http to allow)`);
}

async function open(url: string, headers: Record<string, string>, timeoutMs: number): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(url, { headers, signal: AbortSignal.timeout(timeoutMs), redirect: 'error' });
  } catch (err) {
    throw new FetchError(`GET ${url}: ${(err as Error).message}`);
  }
  return res;
}

/** A small document (pointer, manifest, signature): at most `maxBytes`, else refused. */
export async function fetchSmall(url: string, maxBytes: number, opts: { etag?: string; timeoutMs?: number } = {}): Promise<{ status: number; body: Buffer; etag: string | null }> {
  const res = await open(url, opts.etag ? { 'if-none-match': opts.etag } : {}, opts.timeoutMs ?? 30_000);
  if (res.status === 304) return { status: 304, body: Buffer.alloc(0), etag: opts.etag ?? null };
  if (res.status !== 200) {
    await res.body?.cancel();
    throw new FetchError(`GET ${url}: HTTP ${res.status}`, res.status);
  }
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    total += chunk.length;
    if (total > maxBytes) throw new FetchError(`GET ${url}: more than ${maxBytes} bytes`);
    chunks.push(Buffer.from(chunk));
  }
  return { status: 200, body: Buffer.concat(chunks), etag: res.headers.get('etag') };
}

/** A bundle file, streamed to `dest`; exactly `bytes` bytes or refused. */
export async function fetchToFile(url: string, dest: string, bytes: number, timeoutMs = 600_000): Promise<void> {
  const res = await open(url, {}, timeoutMs);
  if (res.status !== 200) {
    await res.body?.cancel();
    throw new FetchError(`GET ${url}: HTTP ${res.status}`, res.status);
  }
  const out = createWriteStream(dest, { mode: 0o640 });
  let total = 0;
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      total += chunk.length;
      if (total > bytes) throw new FetchError(`GET ${url}: the server sent more than the ${bytes} bytes the manifest lists`);
      if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
    }
  } finally {
    await new Promise<void>((resolve) => out.end(() => resolve()));
  }
  if (total < bytes) throw new FetchError(`GET ${url}: truncated download, ${total} of ${bytes} bytes`);
}
