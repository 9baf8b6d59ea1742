/** Server-rendered SVG charts for the accuracy page: no script, no library, readable offline. */

export const esc = (s: unknown): string => String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

export interface Bar { label: string; segments: Array<{ value: number; cls: string; title: string }> }

/** Vertical (stacked) bars with a y axis from 0 to the largest total; `format` labels the axis. */
export function barChart(title: string, bars: Bar[], o: { width?: number; height?: number; format?: (v: number) => string; max?: number } = {}): string {
  const width = o.width ?? 640;
  const height = o.height ?? 220;
  const pad = { left: 48, right: 8, top: 24, bottom: 36 };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const max = o.max ?? Math.max(1e-9, ...bars.map((b) => b.segments.reduce((s, x) => s + x.value, 0)));
  const fmt = o.format ?? ((v: number) => String(Math.round(v)));
  const step = plotW / Math.max(1, bars.length);
  const parts: string[] = [];
  for (const t of [0, 0.5, 1]) {
    const y = pad.top + plotH * (1 - t);
    parts.push(`<line x1="${pad.left}" x2="${width - pad.right}" y1="${y}" y2="${y}" class="grid"/><text x="${pad.left - 4}" y="${y + 4}" text-anchor="end">${esc(fmt(max * t))}</text>`);
  }
  bars.forEach((b, i) => {
    let y = pad.top + plotH;
    for (const s of b.segments) {
      const h = (plotH * s.value) / max;
      y -= h;
      if (h > 0) parts.push(`<rect x="${(pad.left + i * step + step * 0.1).toFixed(1)}" y="${y.toFixed(1)}" width="${(step * 0.8).toFixed(1)}" height="${h.toFixed(1)}" class="${s.cls}"><title>${esc(s.title)}</title></rect>`);
    }
    const every = Math.ceil(bars.length / 10);
    if (i % every === 0) parts.push(`<text x="${(pad.left + i * step + step / 2).toFixed(1)}" y="${height - pad.bottom + 14}" text-anchor="middle">${esc(b.label)}</text>`);
  });
  return `<figure><figcaption>${esc(title)}</figcaption><svg viewBox="0 0 ${width} ${height}" width="100%" role="img" aria-label="${esc(title)}">${parts.join('')}</svg></figure>`;
}
