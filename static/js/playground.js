// The agent playground: posts the conversation, reads the streamed reply (server-sent events over
// a fetch body) and shows tokens as they arrive. Model output is inserted as text, never as HTML.
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
    try {
      var response = await fetch(root.dataset.streamUrl, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
        body: JSON.stringify({ messages: history }),
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
        "$" + Number(finished.cost).toFixed(6) + (finished.cost_estimated ? " (estimated)" : ""),
        Math.round(performance.now() - started) + " ms",
        finished.model_calls > 1 ? finished.model_calls + " model calls" : "",
        last.retries ? last.retries + " retries" : "",
        last.fallbacks ? "fell back " + last.fallbacks + "×" : "",
      ].filter(Boolean).join(" · "));
      reply.dataset.done = "true";
      status.textContent = "";
    } catch (error) {
      history.pop();
      reply.classList.add("chat-failed");
      note(reply, error.message, "chat-meta small chat-error");
      status.textContent = "The reply failed; your message was not kept. Try again.";
    } finally {
      reply.classList.remove("streaming");
      send.disabled = false;
      input.focus();
    }
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
})();
