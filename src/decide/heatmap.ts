import type { HeatMap, StoredHeatMap, Where } from '../pipeline/messages.js';

/** The hottest cell of a heat map in capture pixels (the map covers the whole capture, as the model's input does); null with no positive cell. */
export function hottest(map: HeatMap, captureWidth: number, captureHeight: number): Where | null {
  let best = -1;
  let value = 0;
  for (let i = 0; i < map.data.length; i++) {
    if (map.data[i] > value) {
      value = map.data[i];
      best = i;
    }
  }
  if (best < 0 || !Number.isFinite(value)) return null;
  const row = Math.floor(best / map.width);
  const col = best % map.width;
  return {
    x: Math.round(((col + 0.5) * captureWidth) / map.width),
    y: Math.round(((row + 0.5) * captureHeight) / map.height),
    strength: Number(value.toPrecision(6)),
  };
}

/** 8-bit cells with the maximum as scale (a few KB: 2,016 bytes at 63×32). */
export function quantiseHeatMap(map: HeatMap): StoredHeatMap {
  let max = 0;
  for (const v of map.data) if (v > max && Number.isFinite(v)) max = v;
  const cells = new Uint8Array(map.data.length);
  if (max > 0) for (let i = 0; i < cells.length; i++) cells[i] = Number.isFinite(map.data[i]) ? Math.max(0, Math.min(255, Math.round((255 * map.data[i]) / max))) : 0;
  return { width: map.width, height: map.height, scale: max, cells };
}
