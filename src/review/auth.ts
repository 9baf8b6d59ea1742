import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';

/**
 * The review page's access rules (docs/security.md): loopback needs nothing; any other address
 * needs a token, checked on every request in constant time; state-changing requests are POSTs
 * from the page itself (same origin, with the page's CSRF token).
 */

export interface Listen { host: string; port: number }

/** `HOST:PORT` or `[V6]:PORT`; a clear message for anything else. */
export function parseListen(text: string): Listen {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text.trim());
  if (!m) throw new Error(`--listen ${JSON.stringify(text)}: expected HOST:PORT, e.g. 127.0.0.1:8080`);
  const host = m[1] ?? m[2];
  const port = Number(m[3]);
  if (port > 65535) throw new Error(`--listen ${text}: port ${port} is above 65535`);
  if (host !== 'localhost' && !isIP(host)) throw new Error(`--listen ${text}: give an IP address (or localhost), not a name`);
  return { host, port };
}

/** 127.0.0.0/8, ::1 and localhost: reachable from this machine only. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host) || host === '::ffff:127.0.0.1';
}

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/** Constant-time comparison of a presented token with the configured one (hashes: equal lengths). */
export function tokenMatches(presented: string | undefined, token: string): boolean {
  if (presented === undefined) return false;
  return timingSafeEqual(digest(presented), digest(token));
}

export const COOKIE = 'xrayqc_review';

/** The token a request carries: `Authorization: Bearer …`, or the cookie the login form set. */
export function presentedToken(headers: { authorization?: string; cookie?: string }): string | undefined {
  const auth = headers.authorization;
  if (auth?.startsWith('Bearer ')) return auth.slice(7).trim();
  for (const part of (headers.cookie ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === COOKIE) {
      try {
        return decodeURIComponent(v.join('='));
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

/** A secret per server start: the CSRF token is derived from it, so a page from another site cannot know it. */
export class CsrfGuard {
  private readonly secret = randomBytes(32);
  readonly token = createHash('sha256').update(this.secret).update('csrf').digest('base64url');

  /**
   * A POST is the page's own when its form carries the token and the browser says it comes from
   * this origin (Origin equal to the Host it was sent to; Sec-Fetch-Site same-origin where sent).
   */
  check(headers: { origin?: string; host?: string; 'sec-fetch-site'?: string }, formToken: unknown): string | null {
    const site = headers['sec-fetch-site'];
    if (site !== undefined && site !== 'same-origin') return `cross-site request refused (Sec-Fetch-Site: ${site})`;
    if (headers.origin !== undefined && headers.origin !== 'null') {
      let host: string;
      try {
        host = new URL(headers.origin).host;
      } catch {
        return 'cross-site request refused (Origin is not a URL)';
      }
      if (host !== headers.host) return `cross-site request refused (Origin ${headers.origin} is not ${headers.host})`;
    } else if (headers.origin === 'null') return 'cross-site request refused (Origin: null)';
    if (typeof formToken !== 'string' || !tokenMatches(formToken, this.token)) return 'cross-site request refused (no valid form token)';
    return null;
  }
}
