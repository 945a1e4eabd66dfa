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
    newRound: byId("new-round"), pick: byId("prompt-pick"), followup: byId("followup-note"),
    connection: byId("connection"), connectionText: byId("connection-text"), reconnect: byId("reconnect"),
    confirm: byId("confirm-empty"), confirmText: byId("confirm-empty-text"),
    confirmYes: byId("confirm-empty-yes"), confirmNo: byId("confirm-empty-no"),
    suggestions: byId("suggestions"),
    pane: { a: byId("pane-a"), b: byId("pane-b") },
    conv: { a: byId("conv-a"), b: byId("conv-b") },
    status: { a: byId("status-a"), b: byId("status-b") },
    title: { a: byId("pane-a").querySelector("header h2"), b: byId("pane-b").querySelector("header h2") },
  };
  const TITLES = { a: "Model A", b: "Model B" };
  const OUTCOMES = { a: "A is better", b: "B is better", tie: "Tie", both_bad: "Both are bad" };
  // Recorded (demo) models answer only the suggested prompts, and only a battle's first one.
  const picker = root.dataset.picker === "1";
  const NO_FOLLOW_UP = "Recorded models answer only a battle's first prompt: no follow-ups or " +
    "regenerated answers. Vote, then start a new round.";
  const voteButtons = Array.from(root.querySelectorAll(".votes button"));
  const state = { socket: null, connected: false, streaming: false, canVote: false, voted: false,
                  battle: null, current: { a: null, b: null }, text: { a: "", b: "" },
                  empty: { a: false, b: false }, pending: new Set(), pendingVote: null };

  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const socket = new WebSocket(scheme + location.host + root.dataset.wsPath);
    socket.addEventListener("open", () => {
      if (socket !== state.socket) return;
      const again = state.everConnected;
      state.connected = true; state.everConnected = true;
      ui.connection.hidden = true;
      if (again) {  // a fresh socket knows no battle: start from an empty page
        startOver();
        setNotice("Reconnected. The battle that was open is gone; send a prompt to start a new one.");
      }
      refreshControls();
    });
    socket.addEventListener("message", (event) => {
      if (socket === state.socket) handle(JSON.parse(event.data));
    });
    socket.addEventListener("close", () => {
      if (socket !== state.socket) return;
      const wasConnected = state.connected;
      state.connected = false; state.streaming = false;
      ["a", "b"].forEach((s) => {
        if (ui.status[s].textContent.startsWith("answering")) ui.status[s].textContent = "cut off: connection lost";
      });
      enableVotes(false); hideConfirm(); refreshControls();
      ui.connectionText.textContent = wasConnected
        ? "The connection to the server was lost; answers that were still coming are cut off."
        : "Could not connect to the server.";
      ui.connection.hidden = false;
      ui.reconnect.disabled = false;
      setNotice("");
    });
    state.socket = socket;
  }
  function send(message) {
    if (!state.socket || state.socket.readyState !== WebSocket.OPEN) {
      setNotice("Not connected; use Reconnect.", true); return false;
    }
    state.socket.send(JSON.stringify(message));
    return true;
  }
  function setNotice(text, isError) {
    const el = ui.notice;
    el.hidden = !text; el.textContent = text || "";
    el.classList.toggle("error", !!isError);
  }
  // Send, Regenerate, New round, the category and the prompt picker, from the state.
  function refreshControls() {
    const off = !state.connected;
    const inBattle = state.battle !== null;
    const followUpBlocked = picker && inBattle;
    ui.send.disabled = off || state.streaming || state.voted || followUpBlocked;
    ui.regenerate.disabled = off || state.streaming || state.voted || !inBattle || picker;
    ui.regenerate.title = picker ? NO_FOLLOW_UP : "Replace the last answers (key r)";
    ui.newRound.disabled = off;
    if (ui.category) ui.category.disabled = inBattle;  // it labels a battle's first prompt only
    if (ui.pick) ui.pick.disabled = followUpBlocked;
    ui.followup.hidden = !(followUpBlocked && !state.voted);
    ui.followup.textContent = NO_FOLLOW_UP;
    // A control disabled while focused would swallow the vote keys (1-4, n, r): let go of it.
    const focused = document.activeElement;
    if (focused && focused !== document.body && focused.disabled) focused.blur();
  }
  function setBusy(busy) {
    state.streaming = busy;
    refreshControls();
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
  function markEmpty(side, empty) {
    state.empty[side] = empty;
    if (empty) ui.pane[side].dataset.empty = "1"; else delete ui.pane[side].dataset.empty;
  }
  function resetPanes() {
    ["a", "b"].forEach((s) => {
      ui.conv[s].replaceChildren(); ui.status[s].textContent = ""; ui.title[s].textContent = TITLES[s];
      markEmpty(s, false);
    });
    ui.reveal.hidden = true; ui.reveal.replaceChildren();
  }
  function startOver() {
    state.battle = null; state.voted = false; state.streaming = false;
    resetPanes(); enableVotes(false); hideConfirm(); setNotice("");
    delete ui.form.dataset.round;
    if (ui.category) ui.category.value = "";  // each battle's category is chosen afresh
    if (ui.pick) ui.pick.value = "";
    if (picker) ui.prompt.value = "";
  }
  const plural = (n, word) => n + " " + word + (n === 1 ? "" : "s");
  function fmtStats(st) {
    const parts = [];
    if (st.ttft_ms != null) parts.push("first token " + st.ttft_ms + " ms");
    if (st.total_ms != null) parts.push("total " + (st.total_ms / 1000).toFixed(1) + " s");
    if (st.tokens_out != null) parts.push(plural(st.tokens_out, "token") + (st.usage_estimated ? " (estimated)" : ""));
    if (st.cost != null) parts.push("$" + Number(st.cost).toFixed(5));
    return parts.join(" · ");
  }
  function element(tag, className, text) {
    const el = document.createElement(tag);
    if (className) el.className = className;
    if (text != null) el.textContent = text;
    return el;
  }

  function handle(m) {
    switch (m.type) {
      case "start": {
        state.battle = m.battle; setBusy(true); enableVotes(false); hideConfirm(); setNotice("");
        ui.form.dataset.round = "answering";  // the round's phase, for scripts and tests
        if (m.attempt === 0) ui.prompt.value = "";
        const prompt = state.lastPrompt || "";
        ["a", "b"].forEach((s) => {
          if (m.attempt > 0) {  // regenerate: drop the replaced answer
            const conv = ui.conv[s]; if (conv.lastChild) conv.removeChild(conv.lastChild);
          } else {
            addBubble(s, "user", prompt);
          }
          state.text[s] = ""; state.current[s] = addBubble(s, "assistant", ""); markEmpty(s, false);
          ui.status[s].textContent = "answering…";
        });
        break;
      }
      case "chunk":
        state.text[m.side] += m.text; scheduleRender(m.side); break;
      case "side_done": {
        scheduleRender(m.side);
        const empty = !state.text[m.side].trim();
        markEmpty(m.side, empty);
        if (empty && state.current[m.side]) state.current[m.side].dataset.empty = "1";
        ui.status[m.side].textContent = "done · " + (empty ? "empty answer · " : "") + fmtStats(m.stats);
        break;
      }
      case "error":
        if (m.side) {
          ui.status[m.side].textContent = "failed";
          if (state.current[m.side]) {
            const err = element("p", "error", m.message);
            state.current[m.side].appendChild(err);
          }
        } else {
          setNotice(m.message, true);
        }
        break;
      case "ready": {
        setBusy(false); enableVotes(m.can_vote);
        const empty = ["a", "b"].filter((s) => state.empty[s]).map((s) => s.toUpperCase());
        let text = m.notice || (m.can_vote ? "Both answers are in. Which is better?" : "");
        if (m.can_vote && empty.length) {
          text = (empty.length === 2 ? "Both answers are empty." : "Answer " + empty[0] + " is empty.") +
            " " + (m.notice || "Which is better?");
        }
        setNotice(text, !m.can_vote);
        ui.form.dataset.round = "ready";
        break;
      }
      case "revealed":
        state.voted = true; enableVotes(false); setBusy(false); hideConfirm();
        reveal(m);
        break;
      case "new_round":
        startOver(); refreshControls();
        break;
    }
  }

  // After the vote: who was who, what you voted, each side's numbers, and where to go next.
  function reveal(m) {
    ["a", "b"].forEach((s) => {
      ui.title[s].textContent = s.toUpperCase() + ": " + m[s].name;
      ui.status[s].textContent = [m[s].organisation, fmtStats(m[s].stats)].filter(Boolean).join(" · ");
    });
    const r = ui.reveal;
    r.replaceChildren();
    r.appendChild(element("p", "reveal-line", m.counted
      ? "Thanks, your vote counts." : "Vote stored but not counted: " + m.void_reason + "."));
    r.appendChild(element("p", "reveal-voted", "You voted: " + (OUTCOMES[m.outcome] || m.outcome) + "."));
    const list = element("dl", "reveal-sides");
    ["a", "b"].forEach((s) => {
      const item = element("div");
      item.appendChild(element("dt", null, s.toUpperCase() + ": " + m[s].name +
        (m[s].organisation ? " (" + m[s].organisation + ")" : "")));
      item.appendChild(element("dd", null, fmtStats(m[s].stats) || "no statistics"));
      list.appendChild(item);
    });
    r.appendChild(list);
    const next = element("p", "reveal-next");
    const again = element("button", null, "Next battle");
    again.type = "button";
    again.addEventListener("click", () => send({ type: "new_round" }));
    const board = element("a", "button secondary", "Leaderboard");
    board.href = root.dataset.leaderboardUrl;
    next.append(again, " ", board);
    r.appendChild(next);
    r.hidden = false;
    setNotice("Press Next battle (n) to battle again.");
  }

  // An empty answer is easy to vote past: ask once more before such a vote goes out.
  function hideConfirm() { ui.confirm.hidden = true; state.pendingVote = null; }
  function vote(outcome, confirmed) {
    if (!state.canVote) return;
    const empty = ["a", "b"].filter((s) => state.empty[s]);
    if (empty.length && !confirmed) {
      state.pendingVote = outcome;
      const which = empty.length === 2 ? "Both answers are empty." : "Answer " + empty[0].toUpperCase() + " is empty.";
      ui.confirmText.textContent = which + " Vote “" + OUTCOMES[outcome] + "” anyway?";
      ui.confirm.hidden = false; ui.confirmYes.focus();
      return;
    }
    hideConfirm();
    enableVotes(false);  // one vote: a double click must not send a second one
    if (!send({ type: "vote", outcome: outcome })) enableVotes(true);
  }
  ui.confirmYes.addEventListener("click", () => { const o = state.pendingVote; if (o) vote(o, true); });
  ui.confirmNo.addEventListener("click", () => { hideConfirm(); voteButtons[0].focus(); });

  ui.form.addEventListener("submit", (e) => {
    e.preventDefault();
    if (ui.send.disabled) return;
    const text = ui.prompt.value;
    if (!text.trim()) { setNotice(picker ? "Choose a prompt first." : "Type a prompt first.", true); return; }
    if (state.streaming) return;
    state.lastPrompt = text;
    const category = ui.category ? ui.category.value || null : null;
    send({ type: "prompt", text: text, category: state.battle === null ? category : null });
    // The text stays in the box until the server starts the round: a refused prompt is not lost.
  });
  ui.prompt.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); ui.form.requestSubmit(); }
  });
  if (ui.pick) ui.pick.addEventListener("change", () => { ui.prompt.value = ui.pick.value; });
  voteButtons.forEach((b) => b.addEventListener("click", () => vote(b.dataset.outcome)));
  ui.regenerate.addEventListener("click", () => send({ type: "regenerate" }));
  ui.newRound.addEventListener("click", () => send({ type: "new_round" }));
  ui.reconnect.addEventListener("click", () => {
    ui.reconnect.disabled = true;
    ui.connectionText.textContent = "Reconnecting…";
    connect();
  });
  root.querySelectorAll(".suggestion").forEach((b) => b.addEventListener("click", () => {
    if (ui.pick) {
      if (ui.pick.disabled) { setNotice(NO_FOLLOW_UP, true); return; }
      ui.pick.value = b.textContent;
    }
    ui.prompt.value = b.textContent;
    (ui.pick || ui.prompt).focus();
  }));
  // On a phone the list of suggestions is long: closed until asked for.
  if (ui.suggestions && window.matchMedia("(max-width: 720px)").matches) ui.suggestions.open = false;
  document.addEventListener("keydown", (e) => {
    const tag = (e.target.tagName || "").toLowerCase();
    // A field keeps its keys, unless it was disabled while focused (the prompt picker once sent).
    const typing = (tag === "textarea" || tag === "input" || tag === "select") && !e.target.disabled;
    if (typing || e.ctrlKey || e.metaKey || e.altKey) return;
    const outcome = { "1": "a", "2": "b", "3": "tie", "4": "both_bad" }[e.key];
    if (outcome) vote(outcome);
    else if (e.key === "n" && !ui.newRound.disabled) send({ type: "new_round" });
    else if (e.key === "r" && !ui.regenerate.disabled) send({ type: "regenerate" });
    else if (e.key === "Escape" && !ui.confirm.hidden) hideConfirm();
  });
  refreshControls();
  connect();
})();
