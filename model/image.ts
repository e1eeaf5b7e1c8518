/**
 * Turning whatever a caller has (encoded bytes, a path, raw pixels) into 8-bit RGB: the one
 * decode chain (sharp) and the one wording of its failures, for the model and the server alike.
 * Flickr8k's training images were squashed to a square without keeping the aspect ratio, so
 * user photos are squashed the same way for the encoder (toRgbSquare): what the model saw in
 * training is what it sees now. toRgb keeps the aspect ratio, for pictures people look at.
 */
import sharp, { type Metadata, type Sharp } from "sharp";

/** Raw interleaved 8-bit pixels. channels may be 1 (grey), 3 (RGB) or 4 (RGBA). */
export interface RawImage {
  data: Uint8Array | Uint8ClampedArray;
  width: number;
  height: number;
  channels: 1 | 3 | 4;
}

export type ImageInput = Uint8Array | ArrayBuffer | RawImage | string;

/** An input that is not a readable image. The message is safe to show to a user. */
export class ImageError extends Error {
  override name = "ImageError";
  constructor(
    message: string,
    /** The decoder's own complaint (its first line), kept so a caller that knows the file's format can word it again (imageError). */
    readonly detail?: string,
  ) {
    super(message);
  }
}

/** Decompression-bomb guard: sharp refuses images with more pixels than this. */
export const DEFAULT_PIXEL_LIMIT = 40_000_000;

/** A decoder's complaint, first line only, without libvips's "Input buffer ..." preamble. */
function firstLine(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return m.split("\n")[0].replace(/^Input buffer (has corrupt header|contains unsupported image format):?\s*/i, "").trim() || "cannot be decoded";
}

/**
 * The one wording of a decoder's failure (sharp, libvips) for users. `format` ("jpeg"), when the
 * caller has read it from the file's magic number, names the file ("truncated JPEG"); an
 * ImageError is worded again with it, or passed through as it is.
 */
export function imageError(e: unknown, { format, file }: { format?: string; file?: string } = {}): ImageError {
  if (e instanceof ImageError && (e.detail === undefined || format === undefined)) return e;
  const raw = e instanceof ImageError ? e.detail! : e instanceof Error ? e.message : String(e);
  const detail = firstLine(raw);
  const what = format?.toUpperCase() ?? "image";
  const says = (message: string) => new ImageError(message, detail);
  if (/pixel limit|too large/i.test(raw)) return says("image too large: it has more pixels than the limit allows");
  if (/premature end|truncat|read error|unexpected end|end of file/i.test(raw)) return says(`truncated ${what}: the file ends before the image does`);
  // Once the magic number named a format, content it does not decode is corrupt, not "not an image".
  if (format) return says(`corrupt ${what}: ${detail}`);
  if (/unsupported image format/i.test(raw)) return says("not an image: the file's content is not a supported image format (JPEG, PNG, WebP, GIF, TIFF, AVIF)");
  if (/no such file|Input file is missing/i.test(raw)) return says(`file not found: ${file ?? ""}`);
  return says(`unreadable image: ${detail}`);
}

function isRaw(x: unknown): x is RawImage {
  return typeof x === "object" && x !== null && "data" in x && "width" in x && "height" in x;
}

function open(input: ImageInput, pixelLimit = DEFAULT_PIXEL_LIMIT): Sharp {
  if (isRaw(input)) {
    const { width, height, channels, data } = input;
    if (![1, 3, 4].includes(channels) || data.length !== width * height * channels) {
      throw new ImageError(`raw image: expected ${width}x${height}x${channels} = ${width * height * channels} bytes, got ${data.length}`);
    }
    return sharp(Buffer.from(data.buffer, data.byteOffset, data.byteLength), { raw: { width, height, channels } });
  }
  if (typeof input === "string" || input instanceof Uint8Array || input instanceof ArrayBuffer) {
    const src = input instanceof ArrayBuffer ? Buffer.from(input) : typeof input === "string" ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
    if (typeof src !== "string" && src.length === 0) throw new ImageError("empty file: no image data");
    return sharp(src, { limitInputPixels: pixelLimit, failOn: "error", pages: 1 }); // pages: the first frame of an animation
  }
  throw new ImageError(`unsupported image input of type ${Object.prototype.toString.call(input)}`);
}

/**
 * The one decode chain: EXIF rotation, alpha flattened on white, sRGB, then `resize`, to 8-bit
 * RGB. Throws ImageError (imageError's wording).
 */
async function decode(input: ImageInput, resize: (p: Sharp) => Sharp, opts: { pixelLimit?: number; flip?: boolean }): Promise<RawImage & { channels: 3; data: Uint8Array }> {
  try {
    let p = open(input, opts.pixelLimit).rotate().flatten({ background: "#ffffff" }).toColourspace("srgb");
    if (opts.flip) p = p.flop();
    const { data, info } = await resize(p).removeAlpha().raw({ depth: "uchar" }).toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new ImageError(`expected 3 channels after conversion, got ${info.channels}`);
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height, channels: 3 };
  } catch (e) {
    throw imageError(e, { file: typeof input === "string" ? input : undefined });
  }
}

/** Decodes and squashes `input` to size x size RGB (the encoder's input). */
export async function toRgbSquare(input: ImageInput, size: number, opts: { pixelLimit?: number; flip?: boolean } = {}): Promise<Uint8Array> {
  return (await decode(input, (p) => p.resize(size, size, { fit: "fill", kernel: "lanczos3" }), opts)).data;
}

/** Decodes `input` upright to RGB, at most maxSide px on its longest side (never enlarged), keeping its aspect ratio. */
export async function toRgb(input: ImageInput, maxSide: number, opts: { pixelLimit?: number } = {}): Promise<RawImage & { channels: 3 }> {
  return decode(input, (p) => p.resize(maxSide, maxSide, { fit: "inside", withoutEnlargement: true }), opts);
}

/**
 * An encoded image's size as shown (after EXIF rotation), from its header alone: no pixel is
 * decoded and no pixel limit applies, so a caller can judge the size before decoding.
 */
export async function imageSize(bytes: Uint8Array, format?: string): Promise<{ width: number; height: number }> {
  let meta: Metadata;
  try {
    meta = await sharp(bytes, { pages: 1, limitInputPixels: false }).metadata();
  } catch (e) {
    throw imageError(e, { format });
  }
  const width = meta.autoOrient?.width ?? meta.width;
  const height = meta.autoOrient?.height ?? meta.pageHeight ?? meta.height;
  if (!width || !height) throw imageError(new Error("no image size in its header"), { format });
  return { width, height };
}
