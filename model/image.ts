/**
 * Turning whatever a caller has (encoded bytes, a path, raw pixels) into the square RGB
 * array the encoder wants. Flickr8k's training images were squashed to a square without
 * keeping the aspect ratio, so user photos are squashed the same way: what the model saw
 * in training is what it sees now.
 */
import sharp, { type Sharp } from "sharp";

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
}

/** Decompression-bomb guard: sharp refuses images with more pixels than this. */
export const DEFAULT_PIXEL_LIMIT = 40_000_000;

function isRaw(x: unknown): x is RawImage {
  return typeof x === "object" && x !== null && "data" in x && "width" in x && "height" in x;
}

/** Decodes and squashes `input` to size x size RGB, applying EXIF rotation and flattening alpha on white. */
export async function toRgbSquare(
  input: ImageInput,
  size: number,
  opts: { pixelLimit?: number; flip?: boolean } = {},
): Promise<Uint8Array> {
  let img: Sharp;
  if (isRaw(input)) {
    const { width, height, channels, data } = input;
    if (![1, 3, 4].includes(channels) || data.length !== width * height * channels) {
      throw new ImageError(`raw image: expected ${width}x${height}x${channels} = ${width * height * channels} bytes, got ${data.length}`);
    }
    img = sharp(Buffer.from(data.buffer, data.byteOffset, data.byteLength), { raw: { width, height, channels } });
  } else if (typeof input === "string" || input instanceof Uint8Array || input instanceof ArrayBuffer) {
    const src = input instanceof ArrayBuffer ? Buffer.from(input) : typeof input === "string" ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
    if (typeof src !== "string" && src.length === 0) throw new ImageError("empty file: no image data");
    img = sharp(src, { limitInputPixels: opts.pixelLimit ?? DEFAULT_PIXEL_LIMIT, failOn: "error", pages: 1 });
  } else {
    throw new ImageError(`unsupported image input of type ${Object.prototype.toString.call(input)}`);
  }
  try {
    let p = img.rotate().flatten({ background: "#ffffff" }).toColourspace("srgb");
    if (opts.flip) p = p.flop();
    const { data, info } = await p
      .resize(size, size, { fit: "fill", kernel: "lanczos3" })
      .removeAlpha()
      .raw({ depth: "uchar" })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new ImageError(`expected 3 channels after conversion, got ${info.channels}`);
    return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  } catch (e) {
    if (e instanceof ImageError) throw e;
    const msg = (e as Error).message ?? String(e);
    if (/pixel limit/i.test(msg)) throw new ImageError("image too large: it has more pixels than the limit allows");
    if (/unsupported image format|Input buffer contains unsupported/i.test(msg)) throw new ImageError("not an image: the file's content is not a supported image format (JPEG, PNG, WebP, GIF, TIFF, AVIF)");
    if (/no such file|Input file is missing/i.test(msg)) throw new ImageError(`file not found: ${typeof input === "string" ? input : ""}`);
    throw new ImageError(`unreadable image: ${msg.split("\n")[0]}`);
  }
}
