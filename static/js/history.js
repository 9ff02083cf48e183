// The run history: select-all for bulk actions, a count of what is selected, and live statuses
// (the results region is fetched again every few seconds while a run on it is live, unless
// the reader is selecting rows).
(function () {
  "use strict";
  var REFRESH_MS = 5000;

  function results() { return document.getElementById("history-results"); }

  function selected(region) {
    return region ? region.querySelectorAll('input[name="run"]:checked').length : 0;
  }

  function showCount(region) {
    var label = region && region.querySelector("[data-bulk-count]");
    if (!label) return;
    var n = selected(region);
    label.textContent = n ? n + " selected" : "Tick runs to act on several at once.";
  }

  document.addEventListener("change", function (event) {
    var region = results();
    if (!region || !region.contains(event.target)) return;
    if (event.target.matches("[data-select-all]")) {
      region.querySelectorAll('input[name="run"]').forEach(function (box) {
        box.checked = event.target.checked;
      });
    }
    showCount(region);
  });

  setInterval(function () {
    var region = results();
    if (!region || !window.htmx || document.hidden) return;
    var url = region.getAttribute("data-live-url");
    if (!url || selected(region)) return;
    window.htmx.ajax("GET", url, { target: "#history-results", swap: "outerHTML" });
  }, REFRESH_MS);
})();
