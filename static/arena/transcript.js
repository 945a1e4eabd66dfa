// The revealed battle's rounds: the prompt as plain text, each answer as sanitized Markdown.
(function () {
  "use strict";
  // Both panes are found before any answer is rendered, so an answer cannot stand in for one.
  const data = document.getElementById("transcript");
  const panes = { a: document.getElementById("transcript-a"), b: document.getElementById("transcript-b") };
  const rounds = JSON.parse(data.textContent);
  ["a", "b"].forEach((side) => {
    rounds.forEach((round) => {
      const prompt = document.createElement("div");
      prompt.className = "msg user";
      prompt.textContent = round.prompt;
      const answer = document.createElement("div");
      answer.className = "msg assistant markdown";
      ArenaRender.renderMarkdown(answer, round[side]);
      if (!(round[side] || "").trim()) answer.dataset.empty = "1";
      panes[side].append(prompt, answer);
    });
  });
})();
