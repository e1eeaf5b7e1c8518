/**
 * The downloadable result picture, drawn with sharp: the caption on top, then the photo and one
 * tile per word with that word's attention over the photo and the word (and its probability)
 * underneath. Heatmaps come from static/heatmap.js, so the picture matches the page. Detected
 * objects are drawn as labelled boxes ("giraffe 87%") on the photo tile, and a word that names
 * one gets that object's box on its tile; colours and labels come from static/objects.js.
 */
import sharp, { type OverlayOptions } from "sharp";
import type { RawImage } from "../model/index.ts";
import { blendRgb, upsampleGrid, type ColormapName } from "../static/heatmap.js";
import { clampBox, objectColor, objectLabel } from "../static/objects.js";
import type { ObjectResult, WordResult } from "./events.ts";

export interface PictureInput {
  photo: RawImage;
  caption: string;
  words: readonly WordResult[];
  grid: readonly [number, number];
  /** Detected objects (boxes as fractions of the photo); words[].object indexes into them. */
  objects?: readonly ObjectResult[];
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

/** SVG for one labelled box on a tile of tw x th px at (left, top). */
function boxSvg(o: ObjectResult, index: number, left: number, top: number, tw: number, th: number): string {
  const b = clampBox(o.box);
  if (!b) return "";
  const x = left + b[0] * tw, y = top + b[1] * th, w = b[2] * tw, h = b[3] * th;
  const color = objectColor(index);
  const label = objectLabel(o);
  const lw = Math.min(tw, Math.ceil(label.length * 6.8) + 8), lh = 16;
  // The label sits on the box's top edge, inside the tile: above the box if there is room, else inside it.
  const lx = Math.min(Math.max(left, x - 1), left + tw - lw);
  const ly = y - lh >= top ? y - lh : Math.min(y, top + th - lh);
  return (
    `<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${w.toFixed(1)}" height="${h.toFixed(1)}" fill="none" stroke="#0b0f17" stroke-opacity="0.55" stroke-width="4"/>` +
    `<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${w.toFixed(1)}" height="${h.toFixed(1)}" fill="none" stroke="${color}" stroke-width="2"/>` +
    `<rect x="${lx.toFixed(1)}" y="${ly.toFixed(1)}" width="${lw}" height="${lh}" rx="3" fill="${color}"/>` +
    `<text x="${(lx + 4).toFixed(1)}" y="${(ly + 12).toFixed(1)}" font-family="${FONT}" font-size="11" font-weight="bold" fill="#0b0f17">${esc(label)}</text>`
  );
}

/** Renders the result picture as PNG bytes. */
export async function renderPicture({ photo, caption, words, grid, objects = [], colormap = "inferno", opacity = 0.65 }: PictureInput): Promise<Buffer> {
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
  const photoSub = objects.length ? `${words.length} words · ${objects.length} object${objects.length === 1 ? "" : "s"}` : `${words.length} words`;
  const all = objects.map((_, i) => i);
  const tiles: { rgb: Uint8Array; label: string; sub: string; boxes: number[] }[] = [{ rgb: base, label: "photo", sub: photoSub, boxes: all }];
  for (const w of words) {
    const values = upsampleGrid(w.alpha, gh, gw, tw, th);
    const named = w.object !== undefined && objects[w.object] ? [w.object] : [];
    tiles.push({ rgb: blendRgb(base, values, { colormap, opacity }), label: w.word, sub: `p = ${w.prob.toFixed(2)}`, boxes: named });
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
    // Least confident first, so the most confident box and label end up on top.
    for (const k of [...t.boxes].reverse()) svg.push(boxSvg(objects[k], k, left, top, tw, th));
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
