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

  // -- column sorting: click a header of any exported table (numbers, durations, shares
  // and dates sort by value; "–"/empty cells, which are missing values, always go last).
  function cellValue(cell) {
    var text = (cell.dataset.sort || cell.textContent || "").trim();
    if (text === "" || text === "–" || text === "—" || text === "n/a") return null;
    var clock = text.match(/^(?:(\d+)h\s*)?(?:(\d+)m\s*)?(?:(\d+(?:\.\d+)?)\s*s)?$/);
    if (clock && (clock[1] || clock[2] || clock[3])) {
      return 3600 * (+clock[1] || 0) + 60 * (+clock[2] || 0) + (+clock[3] || 0);
    }
    var number = text.replace(/−/g, "-").replace(/,/g, "").match(/^[+-]?\d+(?:\.\d+)?(?=\s*%?(?:\s|$|\())/);
    if (number) return parseFloat(number[0]);
    return text.toLowerCase();
  }

  function compare(a, b) {
    if (a === null || b === null) return a === b ? 0 : a === null ? 1 : -1;
    if (typeof a === typeof b) return a < b ? -1 : a > b ? 1 : 0;
    return typeof a === "number" ? -1 : 1;
  }

  function sortBy(table, index, header) {
    var body = table.tBodies[0];
    if (!body) return;
    var descending = header.getAttribute("aria-sort") === "ascending";
    table.querySelectorAll("thead th").forEach(function (th) { th.removeAttribute("aria-sort"); });
    header.setAttribute("aria-sort", descending ? "descending" : "ascending");
    var rows = Array.prototype.slice.call(body.rows);
    // Summary rows (team mean, top quartile) and "nothing found" rows stay at the bottom.
    var fixed = rows.filter(function (r) { return r.classList.contains("team") || r.cells.length < 2; });
    var sortable = rows.filter(function (r) { return fixed.indexOf(r) < 0; });
    sortable.sort(function (x, y) {
      var a = x.cells[index] ? cellValue(x.cells[index]) : null;
      var b = y.cells[index] ? cellValue(y.cells[index]) : null;
      if (a === null || b === null) return compare(a, b);
      return descending ? compare(b, a) : compare(a, b);
    });
    sortable.concat(fixed).forEach(function (r) { body.appendChild(r); });
  }

  function wireSorting() {
    document.querySelectorAll("table[data-export]:not([data-nosort])").forEach(function (table) {
      var heads = table.querySelectorAll("thead th");
      heads.forEach(function (th, index) {
        th.classList.add("sortable");
        th.tabIndex = 0;
        th.title = "sort by this column";
        th.addEventListener("click", function () { sortBy(table, index, th); });
        th.addEventListener("keydown", function (event) {
          if (event.key === "Enter" || event.key === " ") { event.preventDefault(); sortBy(table, index, th); }
        });
      });
    });
  }

  // -- an upload's job: poll its status until it ends, then point to the results.
  function watchJob() {
    var panel = document.getElementById("job");
    if (!panel) return;
    function show(state) {
      document.getElementById("job-status").textContent = state.status;
      document.getElementById("job-stage").textContent = state.stage || "";
      var bar = document.getElementById("job-progress");
      bar.value = state.status === "completed" ? 1 : (state.progress || 0);
      var error = document.getElementById("job-error");
      error.hidden = !state.error;
      error.textContent = state.error || "";
      var list = document.getElementById("job-rejects");
      list.textContent = "";
      (state.rejects || []).forEach(function (text) {
        var item = document.createElement("li");
        item.textContent = text;
        list.appendChild(item);
      });
      if (state.status === "completed") {
        document.getElementById("job-summary").textContent =
          (state.conversations || 0) + " conversation(s) read, " + (state.new || 0) + " new. ";
        document.getElementById("job-done").hidden = false;
      }
      panel.dataset.status = state.status;
    }
    function poll() {
      fetch(panel.dataset.statusUrl, { credentials: "same-origin", cache: "no-store" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (state) {
          if (!state) return;
          show(state);
          if (!state.done) setTimeout(poll, 1000);
        })
        .catch(function () { setTimeout(poll, 3000); });
    }
    poll();
  }

  document.addEventListener("DOMContentLoaded", function () {
    drawCharts();
    wireInsights();
    wireSorting();
    watchJob();
    // A page waiting on a job it shows (the taxonomy validation): read it again shortly.
    var waiting = document.querySelector("[data-reload-s]");
    if (waiting) setTimeout(function () { location.reload(); }, 1000 * Number(waiting.dataset.reloadS));
  });
})();
