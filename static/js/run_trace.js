// The trace page: the selected span stays marked, and the waterfall is walked with the keyboard.
// The waterfall refreshes itself (htmx, every 2 s) while the run goes on; this keeps the mark
// and the keyboard focus where they were across each refresh.
(function () {
  "use strict";

  function selected() {
    var inspector = document.getElementById("trace-inspector");
    return inspector ? inspector.getAttribute("data-span") : null;
  }

  function mark(spanId) {
    document.querySelectorAll(".span-row").forEach(function (row) {
      if (row.getAttribute("data-span") === spanId) {
        row.setAttribute("aria-current", "true");
      } else {
        row.removeAttribute("aria-current");
      }
    });
  }

  function links() {
    return Array.prototype.slice.call(document.querySelectorAll(".waterfall .span-link"));
  }

  document.addEventListener("click", function (event) {
    var link = event.target.closest ? event.target.closest(".span-link") : null;
    if (link) mark(link.getAttribute("data-span"));
  });

  document.addEventListener("keydown", function (event) {
    var link = event.target.closest ? event.target.closest(".span-link") : null;
    if (!link) return;
    var all = links();
    var index = all.indexOf(link);
    var next = null;
    if (event.key === "ArrowDown") next = all[index + 1];
    else if (event.key === "ArrowUp") next = all[index - 1];
    else if (event.key === "Home") next = all[0];
    else if (event.key === "End") next = all[all.length - 1];
    else return;
    event.preventDefault();
    if (next) next.focus();
  });

  // The live refresh asks for the span selected now (its address changes as spans are picked),
  // so a span still going is refreshed in the inspector too.
  document.addEventListener("htmx:configRequest", function (event) {
    if (event.detail.elt && event.detail.elt.id === "trace-live") {
      event.detail.path = window.location.pathname + window.location.search;
    }
  });

  var focused = null;
  document.addEventListener("htmx:beforeSwap", function (event) {
    if (!event.detail.target || event.detail.target.id !== "trace-live") return;
    var active = document.activeElement;
    focused = active && active.classList && active.classList.contains("span-link")
      ? active.getAttribute("data-span") : null;
  });

  // Where the inspector sits below the waterfall (narrow screens), a span picked brings it into
  // view; beside it, nothing moves.
  document.addEventListener("htmx:afterSwap", function (event) {
    var inspector = document.getElementById("trace-inspector");
    if (inspector && event.detail.target && event.detail.target.id === "trace-inspector" &&
        window.matchMedia("(max-width: 1100px)").matches) {
      inspector.scrollIntoView({ block: "start" });
    }
  });

  document.addEventListener("htmx:afterSettle", function () {
    mark(selected());
    if (focused) {
      var again = links().filter(function (l) { return l.getAttribute("data-span") === focused; })[0];
      if (again) again.focus({ preventScroll: true });
      focused = null;
    }
  });
})();
