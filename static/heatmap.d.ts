/** Types for heatmap.js (shared by the page and server/picture.ts). */
export type ColormapName = "inferno" | "viridis" | "magma";
export declare const COLORMAPS: Readonly<Record<ColormapName, readonly string[]>>;
export declare function colormapLut(name?: ColormapName): Uint8Array;
export declare function upsampleGrid(alpha: ArrayLike<number>, h: number, w: number, outW: number, outH: number): Float32Array;
export declare function heatAlpha(v: number, opacity: number): number;
export interface HeatmapStyle {
  colormap?: ColormapName;
  opacity?: number;
}
export declare function paintRgba<T extends { length: number; [i: number]: number }>(values: Float32Array, rgba: T, style?: HeatmapStyle): T;
export declare function blendRgb(rgb: ArrayLike<number>, values: Float32Array, style?: HeatmapStyle): Uint8Array;
