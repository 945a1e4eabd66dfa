// The leaderboard page: its status (computing, a newer board ready), sorting the table by a
// column, and the pictures of the snapshot, every number from the snapshot's JSON.
(function () {
  "use strict";

  // --- status: "computing…" until the board is there, then the page shows it ------------
  const computing = document.getElementById("computing");
  const boardStatus = document.getElementById("board-status");
  const SLOW_S = 120;

  function poll(url, every, onStatus) {
    let timer = null;
    const tick = () => {
      fetch(url, { credentials: "same-origin", cache: "no-store" })
        .then((response) => (response.ok ? response.json() : null))
        .catch(() => null)
        .then((status) => {
          if (status && onStatus(status) === false) return;
          timer = setTimeout(tick, every());
        });
    };
    timer = setTimeout(tick, every());
    return () => clearTimeout(timer);
  }

  if (computing && computing.dataset.refresh) {
    const started = Date.now();
    const field = (name) => computing.querySelector(`[data-field="${name}"]`);
    const stage = field("stage"), elapsed = field("elapsed"), slow = field("slow");
    const STAGES = { queued: "waiting for its turn", running: "fitting the votes",
                     first: "the first boards are being fitted beside the server" };
    const clock = setInterval(() => {
      const s = Math.round((Date.now() - started) / 1000);
      elapsed.textContent = s + " s";
      slow.hidden = s < SLOW_S;
    }, 1000);
    poll(computing.dataset.statusUrl, () => 2000, (status) => {
      if (status.snapshot) { clearInterval(clock); location.reload(); return false; }
      if (status.refresh) { stage.textContent = STAGES[status.refresh] || stage.textContent; return true; }
      // The refresh ended without a board for this choice: say so, as the server would.
      clearInterval(clock);
      computing.replaceChildren();
      const p = document.createElement("p");
      p.textContent = "No leaderboard for this choice yet: the refresh found nothing to rate here.";
      computing.appendChild(p);
      return false;
    });
  } else if (computing) {
    // Nothing on its way when the page was made: look now and then whether that changed.
    poll(computing.dataset.statusUrl, () => 10000, (status) => {
      if (status.snapshot || status.refresh) { location.reload(); return false; }
      return true;
    });
  }

  if (boardStatus) {
    const note = document.getElementById("refresh-note");
    const shown = Number(boardStatus.dataset.snapshot);
    let busy = !!note.dataset.refresh;
    poll(boardStatus.dataset.statusUrl, () => (busy ? 3000 : 20000), (status) => {
      if (status.snapshot && status.snapshot !== shown) {
        note.replaceChildren("A newer board is ready: ");
        const link = document.createElement("a");
        link.href = location.href; link.textContent = "show it";
        note.appendChild(link);
        return false;
      }
      busy = !!status.refresh;
      note.textContent = busy ? "A newer board is being computed…" : "";
      return true;
    });
  }

  // --- sorting the table by any column (buttons in its headers) ---------------------------
  const board = document.getElementById("board");
  if (board) {
    const headers = Array.from(board.tHead.rows[0].cells);
    const body = board.tBodies[0];
    function sortBy(col) {
      const th = headers[col];
      const now = th.getAttribute("aria-sort");
      const dir = now ? (now === "ascending" ? "desc" : "asc") : th.dataset.sort;
      headers.forEach((h) => h.removeAttribute("aria-sort"));
      th.setAttribute("aria-sort", dir === "asc" ? "ascending" : "descending");
      const text = th.dataset.type === "text";
      const rows = Array.from(body.rows);
      rows.sort((x, y) => {
        const a = x.cells[col].dataset.value, b = y.cells[col].dataset.value;
        if (a === "" || b === "") return (a === "") - (b === "") || rankOf(x) - rankOf(y);
        let c = text ? a.localeCompare(b) : Number(a) - Number(b);
        if (dir === "desc") c = -c;
        return c || rankOf(x) - rankOf(y);
      });
      body.append(...rows);
    }
    const rankOf = (tr) => Number(tr.cells[0].dataset.value);
    headers.forEach((th, col) => {
      const button = th.querySelector("button.sort");
      if (button) button.addEventListener("click", () => sortBy(col));
    });
  }

  // --- pictures ----------------------------------------------------------------------------
  const section = document.getElementById("charts");
  if (!section || typeof Chart === "undefined") return;
  fetch(section.dataset.snapshotUrl, { credentials: "same-origin" })
    .then((response) => response.json())
    .then((snapshot) => draw(snapshot.results, snapshot.pictures));

function draw(results, pictures) {
  const models = results.models;
  const accent = "#2456d6";
  const phone = window.matchMedia("(max-width: 720px)").matches;

  Chart.defaults.font.family = "system-ui, sans-serif";
  Chart.defaults.animation = false;

  // Ratings with interval bars, the ranked models in the table's order (rank, then rating):
  // a floating bar from lower to upper, a dot at the rating; one 18 px row per model.
  const rows = results.rows.filter((r) => r.rank !== null)
    .sort((x, y) => x.rank_ub - y.rank_ub || y.rating - x.rating);
  const ratings = document.getElementById("chart-ratings");
  ratings.parentElement.style.height = Math.max(220, rows.length * 18 + 70) + "px";
  new Chart(ratings, {
    data: {
      labels: rows.map((r) => r.rank_ub + ". " + r.model),
      datasets: [
        { type: "bar", label: "95% interval", data: rows.map((r) => [r.lower, r.upper]),
          backgroundColor: "rgba(36, 86, 214, 0.25)", borderColor: accent, borderWidth: 1,
          barPercentage: 0.7, categoryPercentage: 1 },
        { type: "scatter", label: "Rating", data: rows.map((r) => ({ x: r.rating, y: r.rank_ub + ". " + r.model })),
          backgroundColor: accent, pointRadius: 3 },
      ],
    },
    options: {
      indexAxis: "y", maintainAspectRatio: false,
      scales: {
        x: { position: "top", beginAtZero: false, suggestedMin: Math.min(...rows.map((r) => r.lower)) - 10,
             suggestedMax: Math.max(...rows.map((r) => r.upper)) + 10,
             title: { display: true, text: "Rating (95% interval)" } },
        y: { type: "category", ticks: { autoSkip: false, font: { size: phone ? 10 : 12 } } },
      },
      plugins: { legend: { display: false }, tooltip: { callbacks: {
        label: (ctx) => { const r = rows[ctx.dataIndex];
          return `rating ${Math.round(r.rating)}, 95% ${Math.round(r.lower)}–${Math.round(r.upper)}, ${r.votes} votes`; } } } },
    },
  });

  // A heatmap keeps a readable cell (14 px) and label whatever the model count: past the
  // figure's width it grows, and its frame scrolls sideways (on a phone, mostly).
  const CELL = 14, LABELS = 190;
  function heatmap(canvasId, matrix, color, label, format) {
    const canvas = document.getElementById(canvasId);
    const box = canvas.parentElement;
    const needed = models.length * CELL + LABELS;
    if (models.length > 25) canvas.closest("figure").classList.add("full");
    const width = Math.max(needed, box.parentElement.clientWidth);
    box.style.width = width + "px";
    box.style.height = Math.max(needed, Math.min(width, 448)) + "px";
    const data = [];
    matrix.forEach((row, i) => row.forEach((v, j) => {
      if (i !== j && v !== null) data.push({ x: models[j], y: models[i], v: v });
    }));
    const max = Math.max(1e-9, ...data.map((d) => d.v));
    const ticks = { autoSkip: false, font: { size: models.length > 25 ? 10 : 11 } };
    new Chart(canvas, {
      type: "matrix",
      data: { datasets: [{ label: label, data: data,
        backgroundColor: (ctx) => color(ctx.raw ? ctx.raw.v : 0, max),
        width: ({ chart }) => (chart.chartArea || {}).width / models.length - 0.5,
        height: ({ chart }) => (chart.chartArea || {}).height / models.length - 0.5 }] },
      options: {
        maintainAspectRatio: false,
        plugins: { legend: { display: false }, tooltip: { callbacks: {
          title: () => "", label: (ctx) => `${ctx.raw.y} vs ${ctx.raw.x}: ${format(ctx.raw.v)}` } } },
        scales: {
          x: { type: "category", labels: models, offset: true, ticks: { ...ticks, maxRotation: 90, minRotation: 90 }, grid: { display: false } },
          y: { type: "category", labels: models, offset: true, reverse: false, ticks: ticks, grid: { display: false } },
        },
      },
    });
    return max;
  }
  const pw = pictures.pairwise;
  if (pw) {
    heatmap("chart-winprob", pw.prob, (v) => {
      const t = Math.abs(v - 0.5) * 2;  // 0 at even odds, 1 at certainty
      return v >= 0.5 ? `rgba(36, 86, 214, ${t})` : `rgba(214, 92, 36, ${t})`;
    }, "P(row beats column)", (v) => (v * 100).toFixed(1) + "%");
  } else {
    document.getElementById("chart-winprob").closest("figure").hidden = true;
  }
  const most = heatmap("chart-battles", pictures.battles,
    (v, max) => `rgba(36, 86, 214, ${Math.sqrt(v / max)})`, "battles", (v) => v + " battles");
  document.querySelector('#scale-battles [data-field="max"]').textContent =
    Math.round(most) + " battles (square-root scale)";

  const over = results.votes_over_time;
  new Chart(document.getElementById("chart-time"), {
    type: "line",
    data: { labels: over.map((d) => d.day), datasets: [
      { label: "Cumulative", data: over.map((d) => d.cumulative), borderColor: accent, pointRadius: 2 }] },
    options: { maintainAspectRatio: false, plugins: { legend: { display: false } },
      scales: { y: { beginAtZero: true, title: { display: true, text: "Votes" } } } },
  });
}
})();
