// Applies the saved theme before the first paint, so a dark page never flashes light.
(function () {
  var saved = null;
  try { saved = localStorage.getItem("a2a-theme"); } catch (e) { /* storage may be blocked */ }
  if (saved === "light" || saved === "dark") document.documentElement.dataset.theme = saved;
})();
