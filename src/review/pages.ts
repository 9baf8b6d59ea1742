import type { AccuracyRow } from '../audit/accuracy.js';
import type { Comparison } from '../audit/shadow.js';
import { barChart, esc } from './charts.js';
import type { ReviewRow } from '../audit/accuracy.js';
import type { CaptureRow } from './data.js';

/** The review page's HTML, rendered on the server: plain pages, one stylesheet, one small script. */

const NAV = [['/queue', 'Review queue'], ['/accuracy', 'Accuracy'], ['/models', 'Models']] as const;

export function layout(title: string, active: string, station: string, body: string): string {
  const nav = NAV.map(([href, text]) => `<a href="${href}"${href === active ? ' class="on"' : ''}>${text}</a>`).join('');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)} · xray-qc</title><link rel="icon" href="/favicon.ico"><link rel="stylesheet" href="/assets/review.css"></head>
<body><header><strong>xray-qc review</strong>${nav}<span class="station">station ${esc(station)}</span></header><main>${body}</main>
<script src="/assets/review.js"></script></body></html>`;
}

const pct = (x: number | null): string => (x === null ? '–' : `${(100 * x).toFixed(1)} %`);
const num = (x: number | null, d = 4): string => (x === null ? '–' : x.toFixed(d));
const verdictText = (v: string, reason: string): string => `<span class="verdict-${esc(v)}${reason === 'uncertain' ? ' reason-uncertain' : ''}">${esc(v)}${reason === 'uncertain' ? ' (uncertain)' : ''}</span>`;
const base = (p: string): string => p.split('/').pop() ?? p;

export function queuePage(rows: ReviewRow[], total: number): string {
  const cards = rows.map((r) => `<a href="/capture/${r.id}" data-id="${r.id}"><img src="/img/${r.id}/thumb.png" alt="capture ${r.seq}" loading="lazy">
<div>#${r.seq} ${verdictText(r.verdict, r.reason)} p=${num(r.p_abnormal, 3)}</div><div>${esc(r.bundle ?? '–')} / ${esc(r.part_id ?? base(r.file_path))}</div><div>${esc(r.scored_at.slice(0, 19).replace('T', ' '))}</div></a>`).join('');
  return `<h1>Review queue: ${total} flagged or uncertain without a label${total > rows.length ? ` (oldest ${rows.length} shown)` : ''}</h1>
${rows.length ? `<div class="queue">${cards}</div>` : '<p class="notice">Nothing waits for a human.</p>'}`;
}

