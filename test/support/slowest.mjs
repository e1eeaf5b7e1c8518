/**
 * A node:test reporter that prints the suite's slowest tests at the end (after the spec
 * reporter's own output), so a test that gets slower shows up in every run. Plain JavaScript:
 * the test runner loads reporters before any TypeScript loader.
 *   node --test --test-reporter=spec --test-reporter-destination=stdout \
 *        --test-reporter=./test/support/slowest.mjs --test-reporter-destination=stdout ...
 */
const SHOW = 10;

/** @param {AsyncIterable<{ type: string, data: { name: string, file?: string, details?: { duration_ms?: number, type?: string } } }>} source */
export default async function* slowest(source) {
  const times = [];
  const started = Date.now();
  for await (const event of source) {
    if (event.type !== "test:pass" && event.type !== "test:fail") continue;
    const { name, file, details } = event.data;
    if (details?.type === "suite" || details?.duration_ms === undefined) continue;
    times.push({ name, file: (file ?? "").replace(/^.*\/test\//, "test/"), ms: details.duration_ms });
  }
  times.sort((a, b) => b.ms - a.ms);
  yield `\nslowest ${Math.min(SHOW, times.length)} of ${times.length} tests (whole run ${((Date.now() - started) / 1000).toFixed(0)} s):\n`;
  for (const t of times.slice(0, SHOW)) yield `  ${(t.ms / 1000).toFixed(1).padStart(6)} s  ${t.file}  ${t.name}\n`;
}
