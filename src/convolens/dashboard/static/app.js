// convolens dashboard: draws the server-built Plotly figures and links insights to their
// evidence in the transcript. No framework, no build step.
(function () {
  "use strict";

  function drawCharts() {
    if (!window.Plotly) return;
    document.querySelectorAll("[data-chart]").forEach(function (el) {
      var source = document.getElementById("fig-" + el.dataset.chart);
      if (!source) return;
      var fig = JSON.parse(source.textContent);
      window.Plotly.newPlot(el, fig.data, fig.layout, {
        displaylogo: false,
        responsive: true,
        modeBarButtonsToRemove: ["select2d", "lasso2d"],
      }).then(function () {
        el.dataset.rendered = "true";
      });
      if (el.dataset.chart === "trajectory") {
        // A point's customdata is its utterance's seq: clicking it jumps there.
        el.on("plotly_click", function (event) {
          var point = event.points && event.points[0];
          if (point) jumpTo(document.getElementById("u-" + point.customdata));
        });
      }
    });
  }

  function jumpTo(el, mark) {
    if (!el) return;
    el.scrollIntoView({ behavior: "smooth", block: "center" });
    var target = mark || el;
    target.classList.add("flash");
    setTimeout(function () { target.classList.remove("flash"); }, 1600);
  }

  function visibleKinds() {
    var on = new Set();
    document.querySelectorAll("#legend input[data-kind]").forEach(function (box) {
      if (box.checked) on.add(box.dataset.kind);
    });
    return on;
  }

  function kindsOf(mark) {
    // Classes are in priority order: k-tracker before k-topic, etc.
    return Array.prototype.filter.call(mark.classList, function (c) {
      return c.indexOf("k-") === 0;
    }).map(function (c) { return c.slice(2); });
  }

  function refreshMarks() {
    var on = visibleKinds();
    document.querySelectorAll("mark.ev").forEach(function (mark) {
      var shown = kindsOf(mark).filter(function (k) { return on.has(k); });
      mark.classList.toggle("off", shown.length === 0);
      if (shown.length) mark.dataset.top = shown[0];
    });
  }

  function showKind(kind) {
    var box = document.querySelector('#legend input[data-kind="' + kind + '"]');
    if (box && !box.checked) {
      box.checked = true;
      refreshMarks();
    }
  }

  function wireInsights() {
    document.querySelectorAll("#legend input[data-kind]").forEach(function (box) {
      box.addEventListener("change", refreshMarks);
    });
    document.querySelectorAll(".ev-link[data-ref]").forEach(function (link) {
      link.addEventListener("click", function (event) {
        event.preventDefault();
        showKind(link.dataset.kind);
        var ref = link.dataset.ref;
        var marks = Array.prototype.filter.call(document.querySelectorAll("mark.ev"), function (m) {
          return m.dataset.ev.split(" ").indexOf(ref) >= 0;
        });
        if (marks.length) jumpTo(marks[0].closest(".utt"), marks[0]);
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    drawCharts();
    wireInsights();
  });
})();
