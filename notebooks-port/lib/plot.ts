/** Minimal line charts rendered to PNG with sharp (SVG in, PNG out): no plotting dependency. */
import sharp from "sharp";

export interface Series {
  name: string;
  points: [number, number][];
  color: string;
}

export interface Panel {
  title: string;
  xLabel: string;
  series: Series[];
}

function panelSvg(p: Panel, x0: number, w: number, h: number): string {
  const pad = { l: 56, r: 16, t: 36, b: 40 };
  const all = p.series.flatMap((s) => s.points);
  if (!all.length) return "";
  const [xmin, xmax] = [Math.min(...all.map((q) => q[0])), Math.max(...all.map((q) => q[0]))];
  let [ymin, ymax] = [Math.min(...all.map((q) => q[1])), Math.max(...all.map((q) => q[1]))];
  if (ymax === ymin) (ymax += 1), (ymin -= 1);
  const sx = (x: number) => x0 + pad.l + ((x - xmin) / (xmax - xmin || 1)) * (w - pad.l - pad.r);
  const sy = (y: number) => pad.t + (1 - (y - ymin) / (ymax - ymin)) * (h - pad.t - pad.b);
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => ymin + f * (ymax - ymin));
  const grid = ticks.map((y) => `<line x1="${sx(xmin)}" x2="${sx(xmax)}" y1="${sy(y)}" y2="${sy(y)}" stroke="#ddd"/><text x="${x0 + pad.l - 6}" y="${sy(y) + 4}" font-size="11" text-anchor="end">${y.toPrecision(3)}</text>`).join("");
  const lines = p.series.map((s, i) => {
    const d = s.points.map((q, j) => `${j ? "L" : "M"}${sx(q[0]).toFixed(1)},${sy(q[1]).toFixed(1)}`).join("");
    const dots = s.points.length < 60 ? s.points.map((q) => `<circle cx="${sx(q[0])}" cy="${sy(q[1])}" r="2.5" fill="${s.color}"/>`).join("") : "";
    return `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="1.8"/>${dots}<text x="${x0 + w - pad.r}" y="${pad.t + 14 * i}" font-size="12" text-anchor="end" fill="${s.color}">${s.name}</text>`;
  }).join("");
  return `<text x="${x0 + w / 2}" y="20" font-size="14" font-weight="bold" text-anchor="middle">${p.title}</text>${grid}${lines}
    <text x="${x0 + w / 2}" y="${h - 8}" font-size="12" text-anchor="middle">${p.xLabel} (${+xmin.toFixed(2)}–${+xmax.toFixed(2)})</text>`;
}

/** Writes panels side by side as one PNG. */
export async function writeChart(file: string, panels: Panel[], panelWidth = 520, height = 360): Promise<void> {
  const w = panelWidth * panels.length;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${height}" font-family="sans-serif"><rect width="100%" height="100%" fill="white"/>${panels.map((p, i) => panelSvg(p, i * panelWidth, panelWidth, height)).join("")}</svg>`;
  await sharp(Buffer.from(svg)).png().toFile(file);
}