export function capturePage(r: CaptureRow, o: { prev: string | null; next: string | null; csrf: string; band: [number, number] | null; saved?: string }): string {
  const p = r.p_abnormal;
  // SVG, not styled spans: the page's CSP allows no inline styles
  const x = (v: number): string => (4 + 392 * v).toFixed(1);
  const scale = p === null ? '' : `<svg class="scale" viewBox="0 0 400 30" width="100%" role="img" aria-label="p_abnormal ${p.toFixed(4)} against the threshold and review band">
<rect x="4" y="8" width="392" height="14" class="track"/>${o.band ? `<rect x="${x(o.band[0])}" y="8" width="${(392 * (o.band[1] - o.band[0])).toFixed(1)}" height="14" class="band"><title>review band</title></rect>` : ''}
${r.threshold !== null ? `<rect x="${x(r.threshold)}" y="4" width="2" height="22" class="thr"><title>threshold ${r.threshold}</title></rect>` : ''}<rect x="${(Number(x(p)) - 4).toFixed(1)}" y="2" width="8" height="26" rx="2" class="p"><title>p_abnormal ${p.toFixed(4)}</title></rect>
<text x="4" y="30">0</text><text x="396" y="30" text-anchor="end">1</text></svg>`;
  const facts: Array<[string, string]> = [
    ['Verdict', `${verdictText(r.verdict, r.reason)} — p_abnormal <b id="p">${num(p)}</b>, threshold ${num(r.threshold, 3)}${o.band ? `, review band [${o.band[0].toFixed(3)}, ${o.band[1].toFixed(3)})` : ''}`],
    ['Model', r.model_name ? `${esc(r.model_name)} v${r.model_version}` : '–'],
    ['Bundle / part', `${esc(r.bundle ?? '–')} / ${esc(r.part_id ?? '–')}`],
    ['File', esc(r.file_path)],
    ['Scored', `${esc(r.scored_at)} (#${r.seq})`],
    ['Timings', r.total_ms === null ? '–' : `decode ${r.decode_ms} ms, preprocess ${r.preprocess_ms} ms, inference ${r.infer_ms} ms, total ${r.total_ms} ms`],
    ['Where', r.where_x === null ? (r.has_heatmap ? 'no positive heat' : 'the model has no heat map') : `x ${r.where_x}, y ${r.where_y} px (strength ${num(r.strength, 3)})`],
    ['Label', r.label ? `<b id="label">${esc(r.label)}</b>${r.labelled_by ? ` by ${esc(r.labelled_by)}` : ''}${r.label_note ? ` — ${esc(r.label_note)}` : ''}` : '<span id="label">none yet</span>'],
  ];
  if (r.error_code) facts.push(['Error', `${esc(r.error_code)}: ${esc(r.error_message)}`]);
  const heat = r.has_heatmap ? `<img class="heat" src="/img/${r.id}/heat.png" alt="heat map">` : '';
  return `<h1>Capture #${r.seq}</h1>${o.saved ? `<p class="notice" id="saved">${esc(o.saved)}</p>` : ''}
<div class="capture"><div><div class="stage"><img class="model" src="/img/${r.id}/model.png" alt="the model's 8-bit input">
<canvas class="display" data-src="/img/${r.id}/display.bin" aria-label="the capture through the display window"></canvas>${heat}</div>
<div class="view-controls"><label><input type="checkbox" id="model-toggle"> the model's view (m): exactly its 8-bit input</label>
${r.has_heatmap ? '<label><input type="checkbox" id="heat-toggle" checked> heat map (h)</label>' : ''}
<div class="sliders"><label for="win-level">level</label><input type="range" id="win-level" step="1" disabled><label for="win-width">width</label><input type="range" id="win-width" step="1" disabled></div>
<button type="button" id="win-auto" disabled>auto window (0)</button>
<p class="keys" id="win-text">The model's view is shown (the display window needs the page's script).</p></div></div>
<div class="facts"><dl>${facts.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join('')}</dl>${scale}
<form class="label" method="post" action="/capture/${r.id}/label"><input type="hidden" name="csrf" value="${esc(o.csrf)}">
<input type="text" name="note" maxlength="500" placeholder="note (optional)"><input type="text" name="by" maxlength="100" placeholder="your name (optional)">
<button class="normal" name="label" value="normal">normal (n)</button><button class="abnormal" name="label" value="abnormal">abnormal (a)</button></form>
<p class="keys">Keys: n normal · a abnormal · h heat map · m the model's view · . / , brighter / darker · = / - more / less contrast · 0 auto window · j / → next · k / ← previous</p>
<nav class="pager">${o.prev ? `<a class="prev" href="/capture/${o.prev}">← previous</a>` : ''}${o.next ? `<a class="next" href="/capture/${o.next}">next →</a>` : ''}<a href="/queue">queue</a></nav></div></div>`;
}

export function placeholderSvg(why: string): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="500" height="1000" viewBox="0 0 500 1000"><rect width="500" height="1000" fill="#333"/>
<text x="250" y="480" fill="#fff" font-size="28" text-anchor="middle" font-family="DejaVu Sans, sans-serif">image unavailable</text>
<text x="250" y="530" fill="#ddd" font-size="16" text-anchor="middle" font-family="DejaVu Sans, sans-serif">${esc(why.slice(0, 80))}</text></svg>`;
}

function accuracyTable(id: string, title: string, rows: AccuracyRow[]): string {
  const head = ['group', 'n', 'labelled', 'TP', 'FP', 'TN', 'FN', 'TPR', 'TNR', 'BA', 'coverage', 'backlog', 'errors'];
  const body = rows.map((r) => `<tr data-group="${esc(r.group)}"><td>${esc(r.group)}</td><td>${r.n}</td><td>${r.labelled}</td><td>${r.tp}</td><td>${r.fp}</td><td>${r.tn}</td><td>${r.fn}</td>
