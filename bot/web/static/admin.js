/* Admin dashboard behaviour: uPlot charts and confirmation prompts.
 *
 * Plain ES2017, no modules, no eval, no inline styles in markup: it runs under
 * the admin pages' strict CSP. Needs /assets/vendor/uplot/uPlot.iife.min.js
 * loaded before it (the global `uPlot`).
 *
 * Charts: each <script type="application/json" class="chart-data"
 * data-target="ID"> holds
 *   {"kind": "time" | "bars",
 *    "x": [...],            // "time": unix seconds (UTC), ascending;
 *                           // "bars": category labels (strings)
 *    "series": [{"label": "Telegram", "values": [1, 2, null, ...]}, ...],
 *    "y_label": "Câu hỏi"}  // optional
 * and is drawn into <div class="chart" id="ID">, which then gets
 * data-drawn="1" (a chart), "empty" (no data: "Chưa có dữ liệu") or "error"
 * (unreadable data: "Không vẽ được biểu đồ"). Nothing is logged to the console.
 *
 * Confirmations: a form submitted with <button class="confirm"
 * data-confirm="..."> asks window.confirm(...) first and is not sent if refused.
 */
(function () {
  "use strict";

  const TZ = "Asia/Ho_Chi_Minh";
  const HEIGHT = 220;
  const DAY = 86400;
  const NO_DATA = "Chưa có dữ liệu";
  const NOT_DRAWN = "Không vẽ được biểu đồ";
  // Okabe-Ito, colour-blind safe; yellow late since it is faint on white.
  const PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#F0E442"];
  // Tick steps for counts: no 0.5 ticks when every value is whole.
  const WHOLE_INCRS = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1e3, 2e3, 2500, 5e3,
    1e4, 2e4, 25e3, 5e4, 1e5, 2e5, 25e4, 5e5, 1e6, 2e6, 5e6, 1e7, 1e8, 1e9];
  // Time axis labels, Vietnamese day-first order. Rows: [min tick step (s), label,
  // then the label added when the year / month / day / hour / minute / second
  // changes, then mode 1 = append that to the label] (uPlot's axis.values format).
  const NL = "\n";
  const TIME_STAMPS = [
    [DAY * 365, "{YYYY}", null, null, null, null, null, null, 1],
    [DAY * 28, "{M}/{YYYY}", null, null, null, null, null, null, 1],
    [DAY, "{D}/{M}", NL + "{YYYY}", null, null, null, null, null, 1],
    [3600, "{H}h", NL + "{D}/{M}", null, NL + "{D}/{M}", null, null, null, 1],
    [60, "{H}:{mm}", NL + "{D}/{M}", null, NL + "{D}/{M}", null, null, null, 1],
    [1, "{H}:{mm}:{ss}", NL + "{D}/{M}", null, NL + "{D}/{M}", null, null, null, 1],
  ];
  const NUMBER = new Intl.NumberFormat("vi-VN", { maximumFractionDigits: 2 });

  const drawn = []; // {box, plot} for resizing

  function formatNumber(value) {
    return value == null ? "–" : NUMBER.format(value);
  }

  function isValue(v) {
    return v === null || (typeof v === "number" && isFinite(v));
  }

  /* The chart JSON, checked; throws on anything that does not fit the contract. */
  function parseSpec(text) {
    const spec = JSON.parse(text);
    if (!spec || typeof spec !== "object" || !Array.isArray(spec.x) || !Array.isArray(spec.series)) {
      throw new Error("chart data: x and series must be arrays");
    }
    const n = spec.x.length;
    if (spec.kind === "time") {
      spec.x.forEach(function (t, i) {
        if (typeof t !== "number" || !isFinite(t) || (i > 0 && t < spec.x[i - 1])) {
          throw new Error("chart data: time x must be ascending numbers");
        }
      });
    } else if (spec.kind === "bars") {
      spec.x.forEach(function (label) {
        if (typeof label !== "string" && typeof label !== "number") throw new Error("chart data: bad label");
      });
    } else {
      throw new Error("chart data: unknown kind");
    }
    spec.series.forEach(function (s) {
      if (!s || typeof s.label !== "string" || !Array.isArray(s.values) ||
          s.values.length !== n || !s.values.every(isValue)) {
        throw new Error("chart data: bad series");
      }
    });
    if (spec.y_label != null && typeof spec.y_label !== "string") throw new Error("chart data: bad y_label");
    return spec;
  }

  function chartWidth(box) {
    // A hidden container (width 0) still gets a usable chart.
    return Math.max(box.clientWidth, 200);
  }

  /* y always includes 0 (counts), with 10% headroom past the extreme values. */
  function yRange(u, min, max) {
    if (min == null || max == null || (min >= 0 && max <= 0)) return [0, 1];
    const lo = Math.min(0, min);
    const hi = Math.max(0, max);
    const pad = (hi - lo) * 0.1;
    return [lo < 0 ? lo - pad : 0, hi > 0 ? hi + pad : 0];
  }

  /* Width in CSS px of the widest of `texts` in the font of axis `axisIdx`. */
  function textWidth(u, axisIdx, texts) {
    const ctx = u.ctx;
    const saved = ctx.font; // uPlot caches the context's font: leave it as found
    ctx.font = u.axes[axisIdx].font[0];
    const widest = texts.reduce(function (m, t) { return Math.max(m, ctx.measureText(t).width); }, 0);
    ctx.font = saved;
    return widest / (window.devicePixelRatio || 1);
  }

  /* y axis width from its widest tick label (uPlot's default is a fixed 50 px). */
  function yAxisSize(u, values, axisIdx, cycleNum) {
    const axis = u.axes[axisIdx];
    if (cycleNum > 1) return axis._size;
    return Math.ceil(axis.ticks.size + axis.gap + textWidth(u, axisIdx, values || []));
  }

  function shorten(label) {
    return label.length > 14 ? label.slice(0, 13) + "…" : label;
  }

  /* uPlot options and data for one spec. */
  function build(spec, width) {
    const isTime = spec.kind === "time";
    const whole = spec.series.every(function (s) {
      return s.values.every(function (v) { return v === null || v % 1 === 0; });
    });
    const yAxis = {
      size: yAxisSize,
      values: function (u, splits) { return splits.map(formatNumber); },
    };
    if (whole) yAxis.incrs = WHOLE_INCRS;
    if (spec.y_label) yAxis.label = spec.y_label;

    const opts = {
      width: width,
      height: HEIGHT,
      // No drag-to-zoom: it fights touch scrolling and needs a reset gesture.
      cursor: { drag: { x: false, y: false, setScale: false } },
      scales: { y: { range: yRange } },
      legend: { show: true },
      axes: [{}, yAxis],
      series: [{}],
    };
    let xs;

    if (isTime) {
      xs = spec.x;
      // Sub-daily data (hourly buckets) shows the hour in the legend too.
      let step = DAY;
      for (let i = 1; i < xs.length; i++) step = Math.min(step, xs[i] - xs[i - 1]);
      opts.tzDate = function (ts) { return uPlot.tzDate(new Date(ts * 1e3), TZ); };
      opts.axes[0] = { values: TIME_STAMPS, space: 40 }; // "{D}/{M}" fits in 40 px
      const stamp = uPlot.fmtDate(step < DAY ? "{D}/{M}/{YYYY} {H}:{mm}" : "{D}/{M}/{YYYY}");
      opts.series[0] = {
        label: step < DAY ? "Thời gian" : "Ngày",
        value: function (u, ts) { return ts == null ? "–" : stamp(opts.tzDate(ts)); },
      };
      if (xs.length === 1) {
        // A single point has no span: show a few days around it (day ticks).
        opts.scales.x = { time: true, range: function () { return [xs[0] - 1.5 * DAY, xs[0] + 1.5 * DAY]; } };
      }
      spec.series.forEach(function (s, j) {
        const colour = PALETTE[j % PALETTE.length];
        opts.series.push({
          label: s.label, stroke: colour, width: 2, value: function (u, v) { return formatNumber(v); },
          points: { show: true, size: 6, stroke: colour, fill: "#fff" },
        });
      });
    } else {
      const labels = spec.x.map(String);
      const n = labels.length;
      const k = Math.max(spec.series.length, 1);
      const GROUP = 0.8; // share of a category's width taken by its bars
      const barWidth = GROUP / k;
      xs = labels.map(function (_, i) { return i; });
      // Category labels: level and whole when each fits its category, else level
      // and shortened, else shortened and turned 45° (all shown while a text line
      // fits per category), else only every 2nd, 5th... one.
      let full = 0; // widest whole label + margin, CSS px; measured once the canvas exists
      let short = 0; // the same, shortened
      let mode = "short"; // "full", "short" or "turned": chosen by `space`, used after
      opts.scales.x = { time: false, range: function () { return [-0.5, n - 0.5]; } };
      opts.axes[0] = {
        incrs: WHOLE_INCRS, // ticks only on whole indices = categories
        grid: { show: false },
        space: function (u, i, min, max, plotWidth) {
          if (!full) {
            full = textWidth(u, 0, labels) + 6;
            short = textWidth(u, 0, labels.map(shorten)) + 6;
          }
          const per = plotWidth / n;
          mode = per >= full ? "full" : per >= short ? "short" : "turned";
          return mode === "full" ? full : mode === "short" ? short : 16;
        },
        rotate: function () { return mode === "turned" ? 45 : 0; },
        size: function (u, values, i) {
          const axis = u.axes[i];
          if (!values || !axis._rotate) return 50; // uPlot's default
          return Math.ceil(axis.ticks.size + axis.gap + (short + 12) * Math.SQRT1_2);
        },
        values: function (u, splits) {
          return splits.map(function (i) {
            return labels[i] === undefined ? "" : mode === "full" ? labels[i] : shorten(labels[i]);
          });
        },
      };
      // Room on the left for the first turned label, beyond what the y axis gives.
      opts.padding = [null, null, null, function (u) {
        if (!u.axes[0]._rotate) return 0; // uPlot's own choice with a left axis
        const first = textWidth(u, 0, [shorten(labels[0])]);
        return Math.max(0, Math.ceil((first + 6) * Math.SQRT1_2 - (u.axes[1]._size || 0)));
      }];
      opts.series[0] = { label: "Mục", value: function (u, i) { return i == null || labels[i] === undefined ? "–" : labels[i]; } };
      opts.cursor.points = { show: false }; // hover dots would sit between grouped bars
      spec.series.forEach(function (s, j) {
        const colour = PALETTE[j % PALETTE.length];
        // Grouped bars: series j takes the j-th slot of each category's group.
        const offsets = xs.map(function (i) { return i - GROUP / 2 + j * barWidth; });
        opts.series.push({
          label: s.label, stroke: colour, fill: colour, width: 0,
          value: function (u, v) { return formatNumber(v); },
          points: { show: false },
          paths: uPlot.paths.bars({
            disp: {
              x0: { unit: 1, values: function () { return offsets; } },
              size: { unit: 1, values: function () { return [barWidth]; } },
            },
          }),
        });
      });
    }
    const data = [xs].concat(spec.series.map(function (s) { return s.values; }));
    return { opts: opts, data: data };
  }

  function fail(box, text, state) {
    box.textContent = text;
    box.setAttribute("data-drawn", state);
  }

  function drawOne(source) {
    const box = document.getElementById(source.getAttribute("data-target") || "");
    if (!box || box.hasAttribute("data-drawn")) return;
    let spec;
    try {
      spec = parseSpec(source.textContent);
    } catch (e) {
      fail(box, NOT_DRAWN, "error");
      return;
    }
    if (spec.x.length === 0 || spec.series.length === 0) {
      fail(box, NO_DATA, "empty");
      return;
    }
    if (typeof uPlot === "undefined") {
      fail(box, NOT_DRAWN, "error"); // the vendored library did not load
      return;
    }
    try {
      const chart = build(spec, chartWidth(box));
      box.textContent = "";
      drawn.push({ box: box, plot: new uPlot(chart.opts, chart.data, box) });
      box.setAttribute("data-drawn", "1");
    } catch (e) {
      fail(box, NOT_DRAWN, "error");
    }
  }

  function resizeAll() {
    drawn.forEach(function (c) {
      const width = chartWidth(c.box);
      if (width !== c.plot.width) c.plot.setSize({ width: width, height: HEIGHT });
    });
  }

  function drawCharts() {
    Array.prototype.forEach.call(document.querySelectorAll("script.chart-data[data-target]"), drawOne);
    // Drawing may have added a scrollbar that narrowed the containers.
    resizeAll();
    let timer = 0;
    window.addEventListener("resize", function () {
      clearTimeout(timer);
      timer = setTimeout(resizeAll, 150);
    });
  }

  /* Asks before submitting with a button.confirm; cancels the submit when refused. */
  function confirmSubmits() {
    document.addEventListener("submit", function (event) {
      let button = event.submitter;
      if (button === undefined) {
        // Browsers without SubmitEvent.submitter: the form's confirm button, if any.
        button = event.target.querySelector("button.confirm[data-confirm]");
      }
      if (!button || !button.matches("button.confirm[data-confirm]")) return;
      if (!window.confirm(button.getAttribute("data-confirm"))) event.preventDefault();
    });
  }

  function start() {
    confirmSubmits();
    drawCharts();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
