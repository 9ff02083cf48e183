// The workflow playground: chat with a whole team. Each message posts the conversation so far;
// the server starts a run and answers with the turn (server-rendered HTML), whose transcript
// run_live.js follows over the run's WebSocket. The team's messages (text, from the events) are
// kept for the next turn, so the conversation continues across runs.
(function () {
  var root = document.querySelector(".team-chat");
  if (!root || !window.A2ARunLive) return;
  var transcript = document.getElementById("team-transcript");
  var form = document.getElementById("team-form");
  var input = document.getElementById("team-input");
  var send = document.getElementById("team-send");
  var status = document.getElementById("team-status");
  var csrf = JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"];
  var FINISHED = ["succeeded", "failed", "cancelled"];
  var turns = []; // {text, messages: [{name, content}], live}
  var current = null;

  function nearBottom() {
    return window.innerHeight + window.scrollY >= document.body.scrollHeight - 160;
  }

  function follow(wasNear) {
    if (wasNear) window.scrollTo(0, document.body.scrollHeight);
  }

  function conversation(text) {
    var messages = [];
    turns.forEach(function (turn) {
      messages.push({ role: "user", content: turn.text });
      turn.messages.forEach(function (said) {
        messages.push({ role: "assistant", name: said.name, content: said.content });
      });
    });
    messages.push({ role: "user", content: text });
    return messages;
  }

  function busy(on) {
    if (send) send.disabled = on;
  }

  function watch(turn, section) {
    var timeline = section.querySelector("[data-live-timeline]");
    timeline.addEventListener("run:event", function (event) {
      var data = event.detail.data || {};
      if (event.detail.kind === "message" && data.text) {
        turn.messages.push({ name: data.agent || "agent", content: String(data.text) });
      }
    });
    ["run:event", "run:delta"].forEach(function (name) {
      timeline.addEventListener(name, function () { follow(nearBottom()); });
    });
    timeline.addEventListener("run:status", function (event) {
      var state = event.detail.status;
      section.dataset.status = state;
      if (FINISHED.indexOf(state) >= 0 && current === turn) {
        current = null;
        busy(false);
        status.textContent = state === "succeeded" ? "" : "The run " + state + (event.detail.reason ? ": " + event.detail.reason : ".");
      } else if (state === "waiting" && current === turn) {
        status.textContent = "The team waits for a person: answer on the run page, then the transcript goes on here.";
      }
    });
    turn.live = window.A2ARunLive.start(timeline);
    // The live status is best-effort; the run's stored state is not. Ask it now and then, as the
    // run page does, so a status that never arrived live does not leave the turn running.
    var poll = setInterval(function () {
      if (FINISHED.indexOf(section.dataset.status) >= 0) { clearInterval(poll); return; }
      fetch("/runs/" + timeline.dataset.runId + "/nodes.json", { credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (data) {
          if (data && data.status !== section.dataset.status && FINISHED.indexOf(data.status) >= 0) {
            timeline.dispatchEvent(new CustomEvent("run:status", { bubbles: true, detail: { status: data.status } }));
          }
        })
        .catch(function () {});
    }, 3000);
  }

  async function say(text) {
    busy(true);
    status.textContent = "Starting a run…";
    try {
      var response = await fetch(root.dataset.sendUrl, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
        body: JSON.stringify({ messages: conversation(text) }),
      });
      if (!response.ok) {
        var problem = await response.json().catch(function () { return {}; });
        throw new Error(problem.error || "The server answered " + response.status + ".");
      }
      var empty = document.getElementById("team-empty");
      if (empty) empty.remove();
      var holder = document.createElement("div");
      holder.innerHTML = await response.text(); // server-rendered, escaped by the template
      var section = holder.firstElementChild;
      transcript.appendChild(section);
      var turn = { text: text, messages: [], live: null };
      turns.push(turn);
      current = turn;
      status.textContent = "The team is working on it; you can write again when the run ends.";
      watch(turn, section);
      section.scrollIntoView({ block: "start" });
    } catch (error) {
      busy(false);
      input.value = input.value || text;
      status.textContent = error.message;
    }
  }

  document.getElementById("team-reset").addEventListener("click", function () {
    turns.forEach(function (turn) { if (turn.live) turn.live.close(); });
    turns = [];
    current = null;
    busy(false);
    transcript.textContent = "";
    var empty = document.createElement("p");
    empty.className = "chat-empty muted";
    empty.id = "team-empty";
    empty.textContent = "A new conversation: the next run knows nothing of the previous ones.";
    transcript.appendChild(empty);
    status.textContent = "";
    if (input) input.focus();
  });

  if (!form) return;
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if (!text || send.disabled) return;
    input.value = "";
    say(text);
  });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
})();
