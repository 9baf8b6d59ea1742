import { existsSync } from 'node:fs';
import { join } from 'node:path';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { accuracy } from '../audit/accuracy.js';
import { compareShadow } from '../audit/shadow.js';
import type { Component } from '../events.js';
import { readManifest } from '../model/bundle.js';
import { listRepository, readActive, readShadow, type RepoEntry } from '../model/repository.js';
import { openDatabaseReadOnly, type Db } from '../record/database.js';
import { setLabel } from '../record/labels.js';
import { MIGRATIONS } from '../record/schema.js';
import Sqlite from '../record/sqlite.js';
import { CSS } from './assets.js';
import { COOKIE, CsrfGuard, isLoopback, presentedToken, tokenMatches, type Listen } from './auth.js';
import { JS } from './client.js';
import * as data from './data.js';
import { faviconIco } from './favicon.js';
import { accuracyPage, capturePage, layout, loginPage, modelsPage, placeholderSvg, queuePage } from './pages.js';
import { heatPng, Renderer } from './render.js';

export interface ReviewOptions {
  database: string;
  modelDir: string;
  stationId: string;
  listen: Listen;
  /** Required for a non-loopback address; checked on every request. */
  token: string | null;
}

const CSP = "default-src 'none'; img-src 'self'; style-src 'self'; script-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
const idParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', pattern: data.ID.source } } } as const;
const ODD_URL = /(^|\/|%2f)(\.|%2e){2}(\/|%2f|$)|\\|%5c|%00|\0/i;

/**
 * `xray-qc review serve`: the review queue, a capture with its heat map and the label buttons,
 * accuracy and models pages (docs/review.md, security in docs/security.md). The audit database is
 * opened read-only; a second connection only ever inserts labels. Images are served by inspection
 * id only, rendered from the audited file.
 */
export class ReviewServer implements Component {
  readonly name = 'review';
  private app: FastifyInstance | null = null;
  private db: Db | null = null;
  private writer: InstanceType<typeof Sqlite> | null = null;
  private readonly csrf = new CsrfGuard();
  private repo: { at: number; entries: RepoEntry[] } = { at: 0, entries: [] };
  private readonly renderer = new Renderer(async (row) => this.bundleOf(row)?.manifest?.input ?? { height: 2000, width: 1000 });

  constructor(private readonly o: ReviewOptions) {
    if (!isLoopback(o.listen.host) && !o.token) {
      throw new Error(`review: listening on ${o.listen.host} (not loopback) needs a token: set review.token_env's variable (default XRAY_QC_REVIEW_TOKEN) or review.token_credential; refusing to start`);
    }
  }

  /** Where it listens once started (the port, when 0 was asked for). */
  address = '';

