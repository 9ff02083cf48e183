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
