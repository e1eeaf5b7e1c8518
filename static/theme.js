// Sets the light/dark theme before first paint (a classic script, so it runs before the page
// renders; the module app.js runs later and wires the toggle). The dark palette lives in one CSS
// rule, :root[data-theme="dark"]: a saved choice wins, otherwise the system preference applies
// and is followed when it changes.
(() => {
  const root = document.documentElement;
  const system = matchMedia("(prefers-color-scheme: dark)");
  let saved = null;
  try {
    saved = localStorage.getItem("studio-theme");
  } catch {
    // Storage may be blocked; the system preference still applies.
  }
  if (saved === "light" || saved === "dark") {
    root.dataset.theme = saved;
    return;
  }
  const follow = () => {
    // Once the toggle has stored a choice, the system no longer decides.
    try {
      const s = localStorage.getItem("studio-theme");
      if (s === "light" || s === "dark") return;
    } catch {}
    root.dataset.theme = system.matches ? "dark" : "light";
  };
  follow();
  system.addEventListener("change", follow);
})();
