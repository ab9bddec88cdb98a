// The therapist's view of a chest strap's raw data (a Polar H10): an ECG strip of the last 10 s and
// the chest breathing trace of the last 30 s beside the pacer, with the breathing rate, how closely
// the client follows the pacer, and the breath-hold / rapid-shallow events. Shown only when the
// strap streams them (MQTT `ecg`, `breathing`, `movement`; the hub sends them to therapist pages
// only). Kept apart from detail.js: detail.js hands every message to Chest.update first.
"use strict";

const Chest = (() => {
  const ECG_S = 10;
  const STALE_MS = 5000; // no data for this long: the block says so
  const MAX_EVENTS = 5;
  const st = {
    ecg: [], // [t, mV | null] oldest first; null breaks the line at a gap
    ecgRx: 0,
    breath: null,
    breathRx: 0,
    movement: null,
    guidance: null,
    events: [],
  };

  function $(id) {
    return document.getElementById(id);
  }

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
    ctx.clearRect(0, 0, w, h);
    return { ctx, w, h };
  }

  function range(values) {
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of values) {
      if (v == null) continue;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    if (!(hi >= lo)) return null;
    if (hi === lo) return [lo - 1, hi + 1];
    const pad = (hi - lo) * 0.08;
    return [lo - pad, hi + pad];
  }

  // points: [[t, v|null]]; x over [t0, t1]; y over [lo, hi]
  function line(ctx, points, box, t0, t1, lo, hi, color, dashed) {
    ctx.strokeStyle = color;
    ctx.lineWidth = 1.5;
    ctx.setLineDash(dashed ? [5, 4] : []);
    ctx.beginPath();
    let pen = false;
    for (const [t, v] of points) {
      if (v == null || t < t0) {
        pen = false;
        continue;
      }
      const x = box.x + ((t - t0) / (t1 - t0)) * box.w;
      const y = box.y + box.h - ((v - lo) / (hi - lo)) * box.h;
      if (pen) ctx.lineTo(x, y);
      else ctx.moveTo(x, y);
      pen = true;
    }
    ctx.stroke();
    ctx.setLineDash([]);
  }

  function drawEcg() {
    const canvas = $("c-ecg");
    const { ctx, w, h } = setup(canvas);
    if (!st.ecg.length) return;
    const t1 = st.ecg[st.ecg.length - 1][0];
    const t0 = t1 - ECG_S;
    const box = { x: 6, y: 4, w: w - 12, h: h - 18 };
    // a light grid: one line a second, as on paper
    ctx.strokeStyle = "#e6d5d5";
    ctx.lineWidth = 1;
    for (let s = Math.ceil(t0); s <= t1; s++) {
      const x = box.x + ((s - t0) / ECG_S) * box.w;
      ctx.beginPath();
      ctx.moveTo(x, box.y);
      ctx.lineTo(x, box.y + box.h);
      ctx.stroke();
    }
    const r = range(st.ecg.map((p) => p[1]));
    if (!r) return;
    line(ctx, st.ecg, box, t0, t1, r[0], r[1], "#1e232b", false);
    ctx.fillStyle = "#5b6270";
    ctx.font = "11px system-ui, sans-serif";
    ctx.fillText("1 s per grid line", box.x, h - 4);
  }

  // The pacer's ideal chest wave at time t: 0 at the start of an inhalation, 1 when full.
  function pacerAt(g, t) {
    const ph = Pacer.phaseAt(g.phases, g.start_t, t);
    if (!ph) return null;
    return (Pacer.scaleFor(ph) - 0.6) / 0.4;
  }

  function pacing() {
    const g = st.guidance;
    return g && g.active && g.phases && g.phases.length && g.start_t != null ? g : null;
  }

  function drawBreath() {
    const canvas = $("c-breath");
    const { ctx, w, h } = setup(canvas);
    const b = st.breath;
    if (!b || b.trace_t0 == null || !b.trace_dt_s || !b.trace_mg.length) return;
    const pts = b.trace_mg.map((v, i) => [b.trace_t0 + i * b.trace_dt_s, v]);
    const t1 = pts[pts.length - 1][0];
    const t0 = Math.max(pts[0][0], t1 - 30);
    const box = { x: 6, y: 6, w: w - 12, h: h - 12 };
    const r = range(b.trace_mg);
    if (!r) return;
    const g = pacing();
    if (g) {
      const wave = [];
      for (let t = t0; t <= t1; t += 0.2) wave.push([t, pacerAt(g, t)]);
      line(ctx, wave, box, t0, t1, -0.1, 1.1, "#6b4aa0", true);
    }
    line(ctx, pts, box, t0, t1, r[0], r[1], "#1f5fa8", false);
  }

  function eventText(e) {
    const what = e.kind === "breath_hold" ? "Breath held" : "Rapid shallow breathing";
    const at = e.start_t != null ? " from " + BF.fmtClock(e.start_t) : "";
    return what + at + (e.detail ? ": " + e.detail : "");
  }

  function renderText() {
    const b = st.breath;
    const stale = Date.now() - st.breathRx > STALE_MS;
    const rate = $("v-breath-rate");
    const lineEl = $("breath-line");
    rate.textContent = b && b.rate_bpm != null && !stale ? BF.fmt(b.rate_bpm, 1) + " /min" : "–";
    const g = pacing();
    $("pacer-legend").hidden = !g;
    const parts = [];
    if (!b || stale) parts.push("No breathing signal from the strap for a few seconds.");
    else {
      if (b.moving || (st.movement && st.movement.moving)) parts.push("Moving: breathing and arousal are less certain.");
      if (!b.valid && b.reason) parts.push("Rate not available: " + b.reason + ".");
      if (g && b.pacer_bpm != null) {
        parts.push("Pacer " + BF.fmt(b.pacer_bpm, 1) + " /min.");
        if (b.adherence != null) parts.push("Following the pacer: " + Math.round(b.adherence * 100) + " %.");
      }
    }
    lineEl.textContent = parts.join(" ");
    const list = $("breath-events");
    list.replaceChildren(...st.events.map((e) => BF.el("li", { text: eventText(e) })));
    const ecgStale = Date.now() - st.ecgRx > STALE_MS;
    $("ecg-note").textContent = st.ecg.length && ecgStale ? "no ECG for a few seconds" : "";
  }

  function render() {
    const card = $("chest-card");
    if (!card) return;
    const hasEcg = st.ecg.length > 0;
    const hasBreath = st.breath != null;
    card.hidden = !(hasEcg || hasBreath);
    $("ecg-block").hidden = !hasEcg;
    $("breath-block").hidden = !hasBreath;
    if (card.hidden) return;
    if (hasEcg) drawEcg();
    if (hasBreath) drawBreath();
    renderText();
  }

  function addEcg(v) {
    if (v.t == null || !v.dt_s || !v.uv.length) return;
    const last = st.ecg.length ? st.ecg[st.ecg.length - 1][0] : null;
    if (last != null && (v.gap_before_s || v.t - last > 5 * v.dt_s || v.t < last)) {
      if (v.t < last - ECG_S) st.ecg = []; // a restart: the old strip is not this one
      else st.ecg.push([v.t - v.dt_s / 2, null]);
    }
    v.uv.forEach((u, i) => st.ecg.push([v.t + i * v.dt_s, u == null ? null : u / 1000]));
    const horizon = st.ecg[st.ecg.length - 1][0] - ECG_S;
    let drop = 0;
    while (drop < st.ecg.length && st.ecg[drop][0] < horizon) drop++;
    if (drop) st.ecg.splice(0, drop);
    st.ecgRx = Date.now();
  }

  function snapshot(msg) {
    st.guidance = msg.guidance || null;
    render();
  }

  // true when the message was ours (detail.js need not look at it)
  function update(msg) {
    const v = msg.view;
    if (msg.kind === "guidance") {
      st.guidance = v || null;
      render();
      return false;
    }
    if (!v) return false;
    if (msg.kind === "ecg") {
      addEcg(v);
    } else if (msg.kind === "breathing") {
      st.breath = v;
      st.breathRx = Date.now();
      for (const e of v.events || []) {
        st.events.unshift(e);
        if (st.events.length > MAX_EVENTS) st.events.pop();
      }
    } else if (msg.kind === "movement") {
      st.movement = v;
    } else {
      return false;
    }
    render();
    return true;
  }

  setInterval(() => {
    if (!$("chest-card").hidden) renderText();
  }, 1000);
  window.addEventListener("resize", render);

  return { snapshot, update, state: st };
})();
