/** Types for objects.js (shared by the page and server/picture.ts). */
export declare const OBJECT_COLORS: readonly string[];
export declare function objectColor(index: number): string;
export declare function objectLabel(object: { label: string; score: number }): string;
export declare function clampBox(box: readonly [number, number, number, number] | readonly number[]): [number, number, number, number] | null;
