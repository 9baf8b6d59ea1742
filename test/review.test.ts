import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { synthElectrode, type Anomaly } from '../src/tools/synth.js';
import { encodeTiff16 } from '../src/tools/tiff-writer.js';
import { parseConfig } from '../src/service/config.js';
import { cli, CLI, jsonLines, ROOT } from './helpers.js';
import { DaemonProcess, freePort, makeStation, Mosquitto, sqlRows, Subscriber, until, type StationDirs } from './station.js';

/**
 * The review page end to end: a station scores synthetic captures with the full demo model (its
 * heat map included), `xray-qc review serve` serves them, and real headless Chromium (Debian's,
 * driven by playwright-core) opens the queue, a flagged capture, checks that the image and the
 * heat map render, labels it, and reads the accuracy page, whose figures must equal
 * `xray-qc audit accuracy`. Screenshots go to docs/review/ with XRAY_QC_REVIEW_SCREENSHOTS=1.
 * Then the security rules over plain HTTP.
 */

const CHROMIUM = process.env.XRAY_QC_CHROMIUM ?? '/usr/bin/chromium';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const SHOTS = process.env.XRAY_QC_REVIEW_SCREENSHOTS === '1' ? join(ROOT, 'docs/review') : null;
// seeds the demo model flags (anomalous) and passes or flags (normal): the queue has several
const CAPTURES: Array<[bundle: string, seed: number, anomaly: Anomaly | null]> = [['B1', 7001, 'line'], ['B1', 5000, null], ['B1', 7002, 'bubble'], ['B2', 7005, 'missing_ink'], ['B2', 5001, null], ['B2', 7006, 'agglomerate']];

class ReviewProcess {
  proc: ChildProcess | null = null;
  out = '';
  start(args: string[], env: NodeJS.ProcessEnv = {}): void {
    this.proc = spawn(process.execPath, [CLI, 'review', 'serve', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    this.proc.stdout!.on('data', (d: Buffer) => { this.out += d.toString(); });
    this.proc.stderr!.on('data', (d: Buffer) => { this.out += d.toString(); });
  }
  async url(): Promise<string> {
    await until(() => /"review":"http/.test(this.out) || this.proc?.exitCode !== null, 20_000, `review serve to listen: ${this.out}`);
    const m = /"review":"(http[^"]+)"/.exec(this.out);
    if (!m) throw new Error(`review serve did not start: ${this.out}`);
    return m[1].replace(/\/$/, '');
  }
  async exited(): Promise<number | null> {
    const p = this.proc!;
    if (p.exitCode !== null) return p.exitCode;
    return new Promise((resolve) => p.once('exit', (code) => resolve(code)));
  }
  async stop(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null) return;
    await new Promise<void>((resolve) => { p.once('exit', () => resolve()); p.kill('SIGTERM'); });
  }
}

/** Pixels of a screenshot: how many are far from black/white gray (the image) and how many are heat-coloured (red/yellow over gray). */
function pixels(png: Buffer): { gray: number; levels: number; heat: number; total: number } {
  const img = PNG.sync.read(png);
  const levels = new Set<number>();
  let gray = 0;
  let heat = 0;
  for (let i = 0; i < img.data.length; i += 4) {
    const [r, g, b] = [img.data[i], img.data[i + 1], img.data[i + 2]];
    if (Math.abs(r - g) < 8 && Math.abs(g - b) < 8) {
      levels.add(r >> 3);
      if (r > 15 && r < 245) gray++;
    } else if (r > b + 60) heat++;
  }
  return { gray, levels: levels.size, heat, total: img.width * img.height };
}

