/**
 * Hostile uploads for the fuzz test (test/server-fuzz.test.ts) and the full fuzz run
 * (bench/server-fuzz.ts). Seeded, so any failure can be replayed: input i of seed s is always the
 * same bytes.
 *
 * From a few valid files (real photos as JPEG, PNG, WebP, TIFF; 1x1 images; an animated GIF) it
 * makes truncations, bit flips, overwritten runs, duplicated or dropped chunks, swapped or broken
 * magic numbers, huge or zero declared dimensions (PNG with a correct CRC, JPEG SOF, GIF, WebP),
 * animated GIFs with many frames, progressive JPEGs with thousands of scans, TIFFs with thousands of pages, files with junk before or after, other file types (PDF, ZIP, ELF,
 * BMP, ICO, MP4, HEIC brands), text (plain, HTML, SVG, JSON), zero-length and all-zero files, and
 * random bytes. Most are refused at the header check (cheap); the rest reach the decoder or the
 * model, which must answer with a caption or a 400.
 */
import zlib from "node:zlib";
import sharp, { type SharpOptions } from "sharp";

export interface FuzzInput {
  /** Which generator made it, e.g. "bitflip:png". */
  kind: string;
  bytes: Buffer;
}

export type Seeds = Readonly<Record<string, Buffer>>;

/** Valid files to mutate, made from the given photos (small, so decoding stays cheap). */
export async function fuzzSeeds(photos: Buffer[]): Promise<Seeds> {
  const [a, b = a] = photos;
  const small = sharp(a).resize(96, 72);
  const frames = await sharp(b).resize(32, 32).raw().toBuffer();
  const gif = await sharp(Buffer.concat([frames, Buffer.alloc(frames.length, 90), frames]), { raw: { width: 32, height: 96, channels: 3, pageHeight: 32 } } as SharpOptions).gif().toBuffer();
  const one = (format: "png" | "jpeg" | "gif" | "webp") => sharp({ create: { width: 1, height: 1, channels: 3, background: "#7a3" } }).toFormat(format).toBuffer();
  return Object.freeze({
    jpeg: a,
    jpeg2: b,
    progressive: await small.clone().jpeg({ progressive: true }).toBuffer(),
    png: await small.clone().png().toBuffer(),
    webp: await small.clone().webp().toBuffer(),
    tiff: await small.clone().tiff().toBuffer(),
    gif,
    png1: await one("png"),
    jpeg1: await one("jpeg"),
    gif1: await one("gif"),
    webp1: await one("webp"),
  });
}

/** mulberry32: a small seeded PRNG. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const MAGIC: Readonly<Record<string, number[]>> = Object.freeze({
  jpeg: [0xff, 0xd8, 0xff],
  png: [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a],
  gif: [...Buffer.from("GIF89a")],
  pdf: [...Buffer.from("%PDF-1.7\n")],
  zip: [0x50, 0x4b, 0x03, 0x04],
  elf: [0x7f, 0x45, 0x4c, 0x46, 2, 1, 1],
  bmp: [...Buffer.from("BM"), 0x36, 0x00, 0x0c, 0x00],
  ico: [0, 0, 1, 0, 1, 0],
  mp4: [0, 0, 0, 0x18, ...Buffer.from("ftypisom")],
  heic: [0, 0, 0, 0x18, ...Buffer.from("ftypheic")],
  avif: [0, 0, 0, 0x1c, ...Buffer.from("ftypavif")],
  riffwebp: [...Buffer.from("RIFF"), 0xff, 0xff, 0, 0, ...Buffer.from("WEBPVP8 ")],
  tiff: [0x49, 0x49, 42, 0],
});

const TEXTS = [
  "hello, I am not a photo\n",
  "<!doctype html><html><body><img src=x onerror=alert(1)></body></html>",
  "<svg xmlns='http://www.w3.org/2000/svg' width='99999' height='99999'><rect width='100%' height='100%'/></svg>",
  '{"image": "data:image/png;base64,iVBORw0KGgo="}',
  "\ufeffGIF89a? no, a text file with a BOM",
  "id,caption\n1,a dog runs\n",
  "%PDF? \u0000\u0000 not really",
];

/** Sets a PNG's IHDR width and height and fixes the chunk's CRC. */
function pngDims(png: Buffer, w: number, h: number): Buffer {
  const out = Buffer.from(png);
  out.writeUInt32BE(w >>> 0, 16);
  out.writeUInt32BE(h >>> 0, 20);
  out.writeUInt32BE(zlib.crc32(out.subarray(12, 29)), 29);
  return out;
}

/** Sets the dimensions in a JPEG's first SOF marker (baseline or progressive). */
function jpegDims(jpeg: Buffer, w: number, h: number): Buffer {
  const out = Buffer.from(jpeg);
  for (let i = 2; i + 9 < out.length; ) {
    if (out[i] !== 0xff) break;
    const marker = out[i + 1];
    const len = out.readUInt16BE(i + 2);
    if (marker >= 0xc0 && marker <= 0xc2) {
      out.writeUInt16BE(h & 0xffff, i + 5);
      out.writeUInt16BE(w & 0xffff, i + 7);
      return out;
    }
    i += 2 + len;
  }
  return out;
}

