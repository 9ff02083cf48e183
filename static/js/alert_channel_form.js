// New alert channel: show the field of the chosen kind only (without JavaScript, both show).
(function () {
  function update() {
    var chosen = document.querySelector('input[name="kind"]:checked');
    document.querySelectorAll("[data-channel-kind]").forEach(function (part) {
      part.hidden = chosen !== null && part.dataset.channelKind !== chosen.value;
    });
  }
  document.addEventListener("change", function (event) {
    if (event.target.name === "kind") update();
  });
  document.addEventListener("DOMContentLoaded", update);
})();
