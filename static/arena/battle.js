(function () {
  "use strict";
  const root = document.getElementById("battle");
  if (!root) return;
  // Every element this script touches is found here, once, before any answer is on the page:
  // model output is sanitized, but the page never looks its own elements up by id afterwards.
  const byId = (id) => document.getElementById(id);
  const ui = {
    notice: byId("notice"), reveal: byId("reveal"), form: byId("prompt-form"), prompt: byId("prompt"),
    category: byId("category"), send: byId("send"), regenerate: byId("regenerate"),
    newRound: byId("new-round"),
    conv: { a: byId("conv-a"), b: byId("conv-b") },
    status: { a: byId("status-a"), b: byId("status-b") },
    title: { a: byId("pane-a").querySelector("header h2"), b: byId("pane-b").querySelector("header h2") },
  };
  const TITLES = { a: "Model A", b: "Model B" };
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
    const el = ui.notice;
    el.hidden = !text; el.textContent = text || "";
    el.classList.toggle("error", !!isError);
  }
  function setBusy(busy) {
    state.streaming = busy;
    ui.send.disabled = busy || state.voted;
    ui.regenerate.disabled = busy || state.voted || state.battle === null;
  }
  function enableVotes(on) {
    state.canVote = on;
    voteButtons.forEach((b) => { b.disabled = !on; });
  }
  function addBubble(side, role, text) {
    const el = document.createElement("div");
    el.className = "msg " + role;
    if (role === "user") el.textContent = text; else el.classList.add("markdown");
    ui.conv[side].appendChild(el);
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
    ["a", "b"].forEach((s) => {
      ui.conv[s].replaceChildren(); ui.status[s].textContent = ""; ui.title[s].textContent = TITLES[s];
    });
    ui.reveal.hidden = true; ui.reveal.textContent = "";
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
        if (m.attempt === 0) ui.prompt.value = "";
        const prompt = state.lastPrompt || "";
        ["a", "b"].forEach((s) => {
          if (m.attempt > 0) {  // regenerate: drop the replaced answer
            const conv = ui.conv[s]; if (conv.lastChild) conv.removeChild(conv.lastChild);
          } else {
            addBubble(s, "user", prompt);
          }
          state.text[s] = ""; state.current[s] = addBubble(s, "assistant", "");
          ui.status[s].textContent = "answering…";
        });
        break;
      }
      case "chunk":
        state.text[m.side] += m.text; scheduleRender(m.side); break;
      case "side_done":
        scheduleRender(m.side);
        ui.status[m.side].textContent = "done · " + fmtStats(m.stats); break;
      case "error":
        if (m.side) {
          ui.status[m.side].textContent = "failed";
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
        ["a", "b"].forEach((s) => {
          ui.title[s].textContent = s.toUpperCase() + ": " + m[s].name;
          ui.status[s].textContent = fmtStats(m[s].stats);
        });
        const r = ui.reveal; r.hidden = false;
        r.textContent = m.counted ? "Thanks, your vote counts." : "Vote stored but not counted: " + m.void_reason + ".";
        setNotice("Press New round (n) to battle again.");
        break;
      }
      case "new_round":
        state.battle = null; state.voted = false; resetPanes(); setBusy(false); enableVotes(false); setNotice("");
        break;
    }
  }

  ui.form.addEventListener("submit", (e) => {
    e.preventDefault();
    const text = ui.prompt.value;
    if (!text.trim()) { setNotice("Type a prompt first.", true); return; }
    if (state.streaming) return;
    state.lastPrompt = text;
    const category = ui.category ? ui.category.value || null : null;
    send({ type: "prompt", text: text, category: state.battle === null ? category : null });
    // The text stays in the box until the server starts the round: a refused prompt is not lost.
  });
  ui.prompt.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); ui.form.requestSubmit(); }
  });
  function vote(outcome) {
    if (!state.canVote) return;
    enableVotes(false);  // one vote: a double click must not send a second one
    if (!send({ type: "vote", outcome: outcome })) enableVotes(true);
  }
  voteButtons.forEach((b) => b.addEventListener("click", () => vote(b.dataset.outcome)));
  ui.regenerate.addEventListener("click", () => send({ type: "regenerate" }));
  ui.newRound.addEventListener("click", () => send({ type: "new_round" }));
  root.querySelectorAll(".suggestion").forEach((b) => b.addEventListener("click", () => { ui.prompt.value = b.textContent; ui.prompt.focus(); }));
  document.addEventListener("keydown", (e) => {
    const tag = (e.target.tagName || "").toLowerCase();
    if (tag === "textarea" || tag === "input" || tag === "select" || e.ctrlKey || e.metaKey || e.altKey) return;
    const outcome = { "1": "a", "2": "b", "3": "tie", "4": "both_bad" }[e.key];
    if (outcome) vote(outcome);
    else if (e.key === "n") send({ type: "new_round" });
    else if (e.key === "r" && !ui.regenerate.disabled) send({ type: "regenerate" });
  });
  connect();
})();
