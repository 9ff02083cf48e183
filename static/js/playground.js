// The agent playground: posts the conversation, reads the streamed reply (server-sent events over
// a fetch body) and shows tokens as they arrive. Model output is inserted as text, never as HTML.
// The model, temperature and max tokens of the side panel go with each try (the agent is not
// changed); "New conversation" forgets the history; the agent picker opens another's playground.
(function () {
  var root = document.querySelector(".playground");
  if (!root) return;
  var chat = document.getElementById("chat");
  var form = document.getElementById("chat-form");
  var input = document.getElementById("chat-input");
  var send = document.getElementById("chat-send");
  var status = document.getElementById("chat-status");
  var csrf = JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"];
  var history = [];
  var inFlight = null;
  var model = document.getElementById("try-model");
  var temperature = document.getElementById("try-temperature");
  var maxTokens = document.getElementById("try-max-tokens");
  var agentDefaults = {
    model: model ? model.value : "",
    temperature: temperature ? temperature.value : "",
    maxTokens: maxTokens ? maxTokens.value : "",
  };

  function trySettings() {
    var settings = {};
    var changed = [];
    if (model && model.value) {
      var cut = model.value.indexOf("|");
      settings.model = { provider_id: model.value.slice(0, cut), model: model.value.slice(cut + 1) };
    }
    if (temperature) {
      settings.temperature = temperature.value === "" ? null : temperature.value;
      if (temperature.value !== agentDefaults.temperature) changed.push("temperature " + (temperature.value || "default"));
    }
    if (maxTokens) {
      settings.max_tokens = maxTokens.value === "" ? null : maxTokens.value;
      if (maxTokens.value !== agentDefaults.maxTokens) changed.push("max tokens " + (maxTokens.value || "default"));
    }
    return { settings: settings, changed: changed };
  }

  function resetConversation() {
    if (inFlight) inFlight.abort();
    history = [];
    chat.textContent = "";
    var empty = document.createElement("li");
    empty.className = "chat-empty muted";
    empty.id = "chat-empty";
    empty.textContent = "A new conversation: the agent remembers nothing of the previous one.";
    chat.appendChild(empty);
    status.textContent = "";
    input.focus();
  }

  function bubble(role, text) {
    var empty = document.getElementById("chat-empty");
    if (empty) empty.remove();
    var item = document.createElement("li");
    item.className = "chat-msg chat-" + role;
    item.dataset.role = role;
    var body = document.createElement("div");
    body.className = "chat-body";
    body.textContent = text || "";
    item.appendChild(body);
    chat.appendChild(item);
    item.scrollIntoView({ block: "end" });
    return item;
  }

  function note(item, text, className) {
    var meta = document.createElement("div");
    meta.className = className || "chat-meta small muted";
    meta.textContent = text;
    item.appendChild(meta);
  }

  function parseEvents(buffer, handle) {
    var parts = buffer.split("\n\n");
    for (var i = 0; i < parts.length - 1; i++) {
      var lines = parts[i].split("\n");
      var name = "message";
      var data = "";
      lines.forEach(function (line) {
        if (line.indexOf("event: ") === 0) name = line.slice(7);
        else if (line.indexOf("data: ") === 0) data += line.slice(6);
      });
      handle(name, data ? JSON.parse(data) : {});
    }
    return parts[parts.length - 1];
  }

  async function ask(text) {
    history.push({ role: "user", content: text });
    bubble("user", text);
    var reply = bubble("assistant", "");
    reply.classList.add("streaming");
    var body = reply.querySelector(".chat-body");
    send.disabled = true;
    status.textContent = "Thinking…";
    var started = performance.now();
    var calls = [];
    var chosen = trySettings();
    var controller = new AbortController();
    inFlight = controller;
    try {
      var response = await fetch(root.dataset.streamUrl, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
        body: JSON.stringify({ messages: history, settings: chosen.settings }),
        signal: controller.signal,
      });
      if (!response.ok) {
        var problem = await response.json().catch(function () { return {}; });
        throw new Error(problem.error || "The server answered " + response.status + ".");
      }
      var reader = response.body.getReader();
      var decoder = new TextDecoder();
      var buffer = "";
      var finished = null;
      var failure = null;
      for (;;) {
        var chunk = await reader.read();
        if (chunk.done) break;
        buffer = parseEvents(buffer + decoder.decode(chunk.value, { stream: true }), function (name, data) {
          if (name === "delta") body.textContent += data.text;
          else if (name === "tool_call") note(reply, "→ calls " + data.name + "(" + data.arguments + ")", "chat-tool small");
          else if (name === "tool_result") note(reply, "← " + data.name + ": " + data.content.slice(0, 300), "chat-tool small" + (data.is_error ? " chat-error" : ""));
          else if (name === "model_call") calls.push(data);
          else if (name === "done") finished = data;
          else if (name === "error") failure = data;
        });
      }
      if (failure) throw new Error(failure.message);
      if (!finished) throw new Error("The stream ended before the reply was complete.");
      body.textContent = finished.text;
      history.push({ role: "assistant", content: finished.text });
      var last = calls[calls.length - 1] || {};
      note(reply, [
        last.model ? last.model + " via " + last.deployment : "",
        finished.prompt_tokens + " → " + finished.completion_tokens + " tokens",
        // A price that is not known is not zero.
        finished.unpriced_calls
          ? (Number(finished.cost) > 0 ? "$" + Number(finished.cost).toFixed(6) + " + price unknown" : "price unknown")
          : "$" + Number(finished.cost).toFixed(6) + (finished.cost_estimated ? " (estimated)" : ""),
        Math.round(performance.now() - started) + " ms",
        finished.model_calls > 1 ? finished.model_calls + " model calls" : "",
        last.retries ? last.retries + " retries" : "",
        last.fallbacks ? "fell back " + last.fallbacks + "×" : "",
      ].concat(chosen.changed).filter(Boolean).join(" · "));
      reply.dataset.done = "true";
      status.textContent = "";
    } catch (error) {
      if (controller.signal.aborted) return; // a new conversation was started meanwhile
      history.pop();
      reply.classList.add("chat-failed");
      note(reply, error.message, "chat-meta small chat-error");
      status.textContent = "The reply failed; your message was not kept. Try again.";
    } finally {
      if (inFlight === controller) inFlight = null;
      reply.classList.remove("streaming");
      send.disabled = false;
      input.focus();
    }
  }

  document.getElementById("chat-reset").addEventListener("click", resetConversation);
  var restore = document.getElementById("try-restore");
  if (restore) restore.addEventListener("click", function () {
    if (model) model.value = agentDefaults.model;
    if (temperature) temperature.value = agentDefaults.temperature;
    if (maxTokens) maxTokens.value = agentDefaults.maxTokens;
  });
  var switcher = document.getElementById("switch-agent");
  if (switcher) {
    document.getElementById("switch-go").style.display = "none"; // the choice itself switches
    switcher.addEventListener("change", function () { switcher.form.submit(); });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if (!text || send.disabled) return;
    input.value = "";
    ask(text);
  });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  form.dataset.ready = "true"; // Enter sends from now on (tests wait for it)
})();
