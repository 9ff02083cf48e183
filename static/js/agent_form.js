// Suggests the chosen provider's models (from its last connection test) in the model field.
(function () {
  var data = document.getElementById("provider-models");
  var select = document.getElementById("id_provider");
  var list = document.getElementById("model-suggestions");
  if (!data || !select || !list) return;
  var models = JSON.parse(data.textContent);
  function refresh() {
    list.replaceChildren();
    (models[select.value] || []).forEach(function (name) {
      var option = document.createElement("option");
      option.value = name;
      list.appendChild(option);
    });
  }
  select.addEventListener("change", refresh);
  refresh();
})();

// The model policy shows the fields of the kind chosen: rules, or the classifier's two models.
(function () {
  var kind = document.getElementById("id_policy_kind");
  if (!kind) return;
  function row(id) {
    var field = document.getElementById(id);
    return field ? field.closest(".field") : null;
  }
  var rules = [row("id_policy_rules")];
  var classifier = ["id_classifier_provider", "id_classifier_model", "id_complex_provider", "id_complex_model"].map(row);
  function refresh() {
    rules.forEach(function (el) { if (el) el.hidden = kind.value !== "rules"; });
    classifier.forEach(function (el) { if (el) el.hidden = kind.value !== "classifier"; });
  }
  kind.addEventListener("change", refresh);
  refresh();
})();
