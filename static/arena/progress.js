// Keeps every .run-progress block current: while its run is queued or running, polls its
// data-run-url every two seconds and writes the answer into the block's data-run-field
// elements. Two kinds of block use it:
// - templates/arena/_run_progress.html, any background run (/runs/<id>.json);
// - templates/arena/judge_run.html, a judge run (/judge/runs/<id>.json), which adds the judge's
//   figures so far (parse failures, position consistency, first-position wins).
// A field the block does not have is skipped; a field the answer does not have is left as is.
(function () {
  "use strict";
  var POLL_MS = 2000;
  var UNDER_WAY = { queued: true, running: true };

  function field(block, name) {
    return block.querySelector('[data-run-field="' + name + '"]');
  }

  function setText(block, name, text) {
    var el = field(block, name);
    if (el && text !== undefined && text !== null) el.textContent = String(text);
  }

  function percent(x) {
    return Math.round(100 * x);
  }

  // As templates/arena/judge_estimate.html: "62% (55–70)", the range muted; "—" when unknown.
  function setEstimate(block, name, estimate) {
    var el = field(block, name);
    if (!el) return;
    if (!estimate) {
      var none = document.createElement("span");
      none.className = "muted";
      none.textContent = "—";
      el.replaceChildren(none);
      return;
    }
    var range = document.createElement("span");
    range.className = "muted";
    range.textContent = "(" + percent(estimate.lower) + "–" + percent(estimate.upper) + ")";
    el.replaceChildren(percent(estimate.value) + "% ", range);
  }

  function finished(run) {
    return run.finished !== undefined ? !!run.finished : !UNDER_WAY[run.status];
  }

  function show(block, run) {
    block.dataset.status = run.status;
    setText(block, "status", run.status_display || run.status);
    var bar = field(block, "bar");
    if (bar) {
      bar.max = Math.max(run.total, 1);
      bar.value = run.done + run.failed;
      bar.textContent = run.done + " / " + run.total;
    }
    setText(
      block,
      "counts",
      run.done + " of " + run.total + " done" + (run.failed ? ", " + run.failed + " failed" : "")
    );
    setText(block, "done", run.done);
    setText(block, "total", run.total);
    setText(block, "failed", run.failed);
    var message = field(block, "message");
    if (message) {
      message.textContent = run.message;
      message.hidden = !run.message;
    }
    if (run.stats) {
      setText(block, "parse-failures", run.stats.parse_failures);
      setEstimate(block, "consistency", run.stats.consistency);
      setEstimate(block, "first-position", run.stats.first_position);
    }
  }

  function follow(block) {
    var url = block.dataset.runUrl;
    if (!url || !UNDER_WAY[block.dataset.status]) return;
    function poll() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (!response.ok) throw new Error("HTTP " + response.status);
          return response.json();
        })
        .then(function (run) {
          show(block, run);
          if (!finished(run)) window.setTimeout(poll, POLL_MS);
          else if (block.hasAttribute("data-reload-when-done")) window.location.reload();
        })
        .catch(function () {
          window.setTimeout(poll, POLL_MS * 5); // server restarting or offline: slow down
        });
    }
    window.setTimeout(poll, POLL_MS);
  }

  function start() {
    document.querySelectorAll(".run-progress").forEach(follow);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
