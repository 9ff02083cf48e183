// The builder page around the canvas island: autosave and validation, the property panel, the
// checklist, import, templates, versions, publishing and test runs. The island owns the graph;
// this script only moves it between the island and the server's endpoints.
(function () {
  var page = document.getElementById("builder-page");
  var builder = document.getElementById("builder");
  if (!page || !builder) return;
  var canEdit = page.dataset.canEdit === "true";
  var draftForm = document.getElementById("draft-form");
  var saveStatus = document.getElementById("save-status");
  var nodePanel = document.getElementById("node-panel");
  var runPanel = document.getElementById("run-panel");
  var dirty = false;
  var saveTimer = null;
  var selectedId = null;
  var live = null;

  function csrfToken() {
    try {
      return JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRFToken"];
    } catch (e) {
      return "";
    }
  }

  function setSaveStatus(state, text) {
    if (!saveStatus) return;
    saveStatus.dataset.state = state;
    saveStatus.textContent = text;
  }

  function clock() {
    return new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }

  // --- Autosave and validation ---------------------------------------------------------------

  function saveSoon() {
    if (!canEdit || !draftForm) return;
    dirty = true;
    setSaveStatus("dirty", "Unsaved changes…");
    clearTimeout(saveTimer);
    saveTimer = setTimeout(saveNow, 600);
  }

  function saveNow() {
    clearTimeout(saveTimer);
    saveTimer = null;
    if (!dirty) return;
    dirty = false;
    setSaveStatus("saving", "Saving…");
    window.htmx.trigger(draftForm, "wf:autosave");
  }

  // Until the server has it, the tab keeps its own copy of the latest change: a reload races the
  // request that carries it, and the copy wins that race (see restorePending below).
  var pendingKey = "a2a-builder-pending:" + window.location.pathname;

  function keepPending(graph) {
    try {
      sessionStorage.setItem(pendingKey, JSON.stringify({ graph: graph, base: document.getElementById("draft-base").value }));
    } catch (e) { /* storage may be full or blocked; the autosave still runs */ }
  }

  function dropPending() {
    try { sessionStorage.removeItem(pendingKey); } catch (e) { /* as above */ }
  }

  function restorePending() {
    var stored = null;
    try { stored = JSON.parse(sessionStorage.getItem(pendingKey) || "null"); } catch (e) { stored = null; }
    if (!stored || !stored.graph || !canEdit) return;
    var current = builder.getGraph();
    var base = document.getElementById("draft-base").value;
    // Saved after all (the request won the race), or the draft moved on since: the server wins.
    if (JSON.stringify(current) === JSON.stringify(stored.graph) || stored.base !== base) {
      dropPending();
      return;
    }
    builder.setGraph(stored.graph, { record: true });
    showReport("ok", ["Your last changes had not reached the server before the page reloaded; they are back and being saved. Undo (Ctrl+Z) drops them."]);
  }

  builder.addEventListener("wf:change", function (event) {
    if (canEdit && event.detail && event.detail.graph) keepPending(event.detail.graph);
    saveSoon();
    renderInterfaceSummary();
    renderSettingsSummary();
    refreshPanelIfStale();
  });

  document.body.addEventListener("wf:saved", function (event) {
    document.getElementById("draft-base").value = event.detail.token;
    document.getElementById("draft-force").value = "";
    document.getElementById("conflict-banner").hidden = true;
    if (!dirty && !saveTimer) {
      dropPending();
      setSaveStatus("saved", "Draft saved at " + clock());
    }
  });

  document.body.addEventListener("wf:issues", function (event) {
    if (builder.setIssues) builder.setIssues(event.detail.by_node || {}, event.detail.by_edge || {});
  });

  document.body.addEventListener("wf:conflict", function () {
    setSaveStatus("error", "Not saved");
    document.getElementById("conflict-banner").hidden = false;
  });

  var overwrite = document.getElementById("overwrite-draft");
  if (overwrite) {
    overwrite.addEventListener("click", function () {
      document.getElementById("draft-force").value = "1";
      dirty = true;
      saveNow();
    });
  }

  if (draftForm) {
    draftForm.addEventListener("htmx:responseError", function (event) {
      if (event.detail.xhr.status === 409) return;
      dirty = true;
      setSaveStatus("error", "Not saved: the server did not answer. Retrying…");
      saveTimer = setTimeout(saveNow, 3000);
    });
    // Refused (400, 413): the reason is shown in the checklist; sending it again would not help.
    draftForm.addEventListener("htmx:afterRequest", function (event) {
      var status = event.detail.xhr.status;
      if (status !== 400 && status !== 413) return;
      var text = new DOMParser().parseFromString(event.detail.xhr.responseText, "text/html").body.textContent;
      setSaveStatus("error", "Not saved: " + text.trim());
    });
    draftForm.addEventListener("htmx:sendError", function () {
      dirty = true;
      setSaveStatus("error", "Not saved: offline? Retrying…");
      saveTimer = setTimeout(saveNow, 3000);
    });
  }

  // Leaving with a change not yet sent: send it anyway, so a reload finds the draft intact.
  function flush() {
    if (!dirty || !draftForm) return;
    var data = new FormData(draftForm);
    data.append("csrfmiddlewaretoken", csrfToken());
    navigator.sendBeacon(page.dataset.draftUrl, data);
    dirty = false;
  }
  window.addEventListener("pagehide", flush);
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden") flush();
  });

  // --- The property panel --------------------------------------------------------------------

  var placeholder = nodePanel.innerHTML;

  // Selections can follow each other faster than forms load: only the latest one is shown.
  var formRequest = 0;

  function loadNodeForm(node) {
    var ticket = ++formRequest;
    var body = new FormData();
    body.append("node", JSON.stringify(node));
    fetch(page.dataset.nodeFormUrl, {
      method: "POST",
      body: body,
      headers: { "X-CSRFToken": csrfToken(), "HX-Request": "true" },
      credentials: "same-origin",
    })
      .then(function (response) { return response.text(); })
      .then(function (html) {
        if (ticket !== formRequest) return;
        nodePanel.innerHTML = html;
        window.htmx.process(nodePanel);
      });
  }

  builder.addEventListener("wf:select", function (event) {
    var node = event.detail && event.detail.node;
    if (!node) {
      formRequest++;
      selectedId = null;
      nodePanel.innerHTML = placeholder;
      return;
    }
    selectedId = node.id;
    loadNodeForm(node);
  });

  function currentNode(id) {
    var graph = builder.getGraph ? builder.getGraph() : null;
    if (!graph) return null;
    for (var i = 0; i < graph.nodes.length; i++) if (graph.nodes[i].id === id) return graph.nodes[i];
    return null;
  }

  // Undo, redo or a restore can change the selected node under an open form: reload it, unless
  // someone is typing in it (their own edits are what changed it).
  function refreshPanelIfStale() {
    if (!selectedId) return;
    var form = nodePanel.querySelector("form.node-form");
    if (!form || form.contains(document.activeElement)) return;
    var node = currentNode(selectedId);
    if (!node) {
      selectedId = null;
      nodePanel.innerHTML = placeholder;
      return;
    }
    var shown = form.querySelector("[data-node-json]");
    var before = shown ? JSON.parse(shown.value) : null;
    if (!before || JSON.stringify(before.config || {}) !== JSON.stringify(node.config || {}) || before.label !== node.label) {
      loadNodeForm(node);
    }
  }

  // An applied form updates the canvas through the island's own `wf:node-updated` listener; the
  // form keeps what it shows, so typing is never interrupted by a swap.
  nodePanel.addEventListener("htmx:beforeSwap", function (event) {
    var form = event.detail.requestConfig && event.detail.requestConfig.elt;
    // The answer to a form of a node no longer selected must not replace the current node's form
    // (its change still reaches the canvas through `wf:node-updated`).
    if (form && form.dataset && form.dataset.nodeId && form.dataset.nodeId !== selectedId) {
      event.detail.shouldSwap = false;
      return;
    }
    if (event.detail.xhr.status === 200 && form && form.matches && form.matches("form.node-form") && form.contains(document.activeElement)) {
      event.detail.shouldSwap = false;
      // Regions that show what the server found for the values typed (a remote agent's card and
      // its skills) are refreshed all the same, unless they hold the focus.
      var fresh = new DOMParser().parseFromString(event.detail.serverResponse, "text/html");
      form.querySelectorAll("[data-refresh][id]").forEach(function (old) {
        var next = fresh.getElementById(old.id);
        if (next && !old.contains(document.activeElement)) old.replaceWith(document.importNode(next, true));
      });
      var status = form.querySelector(".node-form-status");
      if (status) status.textContent = "Applied to the canvas.";
      form.querySelectorAll(".errorlist").forEach(function (list) { list.remove(); });
    }
  });

  document.body.addEventListener("wf:node-updated", function (event) {
    var form = nodePanel.querySelector("form.node-form");
    var shown = form && form.querySelector("[data-node-json]");
    if (!shown || form.dataset.nodeId !== event.detail.id) return;
    var node = JSON.parse(shown.value);
    node.label = event.detail.label;
    node.config = event.detail.config;
    shown.value = JSON.stringify(node);
    // The server may name the step after its agent; show that unless the label is being typed.
    var label = form.querySelector("[name=label]");
    if (label && label !== document.activeElement) label.value = event.detail.label;
  });

  // --- Inputs and variables --------------------------------------------------------------------

  var interfaceSummary = document.getElementById("interface-summary");
  var interfaceBody = document.getElementById("interface-dialog-body");

  function summaryLine(parts) {
    var line = document.createElement("p");
    line.className = "interface-line";
    parts.forEach(function (part, index) {
      var item = document.createElement(index === 0 ? "code" : "span");
      item.textContent = index === 0 ? part : " " + part;
      if (index > 0) item.className = "muted";
      line.appendChild(item);
    });
    return line;
  }

  function renderInterfaceSummary() {
    if (!interfaceSummary || !builder.getGraph) return;
    var graph = builder.getGraph();
    if (!graph) return;
    var fields = (graph.inputs && graph.inputs.fields) || [];
    var variables = graph.variables || [];
    interfaceSummary.textContent = "";
    var head = document.createElement("p");
    head.className = "muted";
    head.textContent = fields.length ? "The run form asks for:" : "No inputs: the run form asks for nothing.";
    interfaceSummary.appendChild(head);
    fields.forEach(function (field) {
      var kind = field.type === "choice" ? "one of " + (field.choices || []).join(", ") : field.type;
      // The schema's default is required.
      interfaceSummary.appendChild(summaryLine([field.name, kind + (field.required === false ? ", optional" : ", required")]));
    });
    var names = variables.map(function (variable) { return variable.name; });
    var tail = document.createElement("p");
    tail.className = "muted";
    tail.textContent = names.length ? "Variables: " + names.join(", ") : "No variables.";
    interfaceSummary.appendChild(tail);
  }

  // --- Run settings (priority, limits, budgets) ----------------------------------------------

  var settingsSummary = document.getElementById("settings-summary");
  var settingsBody = document.getElementById("settings-dialog-body");

  function renderSettingsSummary() {
    if (!settingsSummary || !builder.getGraph) return;
    var graph = builder.getGraph();
    if (!graph) return;
    var settings = graph.settings || {};
    var parts = [
      (settings.priority || "normal") + " priority",
      "up to " + (settings.max_steps || 200) + " steps",
      (settings.timeout_s || 3600) + " s per run",
      settings.token_budget ? "token budget " + settings.token_budget : "no token budget",
      settings.cost_budget_usd !== undefined && settings.cost_budget_usd !== null ? "cost budget $" + settings.cost_budget_usd : "no cost budget",
    ];
    settingsSummary.textContent = "";
    var line = document.createElement("p");
    line.className = "muted";
    line.textContent = parts.join(" · ");
    settingsSummary.appendChild(line);
  }

  // The dialogs that edit the graph the canvas holds (posted: it may be unsaved) load their
  // server-rendered form with it, and send it again with each Apply.
  function loadGraphForm(url, body) {
    var data = new FormData();
    data.append("graph", JSON.stringify(builder.getGraph()));
    fetch(url, {
      method: "POST",
      body: data,
      headers: { "X-CSRFToken": csrfToken(), "HX-Request": "true" },
      credentials: "same-origin",
    })
      .then(function (response) { return response.text(); })
      .then(function (html) {
        body.innerHTML = html;
        window.htmx.process(body);
        var first = body.querySelector("input:not([type=hidden]), select");
        if (first) first.focus();
      });
  }

  function loadInterfaceForm() {
    loadGraphForm(page.dataset.interfaceUrl, interfaceBody);
  }

  function loadSettingsForm() {
    loadGraphForm(page.dataset.settingsUrl, settingsBody);
  }

  // The editor always works on the graph as the canvas holds it, saved or not.
  document.body.addEventListener("htmx:configRequest", function (event) {
    var form = event.detail.elt;
    if (form && (form.id === "interface-form" || form.id === "settings-form")) {
      event.detail.parameters.graph = JSON.stringify(builder.getGraph());
    }
  });

  // After Apply, the first problem (or the outcome) is brought into view in the long dialog.
  if (interfaceBody) {
    interfaceBody.addEventListener("htmx:afterSwap", function () {
      var target = interfaceBody.querySelector(".errorlist") || interfaceBody.querySelector("[data-testid=interface-status]");
      if (target) target.scrollIntoView({ block: "center" });
    });
  }

  document.body.addEventListener("wf:interface-updated", function (event) {
    if (builder.updateInterface) builder.updateInterface(event.detail);
    renderInterfaceSummary();
  });

  // --- The checklist -------------------------------------------------------------------------

  document.addEventListener("click", function (event) {
    var target = event.target.closest("[data-focus-node]");
    if (target && builder.focusNode) {
      builder.focusNode(target.dataset.focusNode);
    }
  });

  // --- Dialogs -------------------------------------------------------------------------------

  function openDialog(id) {
    var dialog = document.getElementById(id);
    if (!dialog) return;
    if (!dialog.open) dialog.showModal();
    var body = dialog.querySelector("[hx-trigger='wf:open']");
    if (body) window.htmx.trigger(body, "wf:open");
    var first = dialog.querySelector("input:not([type=hidden]), textarea, select, button");
    if (first) first.focus();
  }

  document.addEventListener("click", function (event) {
    var closer = event.target.closest("[data-close-dialog]");
    if (closer) {
      var dialog = closer.closest("dialog");
      if (dialog) dialog.close();
    }
    var opener = event.target.closest("[data-open-dialog]");
    if (opener) {
      if (opener.dataset.openDialog === "publish-dialog") saveNow();
      if (opener.dataset.openDialog === "interface-dialog") loadInterfaceForm();
      if (opener.dataset.openDialog === "settings-dialog") loadSettingsForm();
      openDialog(opener.dataset.openDialog);
    }
  });

  builder.addEventListener("wf:new-agent", function () {
    openDialog("agent-dialog");
  });

  document.body.addEventListener("wf:agent-created", function () {
    var dialog = document.getElementById("agent-dialog");
    setTimeout(function () { if (dialog && dialog.open) dialog.close(); }, 900);
  });

  // --- Publishing ----------------------------------------------------------------------------

  document.body.addEventListener("wf:published", function (event) {
    document.getElementById("draft-base").value = event.detail.token;
    var dialog = document.getElementById("publish-dialog");
    if (dialog) dialog.close();
    document.getElementById("publish-note").value = "";
    setSaveStatus("saved", "Published version " + event.detail.number);
    // Said in the banner, not by opening the versions menu: that would cover the checklist and
    // the canvas toolbar until someone closed it.
    var menu = document.getElementById("versions-menu");
    if (menu) menu.open = false;
    showReport("ok", ["Published version " + event.detail.number + ". Run it with Run; Versions lists every version."]);
  });

  document.body.addEventListener("wf:publish-refused", function () {
    var dialog = document.getElementById("publish-dialog");
    if (dialog) dialog.close();
    setSaveStatus("error", "Not published: see the checklist");
    document.getElementById("checklist").scrollIntoView({ block: "nearest" });
  });

  // --- Loading a whole graph: import, template, restore ----------------------------------------

  var report = document.getElementById("import-report");

  // The first line says what happened; the details (often many for an import) fold away, so the
  // canvas keeps its room.
  function showReport(kind, lines) {
    if (!report) return;
    report.hidden = false;
    report.className = "banner report" + (kind === "error" ? " banner-danger" : "");
    report.textContent = "";
    var head = document.createElement("div");
    head.className = "report-head";
    var title = document.createElement("strong");
    title.textContent = lines[0];
    head.appendChild(title);
    var close = document.createElement("button");
    close.type = "button";
    close.className = "btn btn-small";
    close.textContent = "Dismiss";
    close.addEventListener("click", function () { report.hidden = true; });
    head.appendChild(close);
    report.appendChild(head);
    if (lines.length > 1) {
      var details = document.createElement("details");
      var summary = document.createElement("summary");
      summary.textContent = (lines.length - 1) + (lines.length === 2 ? " note" : " notes") + " about what was loaded";
      details.appendChild(summary);
      var list = document.createElement("ul");
      lines.slice(1).forEach(function (line) {
        var item = document.createElement("li");
        item.textContent = line;
        list.appendChild(item);
      });
      details.appendChild(list);
      report.appendChild(details);
    }
  }

  // After a whole graph is loaded from a button or menu, the canvas takes the focus so that
  // Ctrl+Z, which the report offers, reaches it.
  function focusCanvas() {
    var flow = builder.querySelector(".react-flow");
    if (!flow) return;
    if (!flow.hasAttribute("tabindex")) flow.setAttribute("tabindex", "-1");
    flow.focus();
  }

  function loadGraph(payload, what) {
    (payload.agents || []).forEach(function (agent) { builder.addAgent(agent); });
    builder.setGraph(payload.graph, { record: true });
    focusCanvas();
    var lines = [what + " loaded into the draft. Undo (Ctrl+Z) brings back what was there."];
    (payload.warnings || []).forEach(function (line) { lines.push(line); });
    (payload.report || []).forEach(function (line) { lines.push("Differs from AutoGen: " + line); });
    showReport("ok", lines);
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST",
      body: body,
      headers: { "X-CSRFToken": csrfToken() },
      credentials: "same-origin",
    }).then(function (response) {
      return response.json().then(function (data) {
        if (!response.ok) throw new Error(data.error || "The server refused the request.");
        return data;
      });
    });
  }

  var importFile = document.getElementById("import-file");
  if (importFile) {
    importFile.addEventListener("change", function () {
      var file = importFile.files[0];
      if (!file) return;
      var body = new FormData();
      body.append("file", file);
      post(page.dataset.importUrl, body)
        .then(function (data) { loadGraph(data, "“" + file.name + "”"); })
        .catch(function (error) { showReport("error", ["Not imported: " + error.message]); })
        .finally(function () { importFile.value = ""; });
    });
  }

  document.addEventListener("click", function (event) {
    var template = event.target.closest("[data-template]");
    if (template) {
      var menu = template.closest("details");
      if (menu) menu.open = false;
      var body = new FormData();
      body.append("template", template.dataset.template);
      post(page.dataset.templateUrl, body)
        .then(function (data) { loadGraph(data, "The template"); })
        .catch(function (error) { showReport("error", [error.message]); });
      return;
    }
    var restore = event.target.closest("[data-restore-version]");
    if (restore) {
      var number = restore.dataset.restoreVersion;
      var url = page.dataset.versionUrl.replace(/\/0\.json$/, "/" + number + ".json");
      fetch(url, { credentials: "same-origin" })
        .then(function (response) { return response.json(); })
        .then(function (data) {
          builder.setGraph(data.graph, { record: true });
          focusCanvas();
          var versions = restore.closest("details");
          if (versions) versions.open = false;
          showReport("ok", ["Version " + number + " restored into the draft. Undo (Ctrl+Z) brings back what was there; publish to make it current."]);
        });
    }
  });

  // --- Test runs from the canvas -------------------------------------------------------------

  var followTimer = null;

  function followNodes(runId) {
    if (followTimer) return;
    followTimer = setTimeout(function () {
      followTimer = null;
      fetch("/runs/" + runId + "/nodes.json", { credentials: "same-origin" })
        .then(function (response) { return response.json(); })
        .then(function (data) { if (builder.setStatuses) builder.setStatuses(data.states); });
    }, 150);
  }

  // The transcript follows the stream while its reader is at the bottom; scrolling up stops that
  // (they are reading) and offers a way back down.
  var stopFollowing = null;

  function followTranscript(timeline) {
    if (stopFollowing) stopFollowing();
    var jump = runPanel.querySelector("[data-jump-latest]");
    var following = true;
    var frame = null;
    function atBottom() {
      return timeline.scrollHeight - timeline.scrollTop - timeline.clientHeight < 24;
    }
    function toBottom() {
      timeline.scrollTop = timeline.scrollHeight;
    }
    function onScroll() {
      following = atBottom();
      if (following && jump) jump.hidden = true;
    }
    function onGrow() {
      if (frame) return;
      frame = requestAnimationFrame(function () {
        frame = null;
        if (following) toBottom();
        else if (jump) jump.hidden = false;
      });
    }
    var observer = new MutationObserver(onGrow);
    observer.observe(timeline, { childList: true, subtree: true, characterData: true });
    timeline.addEventListener("scroll", onScroll);
    if (jump) {
      jump.addEventListener("click", function () {
        following = true;
        jump.hidden = true;
        toBottom();
      });
    }
    stopFollowing = function () {
      observer.disconnect();
      timeline.removeEventListener("scroll", onScroll);
      if (frame) cancelAnimationFrame(frame);
      stopFollowing = null;
    };
  }

  runPanel.addEventListener("htmx:afterSwap", function () {
    var timeline = runPanel.querySelector("[data-live-timeline]");
    if (!timeline) return;
    runPanel.hidden = false;
    followTranscript(timeline);
    var dialog = document.getElementById("run-dialog");
    if (dialog && dialog.open) dialog.close();
    if (live) live.close();
    var runId = timeline.dataset.runId;
    builder.clearStatuses();
    live = window.A2ARunLive.start(timeline);
    ["run:event", "run:status"].forEach(function (name) {
      timeline.addEventListener(name, function () { followNodes(runId); });
    });
    var streaming = {};
    timeline.addEventListener("run:delta", function (event) {
      if (streaming[event.detail.step_key]) return;
      streaming[event.detail.step_key] = true;
      followNodes(runId);
    });
    followNodes(runId);
  });

  // The run form is swapped into the run panel only once a run started; errors stay in the dialog.
  document.body.addEventListener("htmx:beforeSwap", function (event) {
    if (event.detail.target !== runPanel) return;
    if (event.detail.xhr.status !== 200 || !/data-live-timeline/.test(event.detail.serverResponse)) {
      event.detail.target = document.getElementById("run-dialog-body");
      event.detail.shouldSwap = true;
    }
  });

  // The draft's problems as loaded badge its nodes at once, before any edit.
  function onReady() {
    renderInterfaceSummary();
    renderSettingsSummary();
    var loaded = document.getElementById("builder-issues");
    if (loaded) {
      var issues = JSON.parse(loaded.textContent);
      builder.setIssues(issues.by_node || {}, issues.by_edge || {});
    }
    restorePending();
  }
  if (builder.dataset.ready === "true") onReady();
  else builder.addEventListener("wf:ready", onReady);

  runPanel.addEventListener("click", function (event) {
    if (!event.target.closest("[data-clear-run]")) return;
    if (stopFollowing) stopFollowing();
    if (live) live.close();
    live = null;
    runPanel.hidden = true;
    runPanel.innerHTML = "";
    builder.clearStatuses();
  });
})();