  async start(): Promise<void> {
    if (!existsSync(this.o.database)) throw new Error(`review: no audit database at ${this.o.database} (the daemon creates it)`);
    this.db = openDatabaseReadOnly(this.o.database);
    const version = this.db.pragma('user_version', { simple: true }) as number;
    if (version < MIGRATIONS.length) throw new Error(`review: the audit database is at schema ${version}, this version needs ${MIGRATIONS.length}: start the daemon of this version once (it migrates)`);
    await this.refreshRepo();
    const app = Fastify({ bodyLimit: 8192, routerOptions: { maxParamLength: 100 }, logger: false, return503OnClosing: true });
    app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 4096 }, (_req, body, done) => {
      done(null, Object.fromEntries(new URLSearchParams(body as string)));
    });
    app.addHook('onRequest', async (req, reply) => this.guard(req, reply));
    this.routes(app);
    await app.listen({ host: this.o.listen.host, port: this.o.listen.port });
    const a = app.server.address();
    this.address = typeof a === 'object' && a ? `${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}` : String(a);
    this.app = app;
  }

  async stop(): Promise<void> {
    await this.app?.close();
    this.app = null;
    this.db?.close();
    this.writer?.close();
    this.db = null;
    this.writer = null;
  }

  /** Every request: odd paths refused, security headers, the token where one is set. */
  private async guard(req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | void> {
    reply.header('Content-Security-Policy', CSP).header('X-Content-Type-Options', 'nosniff').header('Referrer-Policy', 'same-origin').header('X-Frame-Options', 'DENY');
    if (ODD_URL.test(req.raw.url ?? '') || (req.raw.url ?? '').length > 2048) return reply.code(400).type('text/plain').send('bad request: path');
    if (!this.o.token) return;
    const path = (req.raw.url ?? '').split('?')[0];
    if (path === '/assets/review.css' || path === '/favicon.ico' || path === '/login') return;
    if (!tokenMatches(presentedToken(req.headers), this.o.token)) return reply.code(401).type('text/html').send(loginPage('This station needs its review token.'));
  }

  private routes(app: FastifyInstance): void {
    const html = (reply: FastifyReply, title: string, active: string, body: string): FastifyReply =>
      reply.type('text/html; charset=utf-8').header('Cache-Control', 'no-store').send(layout(title, active, this.o.stationId, body));
    app.get('/', async (_req, reply) => reply.redirect('/queue'));
    app.get('/assets/review.css', async (_req, reply) => reply.type('text/css').send(CSS));
    app.get('/assets/review.js', async (_req, reply) => reply.type('text/javascript').send(JS));
    const icon = faviconIco();
    app.get('/favicon.ico', async (_req, reply) => reply.type('image/x-icon').header('Cache-Control', 'public, max-age=86400').send(icon));
    app.post('/login', { schema: { body: { type: 'object', required: ['token'], properties: { token: { type: 'string', maxLength: 512 } } } } }, async (req, reply) => {
      const why = this.csrf.check(req.headers as Record<string, string>, this.csrf.token); // same origin; the form has no CSRF token yet
      if (why) return reply.code(403).type('text/plain').send(why);
      const token = (req.body as { token: string }).token;
      if (!this.o.token || !tokenMatches(token, this.o.token)) return reply.code(401).type('text/html').send(loginPage('Wrong token.'));
      return reply.header('Set-Cookie', `${COOKIE}=${encodeURIComponent(token)}; HttpOnly; SameSite=Strict; Path=/`).redirect('/queue', 303);
    });
    app.get('/queue', { schema: { querystring: { type: 'object', additionalProperties: false, properties: { limit: { type: 'integer', minimum: 1, maximum: 500 } } } } }, async (req, reply) => {
      const { rows, total } = data.queue(this.db!, (req.query as { limit?: number }).limit ?? 120);
      return html(reply, 'Review queue', '/queue', queuePage(rows, total));
    });
    app.get('/capture/:id', { schema: { params: idParams, querystring: { type: 'object', additionalProperties: false, properties: { saved: { type: 'string', maxLength: 200 } } } } }, async (req, reply) => {
      const row = data.capture(this.db!, (req.params as { id: string }).id);
      if (!row) return reply.code(404).type('text/plain').send('no such inspection');
      const band = this.bundleOf(row)?.manifest?.decision.review_band ?? null;
      return html(reply, `Capture #${row.seq}`, '/queue', capturePage(row, { ...data.neighbours(this.db!, row.seq), csrf: this.csrf.token, band, saved: (req.query as { saved?: string }).saved }));
    });
    app.get('/img/:id/:kind', { schema: { params: { type: 'object', required: ['id', 'kind'], properties: { id: idParams.properties.id, kind: { enum: ['model.png', 'display.bin', 'thumb.png', 'heat.png'] } } } } }, async (req, reply) => {
      const { id, kind } = req.params as { id: string; kind: 'model.png' | 'display.bin' | 'thumb.png' | 'heat.png' };
      const row = data.capture(this.db!, id);
      if (!row) return reply.code(404).type('text/plain').send('no such inspection');
      reply.header('Cache-Control', 'private, max-age=300');
      if (kind === 'heat.png') {
        const h = data.heatmap(this.db!, id);
        return h ? reply.type('image/png').send(heatPng(h)) : reply.code(404).type('text/plain').send('no heat map for this inspection');
      }
      await this.refreshRepo();
      const r = await this.renderer.view(row, kind === 'model.png' ? 'model' : kind === 'display.bin' ? 'display' : 'thumb');
      if (!r.ok) return reply.type('image/svg+xml').header('X-Placeholder', r.why.replace(/[^\x20-\x7e]/g, '?').slice(0, 200)).send(placeholderSvg(r.why));
      if (r.display) reply.header('X-Display', JSON.stringify(r.display));
      return reply.type(r.type).send(r.body);
    });
    app.post('/capture/:id/label', {
      schema: {
        params: idParams,
        body: { type: 'object', required: ['label', 'csrf'], additionalProperties: false, properties: {
          label: { enum: ['normal', 'abnormal'] }, csrf: { type: 'string', maxLength: 100 }, note: { type: 'string', maxLength: 500 }, by: { type: 'string', maxLength: 100 },
        } },
      },
    }, async (req, reply) => {
      const body = req.body as { label: string; csrf: string; note?: string; by?: string };
      const why = this.csrf.check(req.headers as Record<string, string>, body.csrf);
      if (why) return reply.code(403).type('text/plain').send(why);
      const id = (req.params as { id: string }).id;
      const row = data.capture(this.db!, id);
      if (!row) return reply.code(404).type('text/plain').send('no such inspection');
      const r = setLabel(this.labelWriter(), { ref: id, label: body.label, by: body.by ?? null, note: body.note ?? null, source: 'review' });
      const next = data.neighbours(this.db!, row.seq).next;
      const saved = `#${row.seq} labelled ${body.label}${r.added ? '' : ' (unchanged)'}`;
      return reply.redirect(next ? `/capture/${next}?saved=${encodeURIComponent(saved)}` : `/capture/${id}?saved=${encodeURIComponent(saved)}`, 303);
    });
    app.get('/accuracy', async (_req, reply) => {
      const db = this.db!;
      return html(reply, 'Accuracy', '/accuracy', accuracyPage(accuracy(db, { by: 'bundle', uncertain: 'flag' }), accuracy(db, { by: 'model', uncertain: 'flag' }), data.dailyFlagRate(db, 30), data.scoreHistogram(db)));
    });
    app.get('/models', async (_req, reply) => {
      await this.refreshRepo(true);
      const folder = await readActive(this.o.modelDir);
      const active = this.repo.entries.find((e) => e.folder === folder)?.manifest;
      const compare = compareShadow(this.db!);
      const entries = this.repo.entries.filter((e) => e.manifest).map((e) => ({ folder: e.folder, name: e.manifest!.name, version: e.manifest!.version }));
      return html(reply, 'Models', '/models', modelsPage({ folder, name: active?.name, version: active?.version, description: active?.description }, await readShadow(this.o.modelDir), compare.candidate ? compare : null, entries));
    });
  }

  /** The labels connection: opened on the first label, used for nothing else. */
  private labelWriter(): Db {
    if (!this.writer) {
      this.writer = new Sqlite(this.o.database, { fileMustExist: true });
      this.writer.pragma('busy_timeout = 5000');
    }
    return this.writer as Db;
  }

  private bundleOf(row: data.CaptureRow): RepoEntry | undefined {
    return this.repo.entries.find((e) => e.manifest && e.manifest.name === row.model_name && e.manifest.version === row.model_version);
  }

  private async refreshRepo(now = false): Promise<void> {
    if (!now && Date.now() - this.repo.at < 10_000) return;
    const single = existsSync(join(this.o.modelDir, 'manifest.json'));
    const entries = single ? [{ dir: this.o.modelDir, folder: '.', manifest: await readManifest(this.o.modelDir).catch(() => null) }] : await listRepository(this.o.modelDir);
    this.repo = { at: Date.now(), entries };
  }
}