/** Sets a GIF's logical screen and first image descriptor size. */
function gifDims(gif: Buffer, w: number, h: number): Buffer {
  const out = Buffer.from(gif);
  out.writeUInt16LE(w & 0xffff, 6);
  out.writeUInt16LE(h & 0xffff, 8);
  const at = out.indexOf(0x2c, 13); // image descriptor
  if (at > 0 && at + 9 < out.length) {
    out.writeUInt16LE(w & 0xffff, at + 5);
    out.writeUInt16LE(h & 0xffff, at + 7);
  }
  return out;
}

/** Sets a lossy WebP's frame size (14 bits each). */
function webpDims(webp: Buffer, w: number, h: number): Buffer {
  const out = Buffer.from(webp);
  const at = out.indexOf("VP8 ", 12, "latin1");
  if (at > 0 && at + 20 < out.length) {
    out.writeUInt16LE(w & 0x3fff, at + 14);
    out.writeUInt16LE(h & 0x3fff, at + 16);
  }
  return out;
}

/** An animated GIF with `frames` frames of w x h noise, made by hand (sharp would be slow for many). */
function manyFrameGif(rand: () => number, w: number, h: number, frames: number): Buffer {
  const parts: Buffer[] = [Buffer.from("GIF89a"), Buffer.from([w & 0xff, w >> 8, h & 0xff, h >> 8, 0xf0, 0, 0])];
  parts.push(Buffer.from([0, 0, 0, 255, 255, 255])); // 2-colour global table
  parts.push(Buffer.from([0x21, 0xff, 0x0b, ...Buffer.from("NETSCAPE2.0"), 3, 1, 0, 0, 0]));
  for (let f = 0; f < frames; f++) {
    parts.push(Buffer.from([0x21, 0xf9, 4, 0, 2, 0, 0, 0]));
    parts.push(Buffer.from([0x2c, 0, 0, 0, 0, w & 0xff, w >> 8, h & 0xff, h >> 8, 0]));
    // LZW, minimum code size 2: a short random run; decoders must cope with it being too short.
    const data = Buffer.from(Array.from({ length: 8 }, () => Math.floor(rand() * 256)));
    parts.push(Buffer.from([2, data.length]), data, Buffer.from([0]));
  }
  parts.push(Buffer.from([0x3b]));
  return Buffer.concat(parts);
}

/**
 * A progressive JPEG whose last scan is repeated until it has `scans` scans: each one is a full
 * pass over the pixels for a decoder, so the decoding cost grows with them, not with the pixels.
 */
export function manyScanJpeg(progressive: Buffer, scans: number): Buffer {
  const body = progressive.subarray(0, progressive.length - 2); // without EOI
  const last = body.lastIndexOf(Buffer.from([0xff, 0xda])); // 0xffda never occurs inside entropy-coded data
  if (last < 0 || progressive.readUInt16BE(progressive.length - 2) !== 0xffd9) throw new Error("not a JPEG ending in a scan");
  const have = (() => { let n = 0; for (let i = body.indexOf(Buffer.from([0xff, 0xda])); i >= 0; i = body.indexOf(Buffer.from([0xff, 0xda]), i + 2)) n++; return n; })();
  const block = body.subarray(last);
  return Buffer.concat([body, ...Array.from({ length: Math.max(0, scans - have) }, () => block), Buffer.from([0xff, 0xd9])]);
}

/** A little-endian TIFF of `pages` 1x1 grey pages, each an image file directory of its own, all sharing one pixel. */
export function manyPageTiff(pages: number): Buffer {
  const ENTRIES = 8, IFD = 2 + 12 * ENTRIES + 4, pixel = 8;
  const out = Buffer.alloc(pixel + 2 + pages * IFD); // header, the pixel (+1 pad), then the directories
  out.write("II", 0, "latin1");
  out.writeUInt16LE(42, 2);
  out.writeUInt32LE(pixel + 2, 4);
  out[pixel] = 0x80;
  for (let p = 0; p < pages; p++) {
    const at = pixel + 2 + p * IFD;
    out.writeUInt16LE(ENTRIES, at);
    // tag, type (3 SHORT, 4 LONG), count, value: width, height, bits, no compression, min-is-black, strip offset, rows per strip, strip bytes
    const tags: [number, number, number][] = [[256, 3, 1], [257, 3, 1], [258, 3, 8], [259, 3, 1], [262, 3, 1], [273, 4, pixel], [278, 3, 1], [279, 4, 1]];
    tags.forEach(([tag, type, value], k) => {
      const e = at + 2 + 12 * k;
      out.writeUInt16LE(tag, e);
      out.writeUInt16LE(type, e + 2);
      out.writeUInt32LE(1, e + 4);
      if (type === 3) out.writeUInt16LE(value, e + 8);
      else out.writeUInt32LE(value, e + 8);
    });
    out.writeUInt32LE(p + 1 < pages ? at + IFD : 0, at + 2 + 12 * ENTRIES);
  }
  return out;
}

