// The revealed battle's rounds: the prompt as plain text, each answer as sanitized Markdown.
(function () {
  "use strict";
  const rounds = JSON.parse(document.getElementById("transcript").textContent);
  ["a", "b"].forEach((side) => {
    const pane = document.getElementById("transcript-" + side);
    rounds.forEach((round) => {
      const prompt = document.createElement("div");
      prompt.className = "msg user";
      prompt.textContent = round.prompt;
      const answer = document.createElement("div");
      answer.className = "msg assistant markdown";
      ArenaRender.renderMarkdown(answer, round[side]);
      pane.append(prompt, answer);
    });
  });
})();
