/**
 * The downloadable result picture, drawn with sharp: the caption on top, then the photo and one
 * tile per word with that word's attention over the photo and the word (and its probability)
 * underneath. Heatmaps come from static/heatmap.js, so the picture matches the page.
 */
import sharp, { type OverlayOptions } from "sharp";
import type { RawImage } from "../model/types.ts";
import { blendRgb, upsampleGrid, type ColormapName } from "../static/heatmap.js";
import type { WordResult } from "./events.ts";

export interface PictureInput {
  photo: RawImage;
  caption: string;
  words: readonly WordResult[];
  grid: readonly [number, number];
  colormap?: ColormapName;
  opacity?: number;
}

const TILE = 200; // longest side of each tile, px
const PAD = 16;
const LABEL = 44; // room under each tile for the word and its probability
const MAX_COLUMNS = 5;
const FONT = "DejaVu Sans, Liberation Sans, Arial, Helvetica, sans-serif";

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** Greedy word wrap by an average glyph width; good enough for a caption line or two. */
function wrap(text: string, maxChars: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const w of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + w.length > maxChars) {
      lines.push(line);
      line = w;
    } else line = line ? `${line} ${w}` : w;
  }
  if (line) lines.push(line);
  return lines.length ? lines : [""];
}

/** Renders the result picture as PNG bytes. */
export async function renderPicture({ photo, caption, words, grid, colormap = "inferno", opacity = 0.65 }: PictureInput): Promise<Buffer> {
  const scale = TILE / Math.max(photo.width, photo.height);
  const tw = Math.max(1, Math.round(photo.width * scale));
  const th = Math.max(1, Math.round(photo.height * scale));
  const base = await sharp(Buffer.from(photo.data.buffer, photo.data.byteOffset, photo.data.byteLength), {
    raw: { width: photo.width, height: photo.height, channels: photo.channels },
  })
    .toColourspace("srgb")
    .removeAlpha()
    .resize(tw, th, { fit: "fill" })
    .raw()
    .toBuffer();

  const [gh, gw] = grid;
  const tiles: { rgb: Uint8Array; label: string; sub: string }[] = [{ rgb: base, label: "photo", sub: `${words.length} words` }];
  for (const w of words) {
    const values = upsampleGrid(w.alpha, gh, gw, tw, th);
    tiles.push({ rgb: blendRgb(base, values, { colormap, opacity }), label: w.word, sub: `p = ${w.prob.toFixed(2)}` });
  }

  const cols = Math.min(MAX_COLUMNS, tiles.length);
  const rows = Math.ceil(tiles.length / cols);
  const cellW = Math.max(tw, 120);
  const width = PAD + cols * (cellW + PAD);
  const captionLines = wrap(caption || "(no words)", Math.floor((width - 2 * PAD) / 12));
  const head = PAD + captionLines.length * 30 + 26;
  const height = head + rows * (th + LABEL + PAD);

  const svg: string[] = [];
  captionLines.forEach((l, i) => {
    svg.push(`<text x="${PAD}" y="${PAD + 22 + i * 30}" font-family="${FONT}" font-size="22" font-weight="bold" fill="#111827">${esc(l)}</text>`);
  });
  svg.push(`<text x="${PAD}" y="${head - 10}" font-family="${FONT}" font-size="13" fill="#6b7280">attention for each word · ${gh}x${gw} grid · caption-studio</text>`);
  const composites: OverlayOptions[] = [];
  tiles.forEach((t, i) => {
    const left = PAD + (i % cols) * (cellW + PAD) + Math.floor((cellW - tw) / 2);
    const top = head + Math.floor(i / cols) * (th + LABEL + PAD);
    composites.push({ input: Buffer.from(t.rgb.buffer, t.rgb.byteOffset, t.rgb.byteLength), raw: { width: tw, height: th, channels: 3 }, left, top });
    const cx = PAD + (i % cols) * (cellW + PAD) + cellW / 2;
    const bold = i === 0 ? "normal" : "bold";
    svg.push(`<text x="${cx}" y="${top + th + 21}" text-anchor="middle" font-family="${FONT}" font-size="17" font-weight="${bold}" fill="#111827">${esc(t.label)}</text>`);
    svg.push(`<text x="${cx}" y="${top + th + 38}" text-anchor="middle" font-family="${FONT}" font-size="12" fill="#6b7280">${esc(t.sub)}</text>`);
  });
  const overlay = Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${svg.join("")}</svg>`);
  composites.push({ input: overlay, left: 0, top: 0 });

  return sharp({ create: { width, height, channels: 3, background: "#ffffff" } })
    .composite(composites)
    .removeAlpha()
    .png({ compressionLevel: 6 })
    .toBuffer();
}