/** The generator: `count` inputs from `seeds`, reproducible from `seed`. */
export function* fuzzInputs(seeds: Seeds, count: number, seed = 1): Generator<FuzzInput> {
  const rand = prng(seed);
  const int = (n: number) => Math.floor(rand() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)];
  const names = Object.keys(seeds);
  const images = names.map((n) => [n, seeds[n]] as const);
  // Sizes: half over a 40 MP limit (refused from the header), half under it but large.
  const hugeDim = () => (rand() < 0.5 ? pick([65535, 30000, 16384, 0x7fffffff, 0xffffffff]) : pick([1, 2, 3000, 5000, 6000]));

  for (let i = 0; i < count; i++) {
    const [name, base] = pick(images);
    const r = rand();
    let kind: string;
    let bytes: Buffer;
    if (r < 0.14) {
      kind = `truncate:${name}`;
      bytes = base.subarray(0, int(base.length));
    } else if (r < 0.3) {
      kind = `bitflip:${name}`;
      bytes = Buffer.from(base);
      const flips = 1 + int(rand() < 0.2 ? 64 : 8);
      for (let k = 0; k < flips; k++) bytes[int(bytes.length)] ^= 1 << int(8);
    } else if (r < 0.37) {
      kind = `overwrite:${name}`;
      bytes = Buffer.from(base);
      const at = int(bytes.length);
      bytes.fill(pick([0x00, 0xff, int(256)]), at, Math.min(bytes.length, at + 1 + int(512)));
    } else if (r < 0.42) {
      kind = `splice:${name}`;
      const a = int(base.length);
      const b = Math.min(base.length, a + int(2048));
      bytes = rand() < 0.5 ? Buffer.concat([base.subarray(0, b), base.subarray(a)]) : Buffer.concat([base.subarray(0, a), base.subarray(b)]);
    } else if (r < 0.52) {
      kind = `magic:${name}`;
      bytes = Buffer.from(base);
      const m = pick(Object.values(MAGIC));
      if (rand() < 0.5) Buffer.from(m).copy(bytes, 0);
      else bytes[int(Math.min(8, bytes.length))] ^= 0xff;
    } else if (r < 0.6) {
      const w = hugeDim();
      const h = hugeDim();
      const target = pick(["png", "jpeg", "gif", "webp", "png1", "gif1"] as const);
      kind = `dims:${target}:${w}x${h}`;
      const src = seeds[target];
      bytes = target.startsWith("png") ? pngDims(src, w, h) : target === "jpeg" ? jpegDims(src, w, h) : target.startsWith("gif") ? gifDims(src, w, h) : webpDims(src, w, h);
    } else if (r < 0.65) {
      const w = pick([1, 16, 64, 4000, 65535]);
      const h = pick([1, 16, 64, 4000, 65535]);
      const frames = pick([2, 50, 500]);
      kind = `gif-frames:${w}x${h}x${frames}`;
      bytes = manyFrameGif(rand, w, h, frames);
    } else if (r < 0.74) {
      kind = "text";
      const t = pick(TEXTS);
      bytes = Buffer.from(rand() < 0.3 ? t.repeat(1 + int(200)) : t);
    } else if (r < 0.79) {
      const n = pick([0, 0, 1, 2, 3, 16, 4096]);
      kind = `zeros:${n}`;
      bytes = Buffer.alloc(n, rand() < 0.5 ? 0 : 0xff);
    } else if (r < 0.86) {
      const n = 1 + int(rand() < 0.9 ? 2048 : 200_000);
      kind = `random:${n}`;
      bytes = Buffer.from(Array.from({ length: n }, () => int(256)));
    } else if (r < 0.91) {
      const [type, m] = pick(Object.entries(MAGIC));
      kind = `foreign:${type}`;
      bytes = Buffer.concat([Buffer.from(m), Buffer.from(Array.from({ length: int(1024) }, () => int(256)))]);
    } else if (r < 0.95) {
      kind = `junk:${name}`;
      const junk = Buffer.from(Array.from({ length: 1 + int(4096) }, () => int(256)));
      bytes = rand() < 0.5 ? Buffer.concat([base, junk]) : Buffer.concat([junk, base]);
    } else if (r < 0.97) {
      // Files whose decoding cost is not bounded by their pixels: refused from a walk of their bytes.
      if (rand() < 0.5) {
        const scans = pick([65, 500, 2000]);
        kind = `jpeg-scans:${scans}`;
        bytes = manyScanJpeg(seeds.progressive, scans);
      } else {
        const pages = pick([101, 1000, 50_000]);
        kind = `tiff-pages:${pages}`;
        bytes = manyPageTiff(pages);
      }
    } else {
      kind = `valid:${name}`;
      bytes = base;
    }
    yield { kind, bytes };
  }
}
