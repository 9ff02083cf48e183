// The live transcript of a run: one WebSocket, replay from the last seen seq, then live events.
// Reconnects with backoff and resubscribes from its last seq, so a dropped connection or a reload
// shows exactly the transcript an uninterrupted viewer sees (events are de-duplicated by seq).
// The server closes with 4500 when its live feed is lost (Redis restarting): the page reconnects,
// catches up from the stored events, and follows live again once the feed is back.
// A seq missing behind later ones for 1.5 s is asked for again (live copies are best-effort).
// `data-live` on the timeline says "connected" or "reconnecting"; `data-reconnects` counts them.
// Model output arrives as server-sanitized HTML (`html`) or as text; never inserted otherwise.
// `A2ARunLive.start(timeline)` follows one run into one timeline element; the run page starts
// #timeline itself, the builder starts the one it swaps in. Each event, delta and status change is
// also dispatched on the timeline (`run:event`, `run:delta`, `run:status`) for canvases to follow.
(function () {
  function start(timeline) {
    var runId = timeline.dataset.runId;
    var statusLine = document.getElementById("live-status") || timeline.parentNode.querySelector("[data-live-status]") || document.createElement("p");
    // Seen seqs: every one ≤ seenFloor, plus those in seenAbove (branches may publish 8 before 7).
    var seenFloor = 0;
    var seenAbove = {};
    var streaming = {};
    var streamed = {}; // characters shown so far of each message still streaming, by step key
    var finished = {}; // step keys whose message is stored: later deltas for them are stale
    var backoff = 1000;
    var openedAt = 0;
    var reconnects = 0;
    var socket = null;
    var closed = false;

    // A seq missing behind later ones for a while was dropped on its way (the server's live copy
    // is best-effort): ask the server to resend from the last contiguous seq.
    var gapTimer = null;
    function watchGap() {
      if (gapTimer || Object.keys(seenAbove).length === 0) return;
      gapTimer = setTimeout(function () {
        gapTimer = null;
        if (Object.keys(seenAbove).length && socket && socket.readyState === WebSocket.OPEN) {
          socket.send(JSON.stringify({ type: "subscribe", after_seq: seenFloor }));
        }
      }, 1500);
    }

    function firstSight(seq) {
      if (seq <= seenFloor || seenAbove[seq]) return false;
      seenAbove[seq] = true;
      while (seenAbove[seenFloor + 1]) { delete seenAbove[seenFloor + 1]; seenFloor += 1; }
      return true;
    }

    function announce(name, detail) {
      timeline.dispatchEvent(new CustomEvent(name, { bubbles: true, detail: detail }));
    }

    function el(tag, className, text) {
      var node = document.createElement(tag);
      if (className) node.className = className;
      if (text !== undefined) node.textContent = text;
      return node;
    }

    function clearEmpty() {
      var empty = timeline.querySelector("#timeline-empty, [data-timeline-empty]");
      if (empty) empty.remove();
    }

    function appendItem(item) {
      clearEmpty();
      timeline.appendChild(item);
    }

    function short(value) {
      var text = typeof value === "string" ? value : JSON.stringify(value);
      return text.length > 2000 ? text.slice(0, 2000) + "…" : text;
    }

    function renderEvent(event) {
      var data = event.data || {};
      var item;
      if (event.kind === "message") {
        var stream = streaming[event.step_key];
        if (stream) { stream.remove(); delete streaming[event.step_key]; }
        delete streamed[event.step_key];
        if (event.step_key) finished[event.step_key] = true;
        var human = data.role === "human" || data.agent === "human";
        item = el("li", "tl-item tl-message" + (human ? " tl-human" : ""));
        item.appendChild(el("div", "tl-who", data.agent || "agent"));
        var body = el("div", "tl-body");
        if (event.html !== undefined) body.innerHTML = event.html; // sanitized by the server
        else body.textContent = data.text || "";
        item.appendChild(body);
        // A limit (a budget, the time limit) stopped the answer: what came is kept, marked.
        if (data.stopped) item.appendChild(el("div", "tl-meta tl-warning", "✂ cut short — " + data.stopped));
        var meta = [];
        var usage = data.usage || {};
        if (usage.model) meta.push(usage.model + (usage.deployment ? " via " + usage.deployment : ""));
        if (usage.policy) meta.push("model policy: " + usage.policy);
        if (usage.prompt_tokens !== undefined) meta.push(usage.prompt_tokens + " → " + usage.completion_tokens + " tokens");
        if (usage.unpriced_calls) {
          // A price that is not known is not zero.
          meta.push(Number(usage.cost) > 0 ? "$" + Number(usage.cost).toFixed(6) + " + price unknown" : "price unknown");
        } else if (usage.cost !== undefined) meta.push("$" + Number(usage.cost).toFixed(6));
        if (usage.latency_ms) meta.push(usage.latency_ms + " ms");
        if (usage.retries) meta.push(usage.retries + " retries");
        if (usage.fallbacks) meta.push("fell back " + usage.fallbacks + "×");
        // Copied into a fork: the call was made (and paid) by the run it came from.
        if (data.remote) meta.push("via A2A" + (data.remote.host ? " from " + data.remote.host : "") + (data.remote.state ? " · " + data.remote.state : ""));
        if (data.reused_from) meta.push("reused from run " + String(data.reused_from).slice(0, 8) + ", not called again");
        if (meta.length) item.appendChild(el("div", "tl-meta", meta.join(" · ")));
      } else if (event.kind === "tool_call" || event.kind === "tool_result") {
        item = el("li", "tl-item tl-note");
        var details = el("details");
        var label = event.kind === "tool_call"
          ? (data.agent || "agent") + " calls " + (data.name || "a tool")
          : (data.name || "tool") + (data.is_error ? " failed" : " answered");
        details.appendChild(el("summary", "", label));
        details.appendChild(el("pre", "", short(event.kind === "tool_call" ? data.arguments : data.content)));
        item.appendChild(details);
      } else if (event.kind === "remote_call") {
        // A remote A2A agent's task: where, which, how it ended. Its price is not known unless
        // the remote agent reports its usage.
        var usage = data.usage || {};
        var cost = usage.cost_usd !== undefined && usage.cost_usd !== null ? "$" + Number(usage.cost_usd).toFixed(6) : "cost unknown";
        var parts = ["⇄ " + (data.agent || "remote agent") + " at " + (data.host || "?"), "task " + String(data.task_id || "—").slice(0, 13), data.state || "?", cost];
        if (data.resumed) parts.push("followed again after an interruption");
        item = el("li", "tl-item tl-note", parts.join(" · "));
        item.dataset.remoteHost = data.host || "";
      } else if (event.kind === "handoff") {
        item = el("li", "tl-item tl-note", "↪ " + (data.from || "") + " hands off to " + (data.to || ""));
      } else if (event.kind === "router_decision") {
        item = el("li", "tl-item tl-note", "⑂ route: " + (data.route || "") + (data.why ? " (" + data.why + ")" : ""));
      } else if (event.kind === "vote") {
        item = el("li", "tl-item tl-note", "☑ " + (data.voter || data.agent || "voter") + " votes " + (data.option || JSON.stringify(data)));
      } else if (event.kind === "proposal") {
        item = el("li", "tl-item tl-note" + (data.failed ? " tl-warning" : ""), data.failed
          ? "✕ term " + data.term + ": " + (data.proposer || "the proposer") + " failed (" + (data.error || "no proposal") + ")"
          : "✎ term " + data.term + ": " + (data.proposer || "the proposer") + " proposes");
      } else if (event.kind === "ballot") {
        item = el("li", "tl-item tl-note", (data.decision === "accept" ? "✓ " : data.decision === "reject" ? "✗ " : "· ") + (data.member || "member") + " " + (data.decision === "abstain" ? "abstains" : data.decision + "s") + (data.reason ? ": " + short(data.reason) : ""));
      } else if (event.kind === "election") {
        item = el("li", "tl-item tl-note", data.elected
          ? "↻ " + data.elected + " is elected to propose"
          : "↻ " + (data.voter || "a member") + (data.candidate ? " votes for " + data.candidate : " casts no valid vote"));
      } else if (event.kind === "consensus") {
        item = el("li", "tl-item tl-note", data.committed
          ? "■ committed in term " + data.term + " (" + (data.proposer || "") + "'s proposal)"
          : "■ no agreement after " + (data.log ? data.log.length : "?") + " terms; the last proposal is handed on");
      } else if (event.kind === "human_request") {
        item = el("li", "tl-item tl-note", "? waiting for a person: " + (data.prompt || ""));
      } else if (event.kind === "node_finished") {
        var what = data.node_id || event.step_key || "node";
        var ended = data.messages !== undefined
          ? "■ " + what + " ended after " + data.messages + (data.messages === 1 ? " message." : " messages.")
          : data.workflow_id ? "■ sub-workflow " + what + " finished." : "■ " + what + " finished.";
        item = el("li", "tl-item tl-note", ended);
      } else if (event.kind === "log") {
        item = el("li", "tl-item tl-note" + (data.level === "warning" ? " tl-warning" : ""), (data.level === "warning" ? "⚠ " : "· ") + (data.message || ""));
      } else if (event.kind === "state" && data.speaker_name) {
        item = el("li", "tl-item tl-note", "⇢ " + data.speaker_name + " speaks next" + (data.fallback ? " (the selector named no member, so members take turns)" : ""));
      } else if (event.kind === "node_failed") {
        item = el("li", "tl-item tl-note chat-error", "✕ " + (data.node || event.step_key) + ": " + (data.error || "failed"));
      } else {
        item = el("li", "tl-item tl-note", "· " + event.kind.replace(/_/g, " ") + (event.step_key ? " (" + event.step_key + ")" : ""));
      }
      item.dataset.seq = event.seq;
      item.dataset.kind = event.kind;
      item.id = "event-" + event.seq;
      linkCorrelated(item, data.correlation_id, event.seq);
      appendItem(item);
    }

    // A tool's result, a hand-off's acceptance and a person's answer share a correlation id
    // with the event they answer: the reply links back to it.
    var opened = {};
    function linkCorrelated(item, correlation, seq) {
      if (typeof correlation !== "string" || !/^(tool|handoff|ask):/.test(correlation)) return;
      item.dataset.correlation = correlation;
      var first = opened[correlation];
      if (first === undefined || first === seq) { opened[correlation] = seq; return; }
      var link = el("a", "tl-reply-link small muted", "↩ answers #" + first);
      link.href = "#event-" + first;
      item.appendChild(link);
    }

    function renderDelta(message) {
      if (finished[message.step_key]) return; // its stored message is shown already
      // Offsets count characters (code points), as the server does.
      var chars = Array.from(message.text || "");
      var have = streamed[message.step_key] || 0;
      if (message.offset !== undefined) {
        if (message.offset > have) {
          // Something in between was missed: ask again; the reply starts with the whole text.
          resync();
          return;
        }
        chars = chars.slice(have - message.offset); // the part already shown is skipped
        if (!chars.length) return;
      }
      var item = streaming[message.step_key];
      if (!item) {
        item = el("li", "tl-item tl-message tl-streaming");
        item.appendChild(el("div", "tl-who", message.agent || "agent"));
        item.appendChild(el("div", "tl-body"));
        streaming[message.step_key] = item;
        appendItem(item);
      }
      item.querySelector(".tl-body").textContent += chars.join("");
      streamed[message.step_key] = have + chars.length;
    }

    var resyncing = false;
    function resync() {
      if (resyncing || !socket || socket.readyState !== WebSocket.OPEN) return;
      resyncing = true;
      socket.send(JSON.stringify({ type: "subscribe", after_seq: seenFloor }));
    }

    function renderStatus(message) {
      var panel = timeline.closest(".builder-run");
      var badges = panel ? panel.querySelectorAll(".badge[data-status]") : document.querySelectorAll("#run-state .badge[data-status]");
      var tone = { succeeded: "badge-ok", failed: "badge-danger", running: "badge-accent", waiting: "badge-warn" };
      badges.forEach(function (badge) {
        badge.textContent = message.status;
        badge.dataset.status = message.status;
        badge.className = "badge status-" + message.status + (tone[message.status] ? " " + tone[message.status] : "");
      });
      if (["succeeded", "failed", "cancelled"].indexOf(message.status) >= 0) {
        // A message still streaming when the run ended will not finish.
        Object.keys(streaming).forEach(function (key) { streaming[key].remove(); delete streaming[key]; });
        streamed = {};
      }
      var region = document.getElementById("run-state");
      if (region && ["running", "succeeded", "failed", "cancelled", "waiting"].indexOf(message.status) >= 0 && window.htmx) {
        // The server-rendered state (nodes, totals, the waiting form) catches up at once.
        window.htmx.ajax("GET", window.location.pathname, { target: "#run-state", select: "#run-state", selectOOB: "#run-nodes,#run-steps,#run-decisions", swap: "outerHTML" });
      }
    }

    function connect() {
      var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
      socket = new WebSocket(scheme + window.location.host + "/ws/runs/" + runId + "/");
      socket.onopen = function () {
        openedAt = Date.now();
        statusLine.textContent = "";
        timeline.dataset.live = "connected";
        socket.send(JSON.stringify({ type: "subscribe", after_seq: seenFloor }));
      };
      socket.onmessage = function (message) {
        var payload = JSON.parse(message.data);
        if (payload.type === "event") {
          if (!firstSight(payload.seq)) return; // already shown: replays overlap by design
          watchGap();
          renderEvent(payload);
          announce("run:event", payload);
        } else if (payload.type === "delta") {
          renderDelta(payload);
          announce("run:delta", payload);
        } else if (payload.type === "status") {
          renderStatus(payload);
          announce("run:status", payload);
        } else if (payload.type === "replayed") {
          timeline.dataset.replayed = "true";
          resyncing = false;
        }
      };
      socket.onclose = function (event) {
        if (closed) return;
        if (event.code === 4401 || event.code === 4404) {
          statusLine.textContent = "This run cannot be watched: log in again or check your access.";
          return;
        }
        statusLine.textContent = event.code === 4500
          ? "Live updates paused; catching up and reconnecting…"
          : "Connection lost; reconnecting…";
        timeline.dataset.live = "reconnecting";
        reconnects += 1;
        timeline.dataset.reconnects = String(reconnects);
        // Streaming bubbles are provisional: the stored messages replace them after resync.
        Object.keys(streaming).forEach(function (key) { streaming[key].remove(); delete streaming[key]; });
        streamed = {};
        resyncing = false;
        // A connection that held a while starts the backoff over; one closed at once (the
        // server's live feed still down) waits longer each time, with jitter, up to 10 s.
        if (openedAt && Date.now() - openedAt > 10000) backoff = 1000;
        openedAt = 0;
        setTimeout(connect, backoff / 2 + Math.random() * backoff / 2);
        backoff = Math.min(backoff * 2, 10000);
      };
    }

    connect();
    return {
      close: function () {
        closed = true;
        if (socket) socket.close();
      },
    };
  }

  window.A2ARunLive = { start: start };
  var page = document.getElementById("timeline");
  if (page) start(page);
})();
