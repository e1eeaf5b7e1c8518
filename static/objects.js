/**
 * Detected objects, drawn the same way by the page (boxes over the photo) and the server (the
 * result picture): one colour per object, in detection order, and one label format.
 *
 * Plain ES module with no dependencies; types in objects.d.ts.
 */

/** Box colours, picked to stand out on photos and to stay apart from each other. */
export const OBJECT_COLORS = Object.freeze(["#f97316", "#22d3ee", "#a3e635", "#f472b6", "#facc15", "#818cf8", "#34d399", "#fb7185"]);

/** The colour of the object at `index` (detection order, most confident first). */
export function objectColor(index) {
  return OBJECT_COLORS[((index % OBJECT_COLORS.length) + OBJECT_COLORS.length) % OBJECT_COLORS.length];
}

/** "giraffe 87%": the label and the detector's confidence, rounded to a whole percent. */
export function objectLabel(object) {
  return `${object.label} ${Math.round(Math.max(0, Math.min(1, object.score)) * 100)}%`;
}

/**
 * A box [x, y, w, h] (fractions of the image, top-left origin) clamped to the image, as
 * fractions again; null for a box with no area left.
 */
export function clampBox(box) {
  const x0 = Math.max(0, Math.min(1, box[0])), y0 = Math.max(0, Math.min(1, box[1]));
  const x1 = Math.max(0, Math.min(1, box[0] + box[2])), y1 = Math.max(0, Math.min(1, box[1] + box[3]));
  return x1 > x0 && y1 > y0 ? [x0, y0, x1 - x0, y1 - y0] : null;
}
