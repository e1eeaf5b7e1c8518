/** A progress line with rate and ETA on stderr: every long job uses it. */
export class Progress {
  private readonly start = performance.now();
  private last = 0;
  done = 0;

  constructor(private readonly label: string, private readonly total: number, private readonly unit = "items") {}

  tick(n = 1, extra = ""): void {
    this.done += n;
    const now = performance.now();
    if (now - this.last < 250 && this.done < this.total) return;
    this.last = now;
    const s = (now - this.start) / 1000;
    const rate = this.done / Math.max(s, 1e-9);
    const eta = rate > 0 ? (this.total - this.done) / rate : 0;
    const pct = this.total ? ((100 * this.done) / this.total).toFixed(1) : "?";
    const line = `${this.label} ${this.done}/${this.total} (${pct}%) ${rate.toFixed(1)} ${this.unit}/s ETA ${fmt(eta)} ${extra}`;
    if (process.stderr.isTTY) process.stderr.write(`\r${line.padEnd(100)}`);
    else if (this.done >= this.total || now - this.lastLogged > 10_000) {
      this.lastLogged = now;
      process.stderr.write(line + "\n");
    }
  }
  private lastLogged = 0;

  end(extra = ""): void {
    const s = (performance.now() - this.start) / 1000;
    process.stderr.write(`${process.stderr.isTTY ? "\r" : ""}${this.label} ${this.done}/${this.total} done in ${fmt(s)} ${extra}`.padEnd(100) + "\n");
  }
}

export function fmt(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return h ? `${h}h${String(m).padStart(2, "0")}m` : m ? `${m}m${String(r).padStart(2, "0")}s` : `${r}s`;
}
