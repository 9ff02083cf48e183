// The workspace's notifications, live: a toast for each and the unread count in the header.
// The count is rendered by the server on every page; this only keeps it current while the page
// is open. Reconnects with backoff; stops when the server says the socket is not for this user.
(function () {
  var region = document.querySelector("[data-notifications]");
  if (!region || !window.WebSocket) return;
  var workspace = region.dataset.workspace;
  var delay = 1000;
  var FINAL = { 4401: true, 4404: true };

  function bump() {
    document.querySelectorAll("[data-unread-count]").forEach(function (badge) {
      var now = parseInt(badge.textContent, 10) || 0;
      badge.textContent = now >= 99 ? "99+" : String(now + 1);
      badge.hidden = false;
    });
  }

  function toast(note) {
    var item = document.createElement("div");
    item.className = "toast toast-" + (note.event === "alert.resolved" ? "ok" : "danger");
    item.setAttribute("role", "status");
    item.dataset.testid = "toast";
    var title = document.createElement("a");
    title.className = "toast-title";
    title.href = note.url;
    title.textContent = note.title;
    var body = document.createElement("p");
    body.textContent = note.body;
    var close = document.createElement("button");
    close.type = "button";
    close.className = "btn btn-small toast-close";
    close.setAttribute("aria-label", "Dismiss");
    close.textContent = "×";
    close.addEventListener("click", function () { item.remove(); });
    item.append(title, body, close);
    region.append(item);
    while (region.children.length > 4) region.firstElementChild.remove();
  }

  function connect() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(
      scheme + window.location.host + "/ws/workspaces/" + workspace + "/notifications/"
    );
    socket.onopen = function () {
      delay = 1000;
      region.dataset.live = "connected";
    };
    socket.onmessage = function (message) {
      var note = JSON.parse(message.data);
      if (note.type !== "notification") return;
      bump();
      toast(note);
      document.dispatchEvent(new CustomEvent("alerts:notification", { detail: note }));
    };
    socket.onclose = function (event) {
      region.dataset.live = "closed";
      if (FINAL[event.code]) return;
      window.setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    };
  }
  connect();
})();
