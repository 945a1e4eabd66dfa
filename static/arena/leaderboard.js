// Pictures of one leaderboard snapshot; every number comes from the snapshot's JSON.
(function () {
  "use strict";
  const section = document.getElementById("charts");
  if (!section || typeof Chart === "undefined") return;
  fetch(section.dataset.snapshotUrl, { credentials: "same-origin" })
    .then((response) => response.json())
    .then((snapshot) => draw(snapshot.results, snapshot.pictures));

function draw(results, pictures) {
  const rows = results.rows;
  const models = results.models;
  const accent = "#2456d6";

  Chart.defaults.font.family = "system-ui, sans-serif";
  Chart.defaults.animation = false;

  // Ratings with interval bars: a floating bar from lower to upper, a dot at the rating.
  new Chart(document.getElementById("chart-ratings"), {
    data: {
      labels: rows.map((r) => r.model),
      datasets: [
        { type: "bar", label: "95% interval", data: rows.map((r) => [r.lower, r.upper]),
          backgroundColor: "rgba(36, 86, 214, 0.25)", borderColor: accent, borderWidth: 1,
          barPercentage: 0.6 },
        { type: "scatter", label: "Rating", data: rows.map((r) => ({ x: r.rating, y: r.model })),
          backgroundColor: accent, pointRadius: 3 },
      ],
    },
    options: {
      indexAxis: "y", maintainAspectRatio: false,
      scales: { x: { beginAtZero: false, suggestedMin: Math.min(...rows.map((r) => r.lower)) - 10,
                     suggestedMax: Math.max(...rows.map((r) => r.upper)) + 10,
                     title: { display: true, text: "Rating" } }, y: { type: "category", ticks: { autoSkip: false, font: { size: 10 } } } },
      plugins: { legend: { display: false } },
    },
  });

  // Past 25 models a heatmap takes the full width and grows with the model count, so every
  // row and column keeps a readable label (up to 90 models; beyond, the tooltips name them).
  const many = models.length > 25;
  const labelled = models.length <= 90;
  function heatmap(canvasId, matrix, color, label, format) {
    const canvas = document.getElementById(canvasId);
    if (many) {
      canvas.closest("figure").classList.add("full");
      canvas.parentElement.style.height = Math.max(448, models.length * 13 + 220) + "px";
    }
    const data = [];
    matrix.forEach((row, i) => row.forEach((v, j) => {
      if (i !== j && v !== null) data.push({ x: models[j], y: models[i], v: v });
    }));
    const max = Math.max(1e-9, ...data.map((d) => d.v));
    const ticks = { display: labelled, autoSkip: false, font: { size: many ? 9 : 11 } };
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
          x: { type: "category", labels: models, offset: true, ticks: { ...ticks, maxRotation: 90, minRotation: many ? 90 : 0 }, grid: { display: false } },
          y: { type: "category", labels: models, offset: true, reverse: false, ticks: ticks, grid: { display: false } },
        },
      },
    });
  }
  const pw = pictures.pairwise;
  if (pw) {
    heatmap("chart-winprob", pw.prob, (v) => {
      const t = Math.abs(v - 0.5) * 2;  // 0 at even odds, 1 at certainty
      return v >= 0.5 ? `rgba(36, 86, 214, ${t})` : `rgba(214, 92, 36, ${t})`;
    }, "P(row beats column)", (v) => (v * 100).toFixed(1) + "%");
  }
  heatmap("chart-battles", pictures.battles, (v, max) => `rgba(36, 86, 214, ${Math.sqrt(v / max)})`,
    "battles", (v) => v + " battles");

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
