/**
 * The server's one image edge. Uploads are judged by their bytes, never by file name or
 * declared type: the magic number must be an image format we accept, the structure must be
 * cheap to decode (JPEG scans, TIFF pages), and the header's size must be under the pixel limit
 * before any pixel is decoded (decompression bombs). Those checks are here; decoding, and the
 * wording of what goes wrong in it, is the model's (model/image.ts, through model/index.ts), so
 * uploads are decoded exactly as the model decodes them.
 *
 * The model gets the checked bytes (decoding once there keeps the first word fast); the result
 * picture decodes them here, after the caption. Everything stays in memory; nothing touches the disk.
 */
import { imageError, imageSize, toRgb, type RawImage } from "../model/index.ts";
import { ErrorCode } from "./events.ts";
import { StudioError } from "./errors.ts";

export type ImageFormat = "jpeg" | "png" | "gif" | "webp" | "tiff" | "avif" | "heif";

/** Longest side kept after decoding by default: ample for the result picture's tiles. */
export const MAX_SIDE = 512;

export interface DecodedImage {
  /** 8-bit RGB, upright, at most MAX_SIDE on its longest side. */
  raw: RawImage & { channels: 3 };
  format: ImageFormat;
  /** Size of the upload as displayed (after EXIF rotation). */
  width: number;
  height: number;
}

const ascii = (b: Uint8Array, at: number, s: string) => s.split("").every((c, i) => b[at + i] === c.charCodeAt(0));

/** The format that the first bytes announce, or null. */
export function sniffImageType(b: Uint8Array): ImageFormat | null {
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return "jpeg";
  if (b.length >= 8 && b[0] === 0x89 && ascii(b, 1, "PNG\r\n\x1a\n")) return "png";
  if (ascii(b, 0, "GIF87a") || ascii(b, 0, "GIF89a")) return "gif";
  if (ascii(b, 0, "RIFF") && ascii(b, 8, "WEBP")) return "webp";
  if ((ascii(b, 0, "II") && b[2] === 42 && b[3] === 0) || (ascii(b, 0, "MM") && b[2] === 0 && b[3] === 42)) return "tiff";
  if (ascii(b, 4, "ftyp")) {
    const brand = String.fromCharCode(...b.subarray(8, 12));
    if (brand === "avif" || brand === "avis") return "avif";
    if (/^(heic|heix|hevc|hevx|mif1|msf1)$/.test(brand)) return "heif";
  }
  return null;
}

const bad = (message: string) => new StudioError(ErrorCode.BadImage, message);

/**
 * A JPEG decodes in time proportional to its pixels times its scans: ordinary progressive files
 * have about 10, but one of 6000x6000 with 2,000 tiny scans took 36 s to decode, unstoppable
 * once started. More than this many scans are refused before any decoding.
 */
export const MAX_JPEG_SCANS = 64;
/** sharp's header read walks every page of a TIFF (a 50,000-page one took 1 s); we caption the first. */
export const MAX_TIFF_PAGES = 100;

/** A JPEG's scans (SOS markers), counted by walking its markers and skipping entropy-coded data; stops past `cap`. */
export function jpegScans(b: Uint8Array, cap = MAX_JPEG_SCANS): number {
  let scans = 0;
  for (let i = 2; i + 3 < b.length; ) {
    if (b[i] !== 0xff) { i++; continue; } // junk between segments: resync on the next marker
    const m = b[i + 1];
    if (m === 0xff) { i++; continue; } // fill byte
    if (m === 0xd9) break; // end of image
    if ((m >= 0xd0 && m <= 0xd7) || m === 0x01 || m === 0xd8) { i += 2; continue; } // markers without a length
    i += 2 + ((b[i + 2] << 8) | b[i + 3]);
    if (m !== 0xda) continue;
    if (++scans > cap) break;
    // Entropy-coded data runs to the next marker that is neither a stuffed 0xff00 nor a restart.
    while (i + 1 < b.length && !(b[i] === 0xff && b[i + 1] !== 0 && !(b[i + 1] >= 0xd0 && b[i + 1] <= 0xd7))) i++;
  }
  return scans;
}

/** A TIFF's pages (its chain of image file directories, loops cut); stops past `cap`. */
export function tiffPages(b: Uint8Array, cap = MAX_TIFF_PAGES): number {
  if (b.length < 8) return 0;
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const le = b[0] === 0x49;
  const seen = new Set<number>();
  let pages = 0;
  for (let at = view.getUint32(4, le); at !== 0 && at + 2 <= b.length && !seen.has(at); ) {
    seen.add(at);
    if (++pages > cap) break;
    const next = at + 2 + 12 * view.getUint16(at, le);
    if (next + 4 > b.length) break;
    at = view.getUint32(next, le);
  }
  return pages;
}

/** Refuses files whose decoding cost is not bounded by their pixel count, from a cheap walk of their bytes. */
function checkStructure(bytes: Uint8Array, format: ImageFormat): void {
  if (format === "jpeg") {
    const scans = jpegScans(bytes);
    if (scans > MAX_JPEG_SCANS) throw bad(`JPEG with more than ${MAX_JPEG_SCANS} scans: too costly to decode (ordinary progressive JPEGs have about 10); save it again as a normal JPEG`);
  } else if (format === "tiff") {
    const pages = tiffPages(bytes);
    if (pages > MAX_TIFF_PAGES) throw bad(`TIFF with more than ${MAX_TIFF_PAGES} pages: too costly to read; send the photo on its own`);
  }
}

export interface DecodeLimits {
  pixelLimit: number;
}

/** Checks type and size from the header only; cheap, so requests can be refused before they queue. Throws StudioError or ImageError (both bad_image). */
export async function inspectUpload(bytes: Uint8Array, { pixelLimit }: DecodeLimits): Promise<{ format: ImageFormat; width: number; height: number }> {
  if (bytes.length === 0) throw bad("empty file: no image data was sent");
  const format = sniffImageType(bytes);
  if (!format) throw bad("not an image: the content is not JPEG, PNG, WebP, GIF, TIFF or AVIF");
  checkStructure(bytes, format);
  const { width, height } = await imageSize(bytes, format);
  if (width * height > pixelLimit) {
    throw bad(`image too large: ${width}x${height} is ${(width * height / 1e6).toFixed(1)} megapixels; the limit is ${(pixelLimit / 1e6).toFixed(1)}`);
  }
  return { format, width, height };
}

/** Full decode to upright 8-bit RGB, at most maxSide px. Throws a bad_image error (StudioError or ImageError) with a message safe for users. */
export async function decodeUpload(bytes: Uint8Array, limits: DecodeLimits, maxSide = MAX_SIDE): Promise<DecodedImage> {
  const { format, width, height } = await inspectUpload(bytes, limits);
  try {
    return { raw: await toRgb(bytes, maxSide, limits), format, width, height };
  } catch (e) {
    throw imageError(e, { format });
  }
}
