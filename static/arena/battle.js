(function () {
  "use strict";
  const root = document.getElementById("battle");
  if (!root) return;
  const $ = (id) => document.getElementById(id);
  const voteButtons = Array.from(root.querySelectorAll(".votes button"));
  const state = { socket: null, streaming: false, canVote: false, voted: false, battle: null,
                  current: { a: null, b: null }, text: { a: "", b: "" }, pending: new Set() };

  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const socket = new WebSocket(scheme + location.host + root.dataset.wsPath);
    socket.addEventListener("message", (event) => handle(JSON.parse(event.data)));
    socket.addEventListener("close", () => {
      setNotice("The connection closed. Reload the page to continue.", true);
      setBusy(false); enableVotes(false);
    });
    state.socket = socket;
  }
  function send(message) {
    if (!state.socket || state.socket.readyState !== WebSocket.OPEN) {
      setNotice("Not connected yet; try again in a moment.", true); return false;
    }
    state.socket.send(JSON.stringify(message));
    return true;
  }
  function setNotice(text, isError) {
    const el = $("notice");
    el.hidden = !text; el.textContent = text || "";
    el.classList.toggle("error", !!isError);
  }
  function setBusy(busy) {
    state.streaming = busy;
    $("send").disabled = busy || state.voted;
    $("regenerate").disabled = busy || state.voted || state.battle === null;
  }
  function enableVotes(on) {
    state.canVote = on;
    voteButtons.forEach((b) => { b.disabled = !on; });
  }
  function addBubble(side, role, text) {
    const el = document.createElement("div");
    el.className = "msg " + role;
    if (role === "user") el.textContent = text; else el.classList.add("markdown");
    $("conv-" + side).appendChild(el);
    return el;
  }
  function scheduleRender(side) {
    if (state.pending.has(side)) return;
    state.pending.add(side);
    requestAnimationFrame(() => {
      state.pending.delete(side);
      if (state.current[side]) ArenaRender.renderMarkdown(state.current[side], state.text[side]);
    });
  }
  function resetPanes() {
    ["a", "b"].forEach((s) => { $("conv-" + s).innerHTML = ""; $("status-" + s).textContent = ""; });
    $("reveal").hidden = true; $("reveal").innerHTML = "";
    root.querySelectorAll(".pane h2").forEach((h, i) => { h.textContent = i ? "Model B" : "Model A"; });
  }
  function fmtStats(st) {
    const parts = [];
    if (st.ttft_ms != null) parts.push("first token " + st.ttft_ms + " ms");
    if (st.total_ms != null) parts.push("total " + (st.total_ms / 1000).toFixed(1) + " s");
    if (st.tokens_out != null) parts.push(st.tokens_out + " tokens" + (st.usage_estimated ? " (estimated)" : ""));
    if (st.cost != null) parts.push("$" + Number(st.cost).toFixed(5));
    return parts.join(" · ");
  }

  function handle(m) {
    switch (m.type) {
      case "start": {
        state.battle = m.battle; setBusy(true); enableVotes(false); setNotice("");
        if (m.attempt === 0) $("prompt").value = "";
        const prompt = state.lastPrompt || "";
        ["a", "b"].forEach((s) => {
          if (m.attempt > 0) {  // regenerate: drop the replaced answer
            const conv = $("conv-" + s); if (conv.lastChild) conv.removeChild(conv.lastChild);
          } else {
            addBubble(s, "user", prompt);
          }
          state.text[s] = ""; state.current[s] = addBubble(s, "assistant", "");
          $("status-" + s).textContent = "answering…";
        });
        break;
      }
      case "chunk":
        state.text[m.side] += m.text; scheduleRender(m.side); break;
      case "side_done":
        scheduleRender(m.side);
        $("status-" + m.side).textContent = "done · " + fmtStats(m.stats); break;
      case "error":
        if (m.side) {
          $("status-" + m.side).textContent = "failed";
          if (state.current[m.side]) {
            const err = document.createElement("p"); err.className = "error"; err.textContent = m.message;
            state.current[m.side].appendChild(err);
          }
        } else {
          setNotice(m.message, true);
        }
        break;
      case "ready":
        setBusy(false); enableVotes(m.can_vote);
        setNotice(m.notice || (m.can_vote ? "Both answers are in. Which is better?" : ""), !m.can_vote);
        break;
      case "revealed": {
        state.voted = true; enableVotes(false); setBusy(false);
        ["a", "b"].forEach((s, i) => {
          root.querySelectorAll(".pane h2")[i].textContent = (s === "a" ? "A: " : "B: ") + m[s].name;
          $("status-" + s).textContent = fmtStats(m[s].stats);
        });
        const r = $("reveal"); r.hidden = false;
        r.textContent = m.counted ? "Thanks, your vote counts." : "Vote stored but not counted: " + m.void_reason + ".";
        setNotice("Press New round (n) to battle again.");
        break;
      }
      case "new_round":
        state.battle = null; state.voted = false; resetPanes(); setBusy(false); enableVotes(false); setNotice("");
        break;
    }
  }

  $("prompt-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = $("prompt").value;
    if (!text.trim()) { setNotice("Type a prompt first.", true); return; }
    if (state.streaming) return;
    state.lastPrompt = text;
    const category = $("category") ? $("category").value || null : null;
    send({ type: "prompt", text: text, category: state.battle === null ? category : null });
    // The text stays in the box until the server starts the round: a refused prompt is not lost.
  });
  $("prompt").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); $("prompt-form").requestSubmit(); }
  });
  function vote(outcome) {
    if (!state.canVote) return;
    enableVotes(false);  // one vote: a double click must not send a second one
    if (!send({ type: "vote", outcome: outcome })) enableVotes(true);
  }
  voteButtons.forEach((b) => b.addEventListener("click", () => vote(b.dataset.outcome)));
  $("regenerate").addEventListener("click", () => send({ type: "regenerate" }));
  $("new-round").addEventListener("click", () => send({ type: "new_round" }));
  root.querySelectorAll(".suggestion").forEach((b) => b.addEventListener("click", () => { $("prompt").value = b.textContent; $("prompt").focus(); }));
  document.addEventListener("keydown", (e) => {
    const tag = (e.target.tagName || "").toLowerCase();
    if (tag === "textarea" || tag === "input" || tag === "select" || e.ctrlKey || e.metaKey || e.altKey) return;
    const outcome = { "1": "a", "2": "b", "3": "tie", "4": "both_bad" }[e.key];
    if (outcome) vote(outcome);
    else if (e.key === "n") send({ type: "new_round" });
    else if (e.key === "r" && !$("regenerate").disabled) send({ type: "regenerate" });
  });
  connect();
})();
