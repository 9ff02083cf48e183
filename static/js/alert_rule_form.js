// Alert rule form: explain the chosen measure and its unit only (without JavaScript, all show).
(function () {
  function update() {
    var select = document.querySelector('select[name="kind"]');
    if (!select) return;
    document.querySelectorAll("[data-kind-help]").forEach(function (part) {
      part.hidden = part.dataset.kindHelp !== select.value;
    });
  }
  document.addEventListener("change", function (event) {
    if (event.target.name === "kind") update();
  });
  document.addEventListener("DOMContentLoaded", update);
})();
