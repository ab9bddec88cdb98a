// The therapist's breathing-rate check (resonance assessment, docs/resonance.md) on the detail
// page: offer and stop it, see where it is, and its chart: a bar per block (the combined score,
// the chosen rate marked) and the heart rate over the pacer of the block running or last scored.
// Kept apart from detail.js: detail.js hands it every snapshot and update (Assessment.snapshot,
// Assessment.update), and it owns the #assess-card only.
"use strict";

const Assessment = (() => {
  const st = { view: null, hr: [], clock: null };
  const $ = (id) => document.getElementById(id);
  const STATE_WORDS = {
    ready: "Not running.",
    offered: "Offered: waiting for the client's answer.",
    running: "Running.",
    stopped: "Stopped early: what was measured is kept.",
    done: "Done.",
  };

  function keepHr(p) {
    if (!p || p.t == null || p.hr == null) return;
    st.hr.push([p.t, p.hr]);
    // an assessment is at most ~20 minutes; keep 30
    while (st.hr.length && st.hr[0][0] < p.t - 1800) st.hr.shift();
  }

  function fmt(v, d) {
    return v == null ? "–" : Number(v).toFixed(d == null ? 1 : d);
  }

  function render() {
    const a = st.view;
    const s = a || { state: "ready" };
    $("assess-card").dataset.state = s.state || "";
    let line = STATE_WORDS[s.state] || "Not running.";
    if (s.state === "running" && s.rates_bpm) {
      const i = s.block_index == null ? 0 : s.block_index;
      line = (s.phase === "rest" ? "Rest after block " : "Block ") + (i + 1) + " of " + s.rates_bpm.length +
        (s.phase === "rest" ? "" : " at " + fmt(s.rate_bpm) + " /min") +
        (s.remaining_s == null ? "" : ", " + Math.round(s.remaining_s) + " s left");
    }
    const res = s.result;
    if (res && (s.state === "done" || s.state === "stopped")) {
      line += res.rate_bpm == null ? " No block was usable: no rate chosen." : " Resonance rate: " + fmt(res.rate_bpm) + " /min" + (res.complete ? "." : " (partial).");
    }
    if (s.chosen_rate_bpm != null) line += " The client chose " + fmt(s.chosen_rate_bpm) + " /min for their pacer.";
    $("assess-status").textContent = line;
    const active = s.state === "offered" || s.state === "running";
    $("b-assess-offer").disabled = active;
    $("b-assess-stop").disabled = !active;
    renderTable(s);
    draw();
  }

  function blocksOf(s) {
    return (s.result && s.result.blocks && s.result.blocks.length ? s.result.blocks : s.blocks) || [];
  }

  function renderTable(s) {
    const body = $("assess-blocks").querySelector("tbody");
    body.textContent = "";
    const blocks = blocksOf(s);
    const combined = (s.result && s.result.combined) || [];
    blocks.forEach((b, i) => {
      const chosen = s.result && s.result.rate_bpm != null && b.rate_bpm === s.result.rate_bpm;
      const cells = [fmt(b.rate_bpm), fmt(b.peak_to_trough_bpm), fmt(b.lf_peak_hz == null ? null : b.lf_peak_hz * 60, 2),
        fmt(b.phase_deg, 0), fmt(b.coherence, 2), fmt(b.smoothness, 2), fmt(b.quality, 2),
        combined[i] == null ? (b.usable ? "–" : "not usable") : fmt(combined[i], 2)];
      const tr = BF.el("tr", chosen ? { class: "chosen" } : {}, ...cells.map((c) => BF.el("td", { text: c })));
      body.appendChild(tr);
    });
    $("assess-empty").hidden = blocks.length > 0;
  }

  // ---- chart ---------------------------------------------------------------------------------
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

  function drawBars(s) {
    const canvas = $("c-assess-bars");
    if (!canvas || canvas.clientWidth === 0) return;
    const { ctx, w, h } = setup(canvas);
    const blocks = blocksOf(s);
    const combined = (s.result && s.result.combined) || [];
    // before the result: the peak-to-trough HR, relative to the largest so far
    const values = blocks.map((b, i) => (s.result ? combined[i] : b.peak_to_trough_bpm));
    const top = Math.max(1e-9, ...values.filter((v) => v != null));
    const n = Math.max(blocks.length, (s.rates_bpm || []).length, 1);
    const slot = w / n;
    ctx.font = "12px system-ui, sans-serif";
    ctx.textAlign = "center";
    blocks.forEach((b, i) => {
      const v = values[i];
      const bh = v == null ? 0 : (v / top) * (h - 34);
      const chosen = s.result && s.result.rate_bpm != null && b.rate_bpm === s.result.rate_bpm;
      ctx.fillStyle = chosen ? "#2f6f5f" : b.usable ? "#8fb3a9" : "#c9c9cf";
      ctx.fillRect(i * slot + slot * 0.2, h - 18 - bh, slot * 0.6, bh);
      ctx.fillStyle = "#1d2a27";
      ctx.fillText(fmt(b.rate_bpm) + "/min", i * slot + slot / 2, h - 4);
      if (v != null) ctx.fillText(fmt(v, s.result ? 2 : 1), i * slot + slot / 2, h - 22 - bh);
    });
  }

  // the pacer's idealised lung volume 0..1: rising through the inhale, falling through the exhale
  function lung(t, start, rate, share) {
    const period = 60 / rate;
    const x = (((t - start) % period) + period) % period / period;
    return x < share ? x / share : 1 - (x - share) / (1 - share);
  }

  function drawHr(s) {
    const canvas = $("c-assess-hr");
    if (!canvas || canvas.clientWidth === 0) return;
    const { ctx, w, h } = setup(canvas);
    if (s.started_t == null || !s.rates_bpm || s.block_s == null) return;
    // the block running, else the last one scored
    let i = s.block_index;
    const blocks = blocksOf(s);
    if (s.state !== "running" || i == null) i = blocks.length ? blocks.length - 1 : null;
    if (i == null) return;
    const start = s.started_t + i * (s.block_s + (s.rest_s || 0));
    const end = start + s.block_s;
    const rate = s.rates_bpm[i];
    const share = s.inhale_share == null ? 0.4 : s.inhale_share;
    const pts = st.hr.filter((p) => p[0] >= start && p[0] <= end);
    const x = (t) => ((t - start) / (end - start)) * w;
    // pacer (dashed, behind)
    ctx.strokeStyle = "#6b4aa0";
    ctx.setLineDash([5, 4]);
    ctx.beginPath();
    for (let px = 0; px <= w; px += 2) {
      const t = start + (px / w) * (end - start);
      const y = h - 8 - lung(t, start, rate, share) * (h - 24);
      if (px === 0) ctx.moveTo(px, y);
      else ctx.lineTo(px, y);
    }
    ctx.stroke();
    ctx.setLineDash([]);
    if (pts.length > 1) {
      const lo = Math.min(...pts.map((p) => p[1]));
      const hi = Math.max(...pts.map((p) => p[1]));
      const span = Math.max(1, hi - lo);
      ctx.strokeStyle = "#b03a2e";
      ctx.lineWidth = 2;
      ctx.beginPath();
      pts.forEach((p, k) => {
        const y = h - 8 - ((p[1] - lo) / span) * (h - 24);
        if (k === 0) ctx.moveTo(x(p[0]), y);
        else ctx.lineTo(x(p[0]), y);
      });
      ctx.stroke();
      ctx.lineWidth = 1;
      ctx.fillStyle = "#1d2a27";
      ctx.font = "12px system-ui, sans-serif";
      ctx.textAlign = "left";
      ctx.fillText(fmt(hi, 0) + " bpm", 4, 12);
      ctx.fillText(fmt(lo, 0) + " bpm", 4, h - 2);
    }
    $("assess-hr-title").textContent = "Heart rate over the pacer, block " + (i + 1) + " at " + fmt(rate) + " /min";
    canvas.dataset.points = String(pts.length);
  }

  function draw() {
    const s = st.view || { state: "ready" };
    drawBars(s);
    drawHr(s);
  }

  function snapshot(msg) {
    st.view = msg.assessment || null;
    st.hr = [];
    (msg.points || []).forEach(keepHr);
    render();
  }

  // true when the message was the assessment's (nothing else to do with it)
  function update(msg) {
    if (msg.point && msg.kind === "metrics") keepHr(msg.point);
    if (msg.kind !== "assessment") return false;
    st.view = msg.view;
    render();
    return true;
  }

  function wire(send) {
    $("b-assess-offer").onclick = () => send("Offer breathing-rate check", "assessment_offer", {});
    $("b-assess-stop").onclick = () => send("Stop breathing-rate check", "assessment_stop", {});
    setInterval(draw, 1000);
    window.addEventListener("resize", draw);
    render();
  }

  return { snapshot, update, wire, state: st };
})();
