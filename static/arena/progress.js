// Keeps every .run-progress block (templates/arena/_run_progress.html) current: while its run
// is queued or running, polls its data-run-url (/runs/<id>.json) every two seconds.
(function () {
  "use strict";
  var POLL_MS = 2000;
  var FINISHED = { done: true, failed: true };

  function field(block, name) {
    return block.querySelector('[data-run-field="' + name + '"]');
  }

  function show(block, run) {
    block.dataset.status = run.status;
    field(block, "status").textContent = run.status_display;
    var bar = field(block, "bar");
    bar.max = Math.max(run.total, 1);
    bar.value = run.done + run.failed;
    bar.textContent = run.done + " / " + run.total;
    field(block, "counts").textContent =
      run.done + " of " + run.total + " done" + (run.failed ? ", " + run.failed + " failed" : "");
    var message = field(block, "message");
    message.textContent = run.message;
    message.hidden = !run.message;
  }

  function follow(block) {
    var url = block.dataset.runUrl;
    if (!url || FINISHED[block.dataset.status]) return;
    function poll() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (!response.ok) throw new Error("HTTP " + response.status);
          return response.json();
        })
        .then(function (run) {
          show(block, run);
          if (!run.finished) window.setTimeout(poll, POLL_MS);
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
