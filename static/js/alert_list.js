// The alert history follows the notifications: a new or resolved alert refreshes the list (which
// also marks it read, so the header's count goes back to what the server says).
(function () {
  var list = document.getElementById("alert-incidents");
  if (!list || !window.htmx) return;
  document.addEventListener("alerts:notification", function () {
    window.htmx.ajax("GET", window.location.href, { target: list, swap: "innerHTML" }).then(function () {
      document.querySelectorAll("[data-unread-count]").forEach(function (badge) {
        badge.textContent = "0";
        badge.hidden = true;
      });
    });
  });
})();