<td>${pct(r.tpr)}</td><td>${pct(r.tnr)}</td><td data-ba="${r.balanced_accuracy ?? ''}">${pct(r.balanced_accuracy)}</td><td>${pct(r.label_coverage)}</td><td>${r.review_backlog}</td><td>${r.errors}</td></tr>`).join('');
  return `<h2>${esc(title)}</h2><table id="${id}"><thead><tr>${head.map((h) => `<th>${h}</th>`).join('')}</tr></thead><tbody>${body}</tbody></table>`;
}

export function accuracyPage(byBundle: AccuracyRow[], byModel: AccuracyRow[], daily: Array<{ day: string; verdicts: number; flags: number }>, hist: Array<{ bin: number; none: number; normal: number; abnormal: number }>): string {
  const rate = barChart('Daily flag rate (last 30 days)', daily.map((d) => ({
    label: d.day.slice(5), segments: [{ value: d.verdicts ? d.flags / d.verdicts : 0, cls: 'flag', title: `${d.day}: ${d.flags} of ${d.verdicts} flagged` }],
  })), { max: Math.max(0.05, ...daily.map((d) => (d.verdicts ? d.flags / d.verdicts : 0))), format: (v) => `${(100 * v).toFixed(0)} %` });
  const histogram = barChart('Score histogram: p_abnormal, by label (grey none, green normal, red abnormal)', hist.map((h) => ({
    label: (h.bin / 20).toFixed(2), segments: (['normal', 'abnormal', 'none'] as const).map((k) => ({ value: h[k], cls: k, title: `[${(h.bin / 20).toFixed(2)}, ${((h.bin + 1) / 20).toFixed(2)}): ${h[k]} ${k}` })),
  })));
  return `<h1>Accuracy, the paper's way</h1><p>Per group the balanced accuracy is the mean recall over the classes present; Overall is pooled (Table 1's rules).
A flag, uncertain included, counts as "abnormal predicted"; errors are not predictions. The same figures as <code>xray-qc audit accuracy</code>.</p>
${accuracyTable('by-bundle', 'By production bundle', byBundle)}${accuracyTable('by-model', 'By model', byModel)}${rate}${histogram}`;
}

export function modelsPage(active: { folder: string | null; name?: string; version?: number; description?: string }, shadow: string | null, compare: Comparison | null, entries: Array<{ folder: string; name: string; version: number }>): string {
  return `<h1>Models</h1><table id="models"><thead><tr><th>folder</th><th>name</th><th>version</th><th>role</th></tr></thead><tbody>
${entries.map((e) => `<tr><td>${esc(e.folder)}</td><td>${esc(e.name)}</td><td>${e.version}</td><td>${e.folder === active.folder ? 'active' : e.folder === shadow ? 'shadow candidate' : ''}</td></tr>`).join('')}</tbody></table>
<p>Active: <b>${esc(active.name ?? active.folder ?? 'none')}${active.version ? ` v${active.version}` : ''}</b>${active.description ? ` — ${esc(active.description)}` : ''}</p>
<p>Shadow candidate: <b>${esc(shadow ?? 'none')}</b></p>
${compare ? `<h2>models compare</h2><pre id="compare">${esc(JSON.stringify(compare, null, 2))}</pre>` : '<p>No shadow scores to compare yet.</p>'}`;
}

export function loginPage(message: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>xray-qc review: sign in</title>
<link rel="icon" href="/favicon.ico"><link rel="stylesheet" href="/assets/review.css"></head><body><main><h1>xray-qc review</h1><p class="notice">${esc(message)}</p>
<form method="post" action="/login"><label>Review token <input type="password" name="token" autocomplete="current-password" maxlength="512"></label> <button>Sign in</button></form></main></body></html>`;
}
