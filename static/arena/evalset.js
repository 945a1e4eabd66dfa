(function () {
  "use strict";
  // The page's elements are found before either answer is rendered, and never again by id:
  // whatever an answer contains, it cannot stand in for the other pane or the vote form.
  const data = document.getElementById("answers");
  const panes = { a: document.getElementById("answer-a"), b: document.getElementById("answer-b") };
  const form = document.getElementById("vote-form");
  const confirm = {
    box: document.getElementById("confirm-empty"), text: document.getElementById("confirm-empty-text"),
    yes: document.getElementById("confirm-empty-yes"), no: document.getElementById("confirm-empty-no"),
  };
  const buttons = {};
  form.querySelectorAll("button[value]").forEach((b) => { buttons[b.value] = b; });
  const answers = JSON.parse(data.textContent);
  ArenaRender.renderMarkdown(panes.a, answers.a);
  ArenaRender.renderMarkdown(panes.b, answers.b);
  const empty = ["a", "b"].filter((s) => !(answers[s] || "").trim());
  empty.forEach((s) => { panes[s].dataset.empty = "1"; });

  // A vote with an empty answer on the page is asked about once more before it goes out.
  let confirmed = false, pending = null;
  form.addEventListener("submit", (e) => {
    if (!empty.length || confirmed) return;
    e.preventDefault();
    pending = e.submitter || null;
    const which = empty.length === 2 ? "Both answers are empty." : "Answer " + empty[0].toUpperCase() + " is empty.";
    const label = pending ? pending.firstChild.textContent.trim() : "this vote";
    confirm.text.textContent = which + " Vote “" + label + "” anyway?";
    confirm.box.hidden = false;
    confirm.yes.focus();
  });
  confirm.yes.addEventListener("click", () => {
    confirmed = true;
    form.requestSubmit(pending || undefined);
  });
  confirm.no.addEventListener("click", () => { confirm.box.hidden = true; pending = null; });
  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const outcome = { "1": "a", "2": "b", "3": "tie", "4": "both_bad" }[e.key];
    if (outcome && buttons[outcome]) form.requestSubmit(buttons[outcome]);
  });
})();
