// The version diff: the overlaid graph drawn read-only, each node and edge marked by the server.
(function () {
  var builder = document.getElementById("diff-builder");
  if (!builder) return;
  var script = builder.querySelector('script[data-builder="marks"]');
  var marks = script ? JSON.parse(script.textContent) : { nodes: {}, edges: {} };
  function apply() { if (builder.setMarks) builder.setMarks(marks); }
  if (builder.dataset.ready === "true") apply();
  else builder.addEventListener("wf:ready", apply);
})();
