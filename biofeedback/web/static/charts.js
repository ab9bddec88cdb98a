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

  function niceRange(lo, hi) {
    if (lo === hi) {
      lo -= 1;
      hi += 1;
    }
    const pad = (hi - lo) * 0.1;
    return [lo - pad, hi + pad];
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
    let lo, hi;
    if (opts.fixed) {
      [lo, hi] = opts.fixed;
    } else if (vals.length) {
      lo = Math.min(...vals);
      hi = Math.max(...vals);
      if (opts.band && opts.band.lo != null) lo = Math.min(lo, opts.band.lo);
      if (opts.band && opts.band.hi != null) hi = Math.max(hi, opts.band.hi);
      [lo, hi] = niceRange(lo, hi);
    } else {
      [lo, hi] = [0, 1];
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
    for (let k = 0; k <= 3; k++) {
      const v = lo + ((hi - lo) * k) / 3;
      ctx.fillText(v.toFixed(hi - lo < 10 ? 1 : 0), left - 4, y(v));
    }
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

  return { draw, PAUSED };
})();
