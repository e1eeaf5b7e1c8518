/**
 * Named float arrays on disk: `<name>.json` (names, shapes, dtype, offsets) + `<name>.bin`.
 * Shipped weights are float16 (half the size, same captions: see the model card); training
 * checkpoints are float32 so resuming is exact.
 */
import { readFileSync, writeFileSync, renameSync } from "node:fs";

export interface NamedArray {
  shape: number[];
  data: Float32Array;
}

interface Manifest {
  dtype: "float32" | "float16";
  tensors: { name: string; shape: number[]; offset: number; length: number }[];
}

// IEEE 754 half <-> single, via a shared buffer (round to nearest even).
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

export function toHalf(x: number): number {
  f32[0] = x;
  const b = u32[0];
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // inf / nan
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow -> inf
  if (e <= 0) {
    if (e < -10) return sign; // underflow -> 0
    mant |= 0x800000; // subnormal half
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1), half = 1 << (shift - 1);
    if (rem > half || (rem === half && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++;
  return sign | h;
}

export function fromHalf(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

export function saveArrays(basePath: string, arrays: Record<string, NamedArray>, dtype: Manifest["dtype"] = "float32"): void {
  const manifest: Manifest = { dtype, tensors: [] };
  let total = 0;
  for (const [name, a] of Object.entries(arrays)) {
    manifest.tensors.push({ name, shape: a.shape, offset: total, length: a.data.length });
    total += a.data.length;
  }
  const bin = dtype === "float16" ? new Uint16Array(total) : new Float32Array(total);
  for (const t of manifest.tensors) {
    const src = arrays[t.name].data;
    if (dtype === "float16") for (let i = 0; i < src.length; i++) bin[t.offset + i] = toHalf(src[i]);
    else bin.set(src, t.offset);
  }
  // Write then rename: a run killed mid-save leaves the previous file intact.
  writeFileSync(basePath + ".bin.tmp", new Uint8Array(bin.buffer));
  writeFileSync(basePath + ".json.tmp", JSON.stringify(manifest));
  renameSync(basePath + ".bin.tmp", basePath + ".bin");
  renameSync(basePath + ".json.tmp", basePath + ".json");
}

export function loadArrays(basePath: string): Record<string, NamedArray> {
  const manifest = JSON.parse(readFileSync(basePath + ".json", "utf8")) as Manifest;
  const buf = readFileSync(basePath + ".bin");
  const out: Record<string, NamedArray> = {};
  const half = manifest.dtype === "float16";
  const all = half
    ? new Uint16Array(buf.buffer, buf.byteOffset, buf.byteLength / 2)
    : new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
  // A 64k lookup table makes decoding ~5M halves take milliseconds.
  const table = half ? Float32Array.from({ length: 65536 }, (_, h) => fromHalf(h)) : undefined;
  for (const t of manifest.tensors) {
    let data: Float32Array;
    if (table) {
      data = new Float32Array(t.length);
      const src = all as Uint16Array;
      for (let i = 0; i < t.length; i++) data[i] = table[src[t.offset + i]];
    } else data = (all as Float32Array).subarray(t.offset, t.offset + t.length);
    out[t.name] = { shape: t.shape, data };
  }
  return out;
}
