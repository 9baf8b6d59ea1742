import { PNG } from 'pngjs';

/** The model's view as a PNG: grayscale when the three planes are one, RGB otherwise (mixed). */
export function encodePlanesPng(planes: [Uint8Array, Uint8Array, Uint8Array], width: number, height: number): Buffer {
  const gray = planes[0] === planes[1] && planes[1] === planes[2];
  const png = new PNG({ width, height, colorType: gray ? 0 : 2, inputColorType: 6, inputHasAlpha: true });
  const n = width * height;
  for (let i = 0; i < n; i++) {
    png.data[4 * i] = planes[0][i];
    png.data[4 * i + 1] = planes[1][i];
    png.data[4 * i + 2] = planes[2][i];
    png.data[4 * i + 3] = 255;
  }
  return PNG.sync.write(png, { colorType: gray ? 0 : 2, inputColorType: 6, inputHasAlpha: true });
}
