// Applies a saved light/dark choice before first paint (a classic script, so it runs before the
// page renders; the module app.js runs later and wires the toggle).
try {
  const t = localStorage.getItem("studio-theme");
  if (t === "light" || t === "dark") document.documentElement.dataset.theme = t;
} catch {
  // Storage may be blocked; the system preference still applies.
}