describe('the review page in headless Chromium', () => {
  let broker: Mosquitto;
  let sub: Subscriber;
  let station: StationDirs;
  let daemon: DaemonProcess;
  let review: ReviewProcess;
  let base: string;
  let browser: Browser;
  let page: Page;
  beforeAll(async () => {
    const port = await freePort();
    broker = new Mosquitto(port);
    await broker.start();
    sub = new Subscriber(port);
    await sub.start();
    station = makeStation({ port, settleMs: 200 });
    rmSync(join(station.models, 'tiny-v1'), { recursive: true, force: true });
    const demo = cli(['model', 'demo', '--out', join(station.models, 'demo-v2')], { timeoutMs: 300_000 });
    expect(demo.code, demo.stderr).toBe(0);
    writeFileSync(station.config, readFileSync(station.config, 'utf8').replace('  settle_ms: 200\n',
      () => "  settle_ms: 200\n  fields:\n    path: '^(?<bundle>B[0-9]+)/(?<part>[^/]+)\\.tiff?$'\n"));
    daemon = new DaemonProcess(station.config);
    daemon.start();
    await daemon.waitFor(/watching the capture folder/, 120_000);
    CAPTURES.forEach(([bundle, seed, anomaly], i) => {
      mkdirSync(join(station.captures, bundle), { recursive: true });
      const img = synthElectrode(seed, anomaly);
      writeFileSync(join(station.captures, bundle, `part-${i + 1}.tif`), encodeTiff16(img.width, img.height, img.data, { compression: 'lzw' }));
    });
    await until(() => sqlRows(station.db, 'SELECT 1 FROM inspections').length === CAPTURES.length, 120_000, 'every capture scored');
    await until(() => sub.verdicts.length >= CAPTURES.length, 15_000, 'every verdict published');
    review = new ReviewProcess();
    review.start(['--config', station.config, '--listen', `127.0.0.1:${await freePort()}`]);
    base = await review.url();
    browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS });
    page = await browser.newPage({ viewport: { width: 1100, height: 1000 } });
    if (SHOTS) mkdirSync(SHOTS, { recursive: true });
  }, 300_000);
  afterAll(async () => {
    await browser?.close();
    await review?.stop();
    await daemon?.stop();
    await sub?.stop();
    await broker?.stop();
  });

  it('the heat map reaches the audit trail and the MQTT verdict (`where`)', () => {
    const rows = sqlRows<{ inspection_id: string; width: number; height: number; scale: number; cells: Buffer; where_x: number | null; where_y: number | null }>(station.db, 'SELECT * FROM heatmaps');
    expect(rows).toHaveLength(CAPTURES.length);
    for (const r of rows) {
      expect([r.height, r.width]).toEqual([63, 32]);
      expect(r.cells.length).toBe(63 * 32);
    }
    const flagged = sub.verdicts.find((v) => v.verdict === 'flag') as unknown as { where: { x: number; y: number; strength: number } | null; id: string };
    expect(flagged, 'a flagged capture').toBeDefined();
    const stored = rows.find((r) => r.inspection_id === flagged.id)!;
    expect(flagged.where).toEqual({ x: stored.where_x, y: stored.where_y, strength: expect.any(Number) });
  });

  it('queue → a flagged capture: image and heat map render, "abnormal" is stored, accuracy equals audit accuracy', async () => {
    await page.goto(`${base}/queue`);
    const cards = page.locator('.queue a');
    const queued = sqlRows<{ id: string }>(station.db, "SELECT id FROM inspections WHERE verdict = 'flag' ORDER BY seq");
    expect(queued.length).toBeGreaterThan(1);
    expect(await cards.count()).toBe(queued.length);
    await page.waitForFunction(() => [...document.querySelectorAll('.queue img')].every((i) => (i as HTMLImageElement).complete && (i as HTMLImageElement).naturalWidth > 0));
    if (SHOTS) await page.screenshot({ path: join(SHOTS, 'queue.png'), fullPage: true });

    await cards.first().click();
    await page.waitForURL(/\/capture\//);
    expect(page.url()).toContain(queued[0].id); // oldest first
    await page.waitForFunction(() => [...document.querySelectorAll('.stage img')].every((i) => (i as HTMLImageElement).complete && (i as HTMLImageElement).naturalWidth > 0));
    const withHeat = pixels(await page.locator('.stage').screenshot());
    if (SHOTS) await page.screenshot({ path: join(SHOTS, 'capture.png'), fullPage: true });
    await page.keyboard.press('h'); // the overlay off
    const without = pixels(await page.locator('.stage').screenshot());
    console.log(`capture stage: ${withHeat.total} px; gray ${without.gray} (${without.levels} levels) without the overlay; heat-coloured ${withHeat.heat} with it, ${without.heat} without`);
    expect(without.levels).toBeGreaterThan(8); // the electrode, not a blank or a placeholder
    expect(without.gray / without.total).toBeGreaterThan(0.3);
    expect(withHeat.heat).toBeGreaterThan(200); // the heat map is drawn …
    expect(without.heat).toBeLessThan(withHeat.heat / 20); // … and it is the overlay that draws it
    await page.keyboard.press('h');

    await page.fill('input[name=note]', 'coating defect seen on the X-ray');
    await page.click('button.abnormal');
    await page.waitForURL(/saved=/);
    const label = sqlRows<{ label: string; source: string; note: string }>(station.db, 'SELECT label, source, note FROM labels WHERE inspection_id = ?', queued[0].id);
    expect(label).toEqual([{ label: 'abnormal', source: 'review', note: 'coating defect seen on the X-ray' }]);
    expect(page.url()).toContain(queued[1].id); // on to the next in the queue
    await page.keyboard.press('n'); // the keyboard: normal
    await page.waitForURL(new RegExp(`saved=.*${encodeURIComponent('labelled normal').replace(/%20/g, '(%20|\\+)')}`));
    expect(sqlRows<{ label: string }>(station.db, 'SELECT label FROM labels WHERE inspection_id = ?', queued[1].id)).toEqual([{ label: 'normal' }]);

    await page.goto(`${base}/accuracy`);
    if (SHOTS) await page.screenshot({ path: join(SHOTS, 'accuracy.png'), fullPage: true });
    for (const [by, table] of [['bundle', '#by-bundle'], ['model', '#by-model']] as const) {
      const cliRows = jsonLines<Record<string, number | string | null>>(cli(['audit', 'accuracy', '--by', by, '--format', 'json', '--config', station.config]).stdout);
      expect(cliRows.length).toBeGreaterThan(1);
      const shown = await page.locator(`${table} tbody tr`).evaluateAll((trs) => trs.map((tr) => {
        const td = [...tr.querySelectorAll('td')].map((c) => c.textContent ?? '');
        return { group: td[0], n: Number(td[1]), labelled: Number(td[2]), tp: Number(td[3]), fp: Number(td[4]), tn: Number(td[5]), fn: Number(td[6]), ba: (tr.querySelector('[data-ba]') as HTMLElement).dataset.ba };
      }));
      expect(shown).toEqual(cliRows.map((r) => ({ group: r.group, n: r.n, labelled: r.labelled, tp: r.tp, fp: r.fp, tn: r.tn, fn: r.fn, ba: r.balanced_accuracy === null ? '' : String(r.balanced_accuracy) })));
      expect(shown.find((r) => r.group === 'Overall')!.labelled).toBe(2);
    }
    expect(await page.locator('figure svg rect').count()).toBeGreaterThan(2); // the charts drew bars

    await page.goto(`${base}/models`);
    expect(await page.locator('#models').textContent()).toContain('active');
    if (SHOTS) await page.screenshot({ path: join(SHOTS, 'models.png'), fullPage: true });
  }, 120_000);

  it('a capture file that is gone shows a placeholder, not an error', async () => {
    const row = sqlRows<{ id: string; file_path: string }>(station.db, "SELECT id, file_path FROM inspections WHERE verdict = 'pass' ORDER BY seq LIMIT 1")[0]
      ?? sqlRows<{ id: string; file_path: string }>(station.db, 'SELECT id, file_path FROM inspections ORDER BY seq DESC LIMIT 1')[0];
    rmSync(row.file_path);
    const r = await fetch(`${base}/img/${row.id}/view.png`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toContain('image/svg+xml');
    expect(r.headers.get('x-placeholder')).toBe('the capture file is gone');
  });
});

