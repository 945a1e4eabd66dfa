(function () {
  "use strict";
  const answers = JSON.parse(document.getElementById("answers").textContent);
  ArenaRender.renderMarkdown(document.getElementById("answer-a"), answers.a);
  ArenaRender.renderMarkdown(document.getElementById("answer-b"), answers.b);
  const form = document.getElementById("vote-form");
  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const outcome = { "1": "a", "2": "b", "3": "tie", "4": "both_bad" }[e.key];
    if (!outcome) return;
    const button = form.querySelector('button[value="' + outcome + '"]');
    if (button) form.requestSubmit(button);
  });
})();
