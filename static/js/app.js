// Page-wide behaviour: theme toggle, mobile navigation, closing menus. Everything else is htmx.
(function () {
  function currentTheme() {
    var set = document.documentElement.dataset.theme;
    if (set) return set;
    return window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }

  document.addEventListener("click", function (event) {
    var toggle = event.target.closest("[data-theme-toggle]");
    if (toggle) {
      var next = currentTheme() === "dark" ? "light" : "dark";
      document.documentElement.dataset.theme = next;
      try { localStorage.setItem("a2a-theme", next); } catch (e) { /* storage may be blocked */ }
      toggle.setAttribute("aria-pressed", String(next === "dark"));
      return;
    }
    var navButton = event.target.closest("[data-nav-toggle]");
    if (navButton) {
      var shell = document.querySelector(".shell");
      var open = shell.classList.toggle("nav-open");
      navButton.setAttribute("aria-expanded", String(open));
      return;
    }
    // A click beside the open mobile navigation closes it.
    var openShell = document.querySelector(".shell.nav-open");
    if (openShell && !event.target.closest(".sidebar")) {
      openShell.classList.remove("nav-open");
      var toggleButton = document.querySelector("[data-nav-toggle]");
      if (toggleButton) toggleButton.setAttribute("aria-expanded", "false");
    }
    // A click outside an open menu closes it.
    document.querySelectorAll("details.menu[open]").forEach(function (menu) {
      if (!menu.contains(event.target)) menu.removeAttribute("open");
    });
  });

  // Forms that destroy something ask first; without JavaScript they simply submit.
  document.addEventListener("submit", function (event) {
    var form = event.target.closest("form[data-confirm]");
    if (form && !window.confirm(form.dataset.confirm)) event.preventDefault();
  });

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    document.querySelectorAll("details.menu[open]").forEach(function (menu) {
      menu.removeAttribute("open");
      var summary = menu.querySelector("summary");
      if (summary) summary.focus();
    });
    var shell = document.querySelector(".shell.nav-open");
    if (shell) shell.classList.remove("nav-open");
  });
})();