/** A raw request: fetch() would resolve `..` before sending. */
function raw(url: string, path: string, o: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<{ status: number; body: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path, method: o.method ?? 'GET', headers: o.headers }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => { body += d.toString(); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end(o.body);
  });
}

describe('the review page: security', () => {
  let station: StationDirs;
  let daemonDb: string;
  let id: string;
  const TOKEN = 'review-token-for-the-test-0123456789';
  beforeAll(async () => {
    const port = await freePort();
    const broker = new Mosquitto(port);
    await broker.start();
    station = makeStation({ port, settleMs: 100 });
    const daemon = new DaemonProcess(station.config);
    daemon.start();
    await daemon.waitFor(/watching the capture folder/);
    const img = synthElectrode(4242, 'smudge', { width: 300, height: 600 });
    writeFileSync(join(station.captures, 'one.tif'), encodeTiff16(img.width, img.height, img.data, {}));
    await until(() => sqlRows(station.db, 'SELECT 1 FROM inspections').length === 1, 30_000, 'the capture scored');
    await daemon.stop();
    await broker.stop();
    daemonDb = station.db;
    id = sqlRows<{ id: string }>(daemonDb, 'SELECT id FROM inspections')[0].id;
  }, 120_000);

  it('review config: strict keys, a listen address or a `path: message`; the token only from the environment', () => {
    const base = { station_id: 's', capture: { dir: '/tmp' }, model: { dir: '/tmp' }, database: { path: '/tmp/a.db' }, mqtt: { url: 'mqtt://127.0.0.1' } };
    expect(() => parseConfig({ ...base, review: { listen: 'station-7:8080' } }, '/tmp/c.yaml', {})).toThrow(/review\.listen: HOST:PORT with an IP address/);
    expect(() => parseConfig({ ...base, review: { token: 'in-the-file' } }, '/tmp/c.yaml', {})).toThrow(/review: Unrecognized key: "token"/);
    expect(parseConfig({ ...base, review: { enabled: true } }, '/tmp/c.yaml', { XRAY_QC_REVIEW_TOKEN: 'from-env' }).review).toMatchObject({ enabled: true, listen: '127.0.0.1:8080', token: 'from-env' });
  });

  it('review.enabled runs the page inside the daemon; a non-loopback one without a token stops the daemon at start', async () => {
    const port = await freePort();
    writeFileSync(station.config, `${readFileSync(station.config, 'utf8')}review:\n  enabled: true\n  listen: 127.0.0.1:${port}\n`);
    const daemon = new DaemonProcess(station.config, { XRAY_QC_REVIEW_TOKEN: '' });
    daemon.start();
    try {
      await daemon.waitFor(/review page listening/);
      const page = await fetch(`http://127.0.0.1:${port}/capture/${id}`);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('Capture #1');
    } finally {
      await daemon.stop();
    }
    writeFileSync(station.config, readFileSync(station.config, 'utf8').replace(`listen: 127.0.0.1:${port}`, () => `listen: 0.0.0.0:${port}`));
    const refused = new DaemonProcess(station.config, { XRAY_QC_REVIEW_TOKEN: '' });
    refused.start();
    await until(() => refused.proc?.exitCode !== null, 20_000, 'the daemon to refuse');
    expect(refused.proc?.exitCode).not.toBe(0);
    expect(refused.output).toMatch(/needs a token/);
    writeFileSync(station.config, readFileSync(station.config, 'utf8').replace(/review:\n[\s\S]*$/, ''));
  }, 60_000);

  it('a non-loopback --listen without a token refuses to start', async () => {
    const r = new ReviewProcess();
    r.start(['--config', station.config, '--listen', `0.0.0.0:${await freePort()}`], { XRAY_QC_REVIEW_TOKEN: '' });
    expect(await r.exited()).not.toBe(0);
    expect(r.out).toMatch(/not loopback\) needs a token.*refusing to start/);
  });

  it('with a token: 401 without it, the page with it; cross-site POSTs, odd paths and ids refused; nothing written', async () => {
    const r = new ReviewProcess();
    r.start(['--config', station.config, '--listen', `0.0.0.0:${await freePort()}`], { XRAY_QC_REVIEW_TOKEN: TOKEN });
    const url = (await r.url()).replace('0.0.0.0', '127.0.0.1');
    try {
      const auth = { authorization: `Bearer ${TOKEN}` };
      expect((await raw(url, '/queue')).status).toBe(401);
      expect((await raw(url, '/queue', { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
      expect((await raw(url, `/img/${id}/view.png`)).status).toBe(401);
      expect((await raw(url, '/queue', { headers: auth })).status).toBe(200);
      // the login form sets an HttpOnly, SameSite=Strict cookie that then opens the pages
      const login = await fetch(`${url}/login`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded', origin: url, 'sec-fetch-site': 'same-origin' }, body: `token=${TOKEN}` });
      expect(login.status).toBe(303);
      const cookie = login.headers.get('set-cookie')!;
      expect(cookie).toMatch(/HttpOnly; SameSite=Strict/);
      expect((await raw(url, '/queue', { headers: { cookie: cookie.split(';')[0] } })).status).toBe(200);

      const page = await raw(url, `/capture/${id}`, { headers: auth });
      const csrf = /name="csrf" value="([^"]+)"/.exec(page.body)![1];
      const form = (extra: Record<string, string>, body = `label=abnormal&csrf=${encodeURIComponent(csrf)}`) => ({ method: 'POST', headers: { ...auth, 'content-type': 'application/x-www-form-urlencoded', ...extra }, body });
      expect((await raw(url, `/capture/${id}/label`, form({ origin: 'http://evil.example' }))).status).toBe(403);
      expect((await raw(url, `/capture/${id}/label`, form({ 'sec-fetch-site': 'cross-site' }))).status).toBe(403);
      expect((await raw(url, `/capture/${id}/label`, form({}, 'label=abnormal&csrf=guessed'))).status).toBe(403);
      expect((await raw(url, `/capture/${id}/label`, form({}, 'label=abnormal'))).status).toBe(400); // no form token at all
      expect((await raw(url, `/capture/${id}/label`, form({}, `label=broken&csrf=${csrf}`))).status).toBe(400);
      expect((await raw(url, `/capture/${id}/label`, form({}, `label=abnormal&csrf=${csrf}&note=${'x'.repeat(9000)}`))).status).toBe(413);
      expect(sqlRows(daemonDb, 'SELECT 1 FROM labels')).toHaveLength(0);
      expect((await raw(url, `/capture/${id}/label`, form({ origin: url }))).status).toBe(303);
      expect(sqlRows(daemonDb, 'SELECT label FROM labels')).toEqual([{ label: 'abnormal' }]);

      for (const path of ['/img/../../etc/passwd', '/capture/%2e%2e/%2e%2e/etc/passwd', '/img/..%2f..%2fetc/passwd/view.png', '/assets/..\\..\\config.yaml']) {
        expect([400, 404], path).toContain((await raw(url, path, { headers: auth })).status);
      }
      expect((await raw(url, '/capture/not-an-id', { headers: auth })).status).toBe(400);
      expect((await raw(url, `/capture/${id}x`, { headers: auth })).status).toBe(400);
      expect((await raw(url, '/capture/00000000-0000-4000-8000-000000000000', { headers: auth })).status).toBe(404);
      expect((await raw(url, `/img/${id}/config.yaml`, { headers: auth })).status).toBe(400);
      expect((await raw(url, '/queue?limit=abc', { headers: auth })).status).toBe(400);
      expect((await raw(url, '/queue?limit=100000', { headers: auth })).status).toBe(400);
      expect((await raw(url, `/capture/${id}/label`, { headers: auth })).status).toBe(404); // no state change by GET
    } finally {
      await r.stop();
    }
  }, 60_000);
});
