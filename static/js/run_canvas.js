// The run page's graph: each node's state, kept current as the run's events arrive.
(function () {
  var builder = document.getElementById("run-builder");
  var timeline = document.getElementById("timeline");
  if (!builder) return;
  var script = builder.querySelector('script[data-builder="states"]');
  var states = script ? JSON.parse(script.textContent) : {};
  var pending = null;

  function show() { if (builder.setStatuses) builder.setStatuses(states); }

  function refresh() {
    if (pending) return;
    // Events come in bursts; one look at the nodes per burst is enough.
    pending = setTimeout(function () {
      pending = null;
      fetch(builder.dataset.nodesUrl, { credentials: "same-origin" })
        .then(function (response) { return response.json(); })
        .then(function (data) { states = data.states; show(); });
    }, 150);
  }

  if (builder.dataset.ready === "true") show();
  else builder.addEventListener("wf:ready", show);
  if (timeline) {
    timeline.addEventListener("run:event", refresh);
    timeline.addEventListener("run:status", refresh);
    // A step's first streamed tokens say it is running before any of its events are stored.
    var streaming = {};
    timeline.addEventListener("run:delta", function (event) {
      if (streaming[event.detail.step_key]) return;
      streaming[event.detail.step_key] = true;
      refresh();
    });
  }
})();
