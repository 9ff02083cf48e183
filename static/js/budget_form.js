// Budget form: show only the target field (workflow, agent, person, provider) that the chosen
// scope needs. Without JavaScript every field shows and the server uses the one that applies.
(function () {
  "use strict";
  const form = document.querySelector("[data-budget-form]");
  if (!form) return;
  const scope = form.querySelector("select[data-scope]");
  function sync() {
    form.querySelectorAll("[data-scope-target]").forEach(function (wrapper) {
      wrapper.hidden = wrapper.dataset.scopeTarget !== scope.value;
    });
  }
  scope.addEventListener("change", sync);
  sync();
})();
