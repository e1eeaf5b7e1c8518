/**
 * Attention heatmaps, shared by the page (canvas overlay) and the server (result picture), so
 * both draw the same thing. An h x w attention grid is scaled by its maximum, upsampled with a
 * separable Catmull-Rom (bicubic) filter, then coloured with a perceptual colour map whose
 * opacity rises with attention, so unattended parts of the photo stay visible.
 *
 * Plain ES module with no dependencies; types in heatmap.d.ts.
 */

/** Colour maps as 11 evenly spaced stops (matplotlib's inferno and viridis at 0, 0.1, ..., 1). */
export const COLORMAPS = Object.freeze({
  inferno: ["#000004", "#160b39", "#420a68", "#6a176e", "#932667", "#bc3754", "#dd513a", "#f37819", "#fca50a", "#f6d746", "#fcffa4"],
  viridis: ["#440154", "#482475", "#414487", "#355f8d", "#2a788e", "#21918c", "#22a884", "#44bf70", "#7ad151", "#bddf26", "#fde725"],
  magma: ["#000004", "#140e36", "#3b0f70", "#641a80", "#8c2981", "#b73779", "#de4968", "#f7705c", "#fe9f6d", "#fecf92", "#fcfdbf"],
});

const lutCache = new Map();

/** 256 RGB entries interpolated from a colour map's stops. */
export function colormapLut(name = "inferno") {
  const cached = lutCache.get(name);
  if (cached) return cached;
  const stops = (COLORMAPS[name] ?? COLORMAPS.inferno).map((hex) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)));
  const lut = new Uint8Array(256 * 3);
  for (let i = 0; i < 256; i++) {
    const t = (i / 255) * (stops.length - 1);
    const k = Math.min(Math.floor(t), stops.length - 2);
    const f = t - k;
    for (let c = 0; c < 3; c++) lut[i * 3 + c] = Math.round(stops[k][c] * (1 - f) + stops[k + 1][c] * f);
  }
  lutCache.set(name, lut);
  return lut;
}

/** Catmull-Rom taps for resampling n source samples to m outputs (pixel centres aligned). */
function taps(n, m) {
  const idx = new Int32Array(m * 4);
  const wts = new Float32Array(m * 4);
  for (let o = 0; o < m; o++) {
    const x = ((o + 0.5) * n) / m - 0.5;
    const x0 = Math.floor(x);
    const t = x - x0;
    const w = [
      ((-t + 2) * t - 1) * t * 0.5,
      ((3 * t - 5) * t * t + 2) * 0.5,
      ((-3 * t + 4) * t + 1) * t * 0.5,
      (t - 1) * t * t * 0.5,
    ];
    for (let k = 0; k < 4; k++) {
      idx[o * 4 + k] = Math.min(n - 1, Math.max(0, x0 - 1 + k));
      wts[o * 4 + k] = w[k];
    }
  }
  return { idx, wts };
}

/**
 * Upsamples a row-major h x w grid to outW x outH values in 0..1 (scaled so the grid's maximum
 * is 1). Returns a Float32Array of outW * outH.
 */
export function upsampleGrid(alpha, h, w, outW, outH) {
  let max = 0;
  for (let i = 0; i < h * w; i++) max = Math.max(max, alpha[i] || 0);
  const scale = max > 0 ? 1 / max : 0;
  const tx = taps(w, outW);
  const ty = taps(h, outH);
  // Rows first: h x outW.
  const tmp = new Float32Array(h * outW);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < outW; x++) {
      let s = 0;
      for (let k = 0; k < 4; k++) s += (alpha[y * w + tx.idx[x * 4 + k]] || 0) * tx.wts[x * 4 + k];
      tmp[y * outW + x] = s * scale;
    }
  }
  const out = new Float32Array(outW * outH);
  for (let y = 0; y < outH; y++) {
    for (let x = 0; x < outW; x++) {
      let s = 0;
      for (let k = 0; k < 4; k++) s += tmp[ty.idx[y * 4 + k] * outW + x] * ty.wts[y * 4 + k];
      out[y * outW + x] = s < 0 ? 0 : s > 1 ? 1 : s;
    }
  }
  return out;
}

/** Opacity of a heat value v in 0..1 at the user's overall opacity: low attention fades out. */
export function heatAlpha(v, opacity) {
  return opacity * (0.12 + 0.88 * Math.pow(v, 0.8));
}

/** Fills an RGBA buffer (e.g. ImageData.data) with the coloured heatmap for `values`. */
export function paintRgba(values, rgba, { colormap = "inferno", opacity = 0.6 } = {}) {
  const lut = colormapLut(colormap);
  for (let i = 0; i < values.length; i++) {
    const c = Math.round(values[i] * 255) * 3;
    rgba[i * 4] = lut[c];
    rgba[i * 4 + 1] = lut[c + 1];
    rgba[i * 4 + 2] = lut[c + 2];
    rgba[i * 4 + 3] = Math.round(255 * heatAlpha(values[i], opacity));
  }
  return rgba;
}

/** Blends the heatmap for `values` over interleaved RGB pixels, returning new RGB pixels. */
export function blendRgb(rgb, values, { colormap = "inferno", opacity = 0.6 } = {}) {
  const lut = colormapLut(colormap);
  const out = new Uint8Array(rgb.length);
  for (let i = 0; i < values.length; i++) {
    const c = Math.round(values[i] * 255) * 3;
    const a = heatAlpha(values[i], opacity);
    for (let k = 0; k < 3; k++) out[i * 3 + k] = Math.round(rgb[i * 3 + k] * (1 - a) + lut[c + k] * a);
  }
  return out;
}
