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
import { histogram16 } from '../src/convert/percentile.js';
import { localBounds } from '../src/convert/conversion.js';
import { normalisation } from '../src/prepare/preprocessor.js';
import { planesPng } from '../src/review/render.js';
import { boxDownscale, displayWindow, otsu, SEPARATION, windowed } from '../src/review/window.js';
import { decodeNpy } from '../src/tools/npy.js';
import { cli, CLI, jsonLines, ROOT, tempDir } from './helpers.js';
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

/** Mean and standard deviation of the gray level inside the electrode: the middle of a stage screenshot (the border left out). */
function inner(png: Buffer): { mean: number; sd: number } {
  const img = PNG.sync.read(png);
  let n = 0;
  let s = 0;
  let s2 = 0;
  for (let y = Math.round(img.height * 0.15); y < img.height * 0.85; y++) {
    for (let x = Math.round(img.width * 0.15); x < img.width * 0.85; x++) {
      const v = img.data[4 * (y * img.width + x)];
      n++;
      s += v;
      s2 += v * v;
    }
  }
  return { mean: s / n, sd: Math.sqrt(s2 / n - (s / n) ** 2) };
}

/** Where the bright border meets the electrode in a stage screenshot: left, right, top, bottom (px from that side), by column and row means. */
function edges(png: Buffer): number[] {
  const img = PNG.sync.read(png);
  const at = (x: number, y: number): number => img.data[4 * (y * img.width + x)];
  const profile = (len: number, other: number, get: (i: number, j: number) => number): number[] => Array.from({ length: len }, (_, i) => {
    let s = 0;
    for (let j = Math.round(other * 0.3); j < other * 0.7; j++) s += get(i, j);
    return s / Math.round(other * 0.4);
  });
  const cross = (p: number[]): number => {
    const mid = (p[1] + p[Math.floor(p.length / 2)]) / 2;
    return p.findIndex((v) => (p[1] > mid ? v < mid : v > mid));
  };
  const cols = profile(img.width, img.height, (x, y) => at(x, y));
  const rows = profile(img.height, img.width, (y, x) => at(x, y));
  return [cross(cols), cross([...cols].reverse()), cross(rows), cross([...rows].reverse())];
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
    await page.waitForSelector('.stage.windowed');
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

  it('the display window: auto contrast from the electrode, slider and keys in the browser only, the model\'s exact input a toggle away, the heat map aligned in both', async () => {
    const id = sqlRows<{ id: string }>(station.db, "SELECT id FROM inspections WHERE verdict = 'flag' ORDER BY seq DESC LIMIT 1")[0].id;
    const file = sqlRows<{ file_path: string }>(station.db, 'SELECT file_path FROM inspections WHERE id = ?', id)[0].file_path;
    const failed: string[] = [];
    const requests: string[] = [];
    page.on('response', (r) => { if (r.status() >= 400) failed.push(`${r.status()} ${r.url()}`); });
    page.on('request', (r) => { requests.push(r.url()); });
    page.on('console', (m) => { if (m.type() === 'error') failed.push(`console: ${m.text()}`); });
    page.on('pageerror', (e) => { failed.push(`page error: ${e.message}`); });
    await page.goto(`${base}/capture/${id}`);
    await page.waitForSelector('.stage.windowed');
    await page.waitForFunction(() => [...document.querySelectorAll('.stage img')].every((i) => (i as HTMLImageElement).complete && (i as HTMLImageElement).naturalWidth > 0));
    const display = JSON.parse((await fetch(`${base}/img/${id}/display.bin`)).headers.get('x-display')!) as { low: number; high: number; region: string };
    expect(display.region).toBe('electrode'); // the bright border was found and left out
    const stage = page.locator('.stage');
    await page.keyboard.press('h'); // the overlay off, to measure the image
    const auto = await stage.screenshot();
    await page.keyboard.press('m');
    await page.waitForSelector('.stage:not(.windowed)');
    const model = await stage.screenshot();
    if (SHOTS) for (const [name, png] of [['stage-window.png', auto], ['stage-model.png', model]] as const) writeFileSync(join(SHOTS, name), png);
    const [a, m] = [inner(auto), inner(model)];
    console.log(`inside the electrode: auto window ${display.low}–${display.high} mean ${a.mean.toFixed(1)} sd ${a.sd.toFixed(1)}; the model's view mean ${m.mean.toFixed(1)} sd ${m.sd.toFixed(1)}`);
    expect(a.mean).toBeGreaterThan(3 * m.mean); // brighter …
    expect(a.sd).toBeGreaterThan(3 * m.sd); // … and more contrast than the naive (the model's) view

    // the model's view is the model's input, value for value: the pixels of `preprocess --png`'s file, and normalised, the tensor the station's path computes
    const dir = tempDir();
    const pre = cli(['preprocess', file, '--config', station.config, '--png', join(dir, 'view.png')]);
    expect(pre.code, pre.stderr).toBe(0);
    expect(cli(['preprocess', file, '--config', station.config, '--out', join(dir, 't.npy')]).code).toBe(0);
    const planes = PNG.sync.read(Buffer.from(await (await fetch(`${base}/img/${id}/model.png`)).arrayBuffer()));
    const written = PNG.sync.read(readFileSync(join(dir, 'view.png')));
    expect([planes.width, planes.height]).toEqual([written.width, written.height]);
    expect(planes.data.equals(written.data)).toBe(true);
    const tensor = decodeNpy(readFileSync(join(dir, 't.npy'))).data as Float32Array;
    const manifest = JSON.parse(readFileSync(join(station.models, 'demo-v2', 'manifest.json'), 'utf8')) as { preprocess: { mean: number[]; std: number[] } };
    const size = planes.width * planes.height;
    expect(tensor.length).toBe(3 * size);
    let mismatches = 0;
    for (let c = 0; c < 3; c++) {
      const { scale, shift } = normalisation(manifest.preprocess.mean[c], manifest.preprocess.std[c]);
      for (let i = 0; i < size; i++) if (Math.fround(Math.fround(planes.data[4 * i + c] * scale) + shift) !== tensor[c * size + i]) mismatches++;
    }
    expect(mismatches).toBe(0);
    const shownSum = (): Promise<number> => page.evaluate(() => { // what the browser decoded and shows, read back at its own size
      const img = document.querySelector('img.model') as HTMLImageElement;
      const c = document.createElement('canvas');
      c.width = img.naturalWidth;
      c.height = img.naturalHeight;
      const g = c.getContext('2d')!;
      g.drawImage(img, 0, 0);
      const d = g.getImageData(0, 0, c.width, c.height).data;
      let s = 0;
      for (let i = 0; i < d.length; i += 4) s += d[i] * 3 + d[i + 1] * 5 + d[i + 2] * 7;
      return s;
    });
    let expected = 0;
    for (let i = 0; i < planes.data.length; i += 4) expected += planes.data[i] * 3 + planes.data[i + 1] * 5 + planes.data[i + 2] * 7;
    expect(await shownSum()).toBe(expected);

    // the heat map lies on both views the same way: same boxes, and the electrode's edges at the same place
    const box = (sel: string): Promise<string> => page.evaluate((s) => JSON.stringify(document.querySelector(s)!.getBoundingClientRect()), sel);
    await page.keyboard.press('h'); // the overlay on again
    const modelBox = await box('img.model');
    expect(await box('img.heat')).toBe(modelBox);
    const [inModel, inDisplay] = [edges(model), edges(auto)];
    console.log(`electrode edges (left, right, top, bottom; stage px): the model's view ${inModel}, the display ${inDisplay}`);
    inDisplay.forEach((e, i) => {
      expect(e).toBeGreaterThan(2); // a border was there to find
      expect(Math.abs(e - inModel[i]), 'the same edge in both views, within a stage pixel').toBeLessThanOrEqual(1);
    });

    // slider and keys: the displayed image changes, and nothing goes to the server
    await page.keyboard.press('m');
    await page.waitForSelector('.stage.windowed');
    expect(await box('canvas.display')).toBe(modelBox);
    expect(await box('img.heat')).toBe(modelBox);
    await page.keyboard.press('h');
    const windowOf = async (): Promise<[number, number]> => [Number(await page.locator('canvas.display').getAttribute('data-low')), Number(await page.locator('canvas.display').getAttribute('data-high'))];
    expect(await windowOf()).toEqual([display.low, display.high]);
    requests.length = 0;
    for (let i = 0; i < 3; i++) await page.keyboard.press('.');
    const brighter = inner(await stage.screenshot());
    expect(brighter.mean).toBeGreaterThan(a.mean + 20);
    await page.keyboard.press('0');
    for (let i = 0; i < 3; i++) await page.keyboard.press('=');
    const sharper = inner(await stage.screenshot());
    const [lo, hi] = await windowOf();
    expect(hi - lo).toBeLessThan((display.high - display.low) * 0.6);
    expect(sharper.sd).toBeGreaterThan(a.sd * 1.3);
    const slider = (await page.locator('#win-level').boundingBox())!;
    await page.locator('#win-level').click({ position: { x: slider.width * 0.9, y: slider.height / 2 } }); // scrolled into view, clicked near its right end
    const darker = inner(await stage.screenshot());
    expect((await windowOf())[0]).toBeGreaterThan(display.high); // level far up: the electrode goes black
    expect(darker.mean).toBeLessThan(a.mean / 4);
    await page.keyboard.press('0'); // keys work with the slider focused
    expect(await windowOf()).toEqual([display.low, display.high]);
    expect(requests, 'the window is the browser\'s alone').toEqual([]);
    await page.keyboard.press('m');
    expect(await shownSum()).toBe(expected); // the model's view, after all that, unchanged
    await page.keyboard.press('m');
    await page.keyboard.press('h');

    const icon = await fetch(`${base}/favicon.ico`);
    expect(icon.status).toBe(200);
    expect(icon.headers.get('content-type')).toMatch(/^image\//);
    const ico = Buffer.from(await icon.arrayBuffer());
    expect([ico.readUInt16LE(0), ico.readUInt16LE(2), ico.readUInt16LE(4)]).toEqual([0, 1, 1]); // ICONDIR: an icon, one image
    const png = PNG.sync.read(ico.subarray(ico.readUInt32LE(18), ico.readUInt32LE(18) + ico.readUInt32LE(14)));
    expect([png.width, png.height]).toEqual([ico[6], ico[7]]);
    expect(failed, 'no failed request (the favicon included), no CSP refusal, no script error').toEqual([]);
    rmSync(dir, { recursive: true, force: true });
  }, 120_000);

  it('a capture file that is gone shows a placeholder, not an error', async () => {
    const row = sqlRows<{ id: string; file_path: string }>(station.db, "SELECT id, file_path FROM inspections WHERE verdict = 'pass' ORDER BY seq LIMIT 1")[0]
      ?? sqlRows<{ id: string; file_path: string }>(station.db, 'SELECT id, file_path FROM inspections ORDER BY seq DESC LIMIT 1')[0];
    rmSync(row.file_path);
    for (const kind of ['model.png', 'display.bin', 'thumb.png']) {
      const r = await fetch(`${base}/img/${row.id}/${kind}`);
      expect(r.status).toBe(200);
      expect(r.headers.get('content-type')).toContain('image/svg+xml');
      expect(r.headers.get('x-placeholder')).toBe('the capture file is gone');
    }
    await page.goto(`${base}/capture/${row.id}`);
    await page.waitForFunction(() => /unavailable/.test(document.getElementById('win-text')?.textContent ?? ''));
    expect(await page.locator('.stage.windowed').count()).toBe(0); // the placeholder (the model's view) stays
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
      expect((await raw(url, `/img/${id}/model.png`)).status).toBe(401);
      expect((await raw(url, `/img/${id}/display.bin`)).status).toBe(401);
      expect((await raw(url, '/favicon.ico')).status).toBe(200); // the icon, like the stylesheet, needs no token
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

      for (const path of ['/img/../../etc/passwd', '/capture/%2e%2e/%2e%2e/etc/passwd', '/img/..%2f..%2fetc/passwd/model.png', '/assets/..\\..\\config.yaml']) {
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

describe('the display window and the model\'s view image (window.ts, render.ts)', () => {
  it('finds the electrode inside a bright border: the auto window spans the coating, not the border', () => {
    const img = synthElectrode(5003, null, { width: 400, height: 800 });
    const w = displayWindow(img);
    expect(w.region).toBe('electrode');
    expect(w.share).toBeGreaterThan(0.8);
    expect(w.low).toBeGreaterThan(1500);
    expect(w.high).toBeLessThan(3200); // the coating; the border lies near 10,500
    expect(w.max).toBeGreaterThan(9000);
    const local = localBounds(img);
    expect(local.max - local.min).toBeGreaterThan(5 * (w.high - w.low)); // what the model's local bounds stretch over
  });

  it('without a border (one population) or with a flat image, the whole capture counts', () => {
    const img = synthElectrode(5003, null, { width: 400, height: 800 });
    const m = 40;
    const data = new Uint16Array((400 - 2 * m) * (800 - 2 * m));
    for (let y = m; y < 800 - m; y++) data.set(img.data.subarray(y * 400 + m, y * 400 + 400 - m), (y - m) * (400 - 2 * m));
    const w = displayWindow({ width: 400 - 2 * m, height: 800 - 2 * m, data });
    expect(w.region).toBe('whole');
    expect(otsu(histogram16(data)).separation).toBeLessThan(SEPARATION);
    expect(w.high - w.low).toBeGreaterThan(200);
    const flat = displayWindow({ width: 10, height: 10, data: new Uint16Array(100).fill(3000) });
    expect([flat.region, flat.low, flat.high]).toEqual(['whole', 3000, 3001]);
  });

  it('boxDownscale: every source pixel in one box, averages kept; windowed maps low → 0 and high → 255', () => {
    const data = Uint16Array.from({ length: 7 * 5 }, (_, i) => i * 100);
    const out = boxDownscale({ width: 7, height: 5, data }, 3, 2);
    expect(out[1]).toBe(Math.round((data[2] + data[3] + data[9] + data[10]) / 4)); // columns floor(7/3)=2 … floor(14/3)−1=3, rows 0 … floor(5/2)−1=1
    expect(out[5]).toBe(Math.round([4, 5, 6].reduce((s, x) => s + data[2 * 7 + x] + data[3 * 7 + x] + data[4 * 7 + x], 0) / 9));
    expect([...windowed(Uint16Array.of(999, 1000, 1500, 2000, 2001), 1000, 2000)]).toEqual([0, 0, 128, 255, 255]);
  });

  it('the model\'s view keeps every plane: grayscale for one plane, RGB for three (mixed)', () => {
    const planes = [0, 1, 2].map((c) => Uint8Array.from({ length: 6 * 4 }, (_, i) => (i * (c + 3) * 37) % 256)) as [Uint8Array, Uint8Array, Uint8Array];
    const rgb = PNG.sync.read(planesPng(planes, 6, 4));
    expect([0, 1, 2].every((c) => planes[c].every((v, i) => rgb.data[4 * i + c] === v))).toBe(true);
    const gray = PNG.sync.read(planesPng([planes[1], planes[1], planes[1]], 6, 4));
    expect(planes[1].every((v, i) => gray.data[4 * i] === v && gray.data[4 * i + 2] === v)).toBe(true);
  });
});
