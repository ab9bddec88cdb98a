// Time-series charts on <canvas>: last N seconds, a threshold band, shaded pause spans, and gaps
// drawn as gaps (a missing value or a silence longer than gapS breaks the line; never interpolated).
"use strict";

const Charts = (() => {
  const PAUSED = new Set(["paused", "grounding", "recovered", "resume_offered"]);

  function setup(canvas) {
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth;
    const h = canvas.clientHeight;
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
      canvas.width = Math.round(w * dpr);
      canvas.height = Math.round(h * dpr);
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    return { ctx, w, h };
  }

  // A step of 1, 2 or 5 times a power of ten giving about `want` intervals over [lo, hi].
  function niceStep(lo, hi, want) {
    const raw = (hi - lo) / want;
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    for (const m of [1, 2, 5, 10]) if (m * mag >= raw) return m * mag;
    return 10 * mag;
  }

  // The axis range widened to round ticks (66, 68, 70, 72, never 66.3 / 68.8 / 71.4), and the
  // ticks: at least 3, at most about 6.
  function niceAxis(lo, hi) {
    if (lo === hi) {
      lo -= 1;
      hi += 1;
    }
    const pad = (hi - lo) * 0.05;
    lo -= pad;
    hi += pad;
    const step = niceStep(lo, hi, 4);
    const a = Math.floor(lo / step) * step;
    const b = Math.ceil(hi / step) * step;
    const ticks = [];
    for (let v = a; v <= b + step / 2; v += step) ticks.push(Number(v.toFixed(6)));
    return { lo: a, hi: b, ticks, step };
  }

  function fixedTicks(lo, hi) {
    const step = niceStep(lo, hi, 5);
    const ticks = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + step / 1000; v += step) ticks.push(Number(v.toFixed(6)));
    return ticks;
  }

  // opts: {key, color, label, unit, window, now, points, spans, band:{lo,hi}, fixed:[lo,hi], gapS}
  function draw(canvas, opts) {
    const { ctx, w, h } = setup(canvas);
    const left = 44, right = 8, top = 8, bottom = 20;
    const pw = w - left - right, ph = h - top - bottom;
    ctx.clearRect(0, 0, w, h);
    const now = opts.now;
    const win = opts.window || 300;
    const t0 = now - win;
    const pts = opts.points.filter((p) => opts.key in p && p.t >= t0 - opts.gapS && p.t <= now + 5);
    const vals = pts.map((p) => p[opts.key]).filter((v) => v != null);
    let lo, hi, ticks;
    if (opts.fixed) {
      [lo, hi] = opts.fixed;
      ticks = fixedTicks(lo, hi);
    } else if (vals.length) {
      lo = Math.min(...vals);
      hi = Math.max(...vals);
      if (opts.band && opts.band.lo != null) lo = Math.min(lo, opts.band.lo);
      if (opts.band && opts.band.hi != null) hi = Math.max(hi, opts.band.hi);
      ({ lo, hi, ticks } = niceAxis(lo, hi));
    } else {
      [lo, hi] = [0, 1];
      ticks = [];
    }
    const x = (t) => left + ((t - t0) / win) * pw;
    const y = (v) => top + ph - ((v - lo) / (hi - lo)) * ph;

    // pause spans (exposure not running): soft grey, with a marker line where each began
    const spans = opts.spans || [];
    for (let i = 0; i < spans.length; i++) {
      const s = spans[i];
      if (!PAUSED.has(s.state)) continue;
      let j = i + 1;
      while (j < spans.length && PAUSED.has(spans[j].state)) j++;
      const end = j < spans.length ? spans[j].t : now;
      const xa = Math.max(left, x(s.t)), xb = Math.min(left + pw, x(end));
      if (xb > xa) {
        ctx.fillStyle = "rgba(120,120,130,0.16)";
        ctx.fillRect(xa, top, xb - xa, ph);
      }
      if (s.t >= t0 && (i === 0 || !PAUSED.has(spans[i - 1].state))) {
        ctx.strokeStyle = "#6d6d78";
        ctx.setLineDash([3, 3]);
        ctx.beginPath();
        ctx.moveTo(x(s.t), top);
        ctx.lineTo(x(s.t), top + ph);
        ctx.stroke();
        ctx.setLineDash([]);
      }
      i = j - 1;
    }

    // threshold band
    if (opts.band && opts.band.lo != null && opts.band.hi != null) {
      ctx.fillStyle = "rgba(214,160,60,0.18)";
      ctx.fillRect(left, y(opts.band.hi), pw, y(opts.band.lo) - y(opts.band.hi));
      ctx.strokeStyle = "rgba(180,120,30,0.8)";
      for (const v of [opts.band.lo, opts.band.hi]) {
        ctx.beginPath();
        ctx.moveTo(left, y(v));
        ctx.lineTo(left + pw, y(v));
        ctx.stroke();
      }
    }

    // axes and labels
    ctx.strokeStyle = "#c9ccd2";
    ctx.lineWidth = 1;
    ctx.strokeRect(left, top, pw, ph);
    ctx.fillStyle = "#4a4f59";
    ctx.font = "11px system-ui, sans-serif";
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    const digits = ticks.length > 1 && ticks[1] - ticks[0] < 1 ? 1 : 0;
    for (const v of ticks) {
      ctx.fillText(v.toFixed(digits), left - 4, y(v));
      if (v > lo && v < hi) {
        ctx.strokeStyle = "#eceef2";
        ctx.beginPath();
        ctx.moveTo(left + 1, y(v));
        ctx.lineTo(left + pw - 1, y(v));
        ctx.stroke();
      }
    }
    canvas.dataset.ticks = ticks.map((v) => v.toFixed(digits)).join(",");
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    for (let m = 0; m <= win / 60; m++) {
      const t = now - m * 60;
      ctx.fillText(m === 0 ? "now" : "−" + m + " min", Math.min(Math.max(x(t), left + 14), left + pw - 14), top + ph + 4);
    }

    // the series: break at nulls and at silences longer than gapS
    ctx.save();
    ctx.beginPath();
    ctx.rect(left, top, pw, ph);
    ctx.clip();
    ctx.strokeStyle = opts.color;
    ctx.fillStyle = opts.color;
    ctx.lineWidth = 2;
    // split into runs first, then draw: a lone point between gaps is a dot, not a line
    const runs = [];
    let run = [];
    let prev = null;
    for (const p of pts) {
      const v = p[opts.key];
      if (v == null || (prev && p.t - prev.t > opts.gapS)) {
        if (run.length) runs.push(run);
        run = [];
      }
      if (v == null) {
        prev = null;
        continue;
      }
      run.push([x(p.t), y(v)]);
      prev = p;
    }
    if (run.length) runs.push(run);
    for (const r of runs) {
      if (r.length === 1) {
        dot(ctx, r[0][0], r[0][1]);
        continue;
      }
      ctx.beginPath();
      ctx.moveTo(r[0][0], r[0][1]);
      for (let i = 1; i < r.length; i++) ctx.lineTo(r[i][0], r[i][1]);
      ctx.stroke();
    }
    canvas.dataset.runs = String(runs.length);
    canvas.dataset.points = String(runs.reduce((n, r) => n + r.length, 0));
    ctx.restore();
  }

  function dot(ctx, x, y) {
    ctx.save();
    ctx.beginPath();
    ctx.arc(x, y, 2, 0, Math.PI * 2);
    ctx.fill();
    ctx.restore();
  }

  return { draw, PAUSED, niceAxis };
})();
