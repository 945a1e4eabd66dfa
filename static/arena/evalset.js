(function () {
  "use strict";
  // The page's elements are found before either answer is rendered, and never again by id:
  // whatever an answer contains, it cannot stand in for the other pane or the vote form.
  const data = document.getElementById("answers");
  const panes = { a: document.getElementById("answer-a"), b: document.getElementById("answer-b") };
  const form = document.getElementById("vote-form");
  const buttons = {};
  form.querySelectorAll("button[value]").forEach((b) => { buttons[b.value] = b; });
  const answers = JSON.parse(data.textContent);
  ArenaRender.renderMarkdown(panes.a, answers.a);
  ArenaRender.renderMarkdown(panes.b, answers.b);
  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const outcome = { "1": "a", "2": "b", "3": "tie", "4": "both_bad" }[e.key];
    if (outcome && buttons[outcome]) form.requestSubmit(buttons[outcome]);
  });
})();
