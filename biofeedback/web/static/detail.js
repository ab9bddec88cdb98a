// Therapist's page for one client: live numbers, 5-minute charts, agenda, events, SUDS, controls.
"use strict";

(() => {
  const clientId = decodeURIComponent(location.pathname.split("/")[2] || "");
  document.getElementById("client-id").textContent = clientId;
  document.title = "Biofeedback — " + clientId;
  const GAP_S = 5;
  const WINDOW_S = 300;
  const STALE_S = 10;
  const st = {
    points: [],
    events: [],
    checkins: [],
    spans: [],
    session: null,
    status: null,
    clock: null,
    last: {}, // newest hr / rmssd / arousal / quality
  };

  // times as "into the session" (mm:ss from its start), which stays right on a demo's fast clock;
  // the wall-clock time is in the tooltip
  function when(t) {
    const start = st.session && st.session.started_t;
    if (t == null || !start) return { text: BF.fmtClock(t), title: "" };
    const s = Math.max(0, Math.round(t - start));
    const mm = Math.floor(s / 60);
    const text = (mm >= 60 ? Math.floor(mm / 60) + ":" + String(mm % 60).padStart(2, "0") : mm) + ":" + String(s % 60).padStart(2, "0");
    return { text, title: BF.fmtClock(t) };
  }

  function setText(id, text) {
    document.getElementById(id).textContent = text;
  }

  function addPoint(p) {
    st.points.push(p);
    for (const k of ["hr", "rmssd", "arousal", "quality"]) if (k in p) st.last[k] = p[k];
    const horizon = p.t - WINDOW_S - GAP_S;
    while (st.points.length && st.points[0].t < horizon) st.points.shift();
  }

  function addSpan(t, state, reason) {
    if (st.spans.length && st.spans[st.spans.length - 1].state === state) return;
    st.spans.push({ t, state, reason });
  }

  function renderNumbers() {
    setText("v-hr", BF.fmt(st.last.hr));
    setText("v-rmssd", BF.fmt(st.last.rmssd));
    setText("v-arousal", BF.fmt(st.last.arousal));
    setText("v-quality", st.last.quality == null ? "–" : Math.round(st.last.quality * 100) + " %");
    const s = st.status || {};
    setText("v-battery", s.battery == null ? "–" : BF.fmt(s.battery) + " %");
    setText("v-device", (s.device || "–") + (s.online === false ? " (offline)" : ""));
  }

  function renderSession() {
    const s = st.session;
    const badge = document.getElementById("state");
    const state = (s && s.state) || "unknown";
    badge.textContent = s && s.paused && s.pause_reason ? state + " — " + s.pause_reason : state;
    badge.className = "badge " + state;
    const agenda = document.getElementById("agenda");
    const steps = (s && s.steps) || [];
    document.getElementById("no-agenda").hidden = steps.length > 0;
    agenda.replaceChildren(
      ...steps.map((step) => {
        let cls = "";
        if (s.step_index != null && step.index === s.step_index) cls = "current";
        else if (step.status === "completed" || step.status === "done") cls = "done";
        else if (step.status == null && s.step_index != null && step.index < s.step_index) cls = "done";
        const note = step.status === "left" ? " (started, not finished)" : step.status === "completed" ? " ✓" : "";
        return BF.el("li", { class: cls, "data-index": String(step.index), text: step.title + note });
      })
    );
    const thr = (s && s.thresholds) || {};
    renderNotice();
    renderSuds();
    for (const [id, key] of [["t-upper", "upper"], ["t-lower", "lower"], ["t-dwell", "dwell_s"], ["t-recovery", "recovery_s"]]) {
      const input = document.getElementById(id);
      if (document.activeElement !== input && thr[key] != null) input.value = thr[key];
    }
  }

  function renderEvents() {
    const tbody = document.querySelector("#events tbody");
    document.getElementById("no-events").hidden = st.events.length > 0;
    const rows = st.events.slice(-200).reverse().map((e) => {
      // absolute time stamps mean nothing to a reader here (the Time column has the moment)
      const vals = Object.entries(e.values || {})
        .filter(([k, v]) => !(typeof v === "number" && v > 1e8) && k !== "input_t")
        .map(([k, v]) => k + "=" + (typeof v === "number" ? Math.round(v * 10) / 10 : v))
        .join(", ");
      const change = e.from_state && e.to_state && e.from_state !== e.to_state ? e.from_state + " → " + e.to_state : "";
      return BF.el(
        "tr",
        {},
        BF.el("td", { class: "num", text: when(e.t).text, title: when(e.t).title }),
        BF.el("td", { text: e.kind || "" }),
        BF.el("td", { text: e.actor || e.source || "" }),
        BF.el("td", { text: change }),
        BF.el("td", { text: (e.reason || "") + (vals ? " (" + vals + ")" : "") })
      );
    });
    tbody.replaceChildren(...rows);
  }

  function renderSuds() {
    // the session's own record of answers is authoritative; check-in events fill in before it arrives
    const fromSession = (st.session && st.session.suds) || [];
    const answers = fromSession.length ? fromSession : st.checkins.filter((c) => c.value != null);
    document.getElementById("no-suds").hidden = answers.length > 0;
    document.querySelector("#suds tbody").replaceChildren(
      ...answers.slice(-30).reverse().map((c) =>
        BF.el(
          "tr",
          {},
          BF.el("td", { class: "num", text: when(c.t).text, title: when(c.t).title }),
          BF.el("td", { text: c.step_index != null ? "step " + (c.step_index + 1) : "" }),
          BF.el("td", { text: (c.prompts || []).join(", ").replaceAll("_", " ") }),
          BF.el("td", { class: "num", "data-field": "suds", text: "SUDS " + BF.fmt(c.value) })
        )
      )
    );
  }

  function renderNotice() {
    const s = st.session || {};
    const notes = [];
    if (st.status && st.status.online === false) notes.push(["bad", "Service offline" + (st.status.reason ? ": " + st.status.reason : "")]);
    if (s.monitoring_ok === false) notes.push(["bad", "Monitoring lost: exposure is held paused until the signal returns"]);
    if (s.device_connected === false) notes.push(["bad", "Strap disconnected"]);
    if (s.calibrated === false && s.calibration_detail) notes.push(["warn", "Calibration: " + s.calibration_detail]);
    if (s.recalibrating) notes.push(["info", "Fresh calibration running: the client is asked to sit quietly" + (s.calibration_reason ? " (" + s.calibration_reason + ")" : "")]);
    for (const n of s.calibration_notes || []) notes.push(["warn", "Calibration looked unusual: " + n]);
    if (s.consent_needed) notes.push(["info", "Waiting for the client's consent: " + (s.consent_text || s.consent_for)]);
    if (s.checkin_due) notes.push(["info", "SUDS check-in due" + (s.checkin_prompt ? " (" + s.checkin_prompt.replaceAll("_", " ") + ")" : "")]);
    if (s.state === "exposing" && s.dwell_progress > 0) notes.push(["warn", "Above the pause threshold: " + Math.round(s.dwell_progress * 100) + " % of the dwell time"]);
    if ((s.state === "paused" || s.state === "grounding") && s.recovery_progress > 0) notes.push(["info", "Recovering: " + Math.round(s.recovery_progress * 100) + " % of the recovery time"]);
    const box = document.getElementById("notices");
    box.replaceChildren(...notes.map(([cls, text]) => BF.el("div", { class: "notice " + cls, text })));
    box.hidden = notes.length === 0;
  }

  function renderCharts() {
    let now = BF.sessionNow(st.clock);
    if (now == null) now = st.points.length ? st.points[st.points.length - 1].t : Date.now() / 1000;
    const thr = (st.session && st.session.thresholds) || {};
    const common = { now, window: WINDOW_S, points: st.points, spans: st.spans, gapS: GAP_S };
    Charts.draw(document.getElementById("c-hr"), { ...common, key: "hr", color: "#b0473a" });
    Charts.draw(document.getElementById("c-rmssd"), { ...common, key: "rmssd", color: "#2f62a8" });
    Charts.draw(document.getElementById("c-arousal"), {
      ...common,
      key: "arousal",
      color: "#6a4c9c",
      fixed: [0, 100],
      band: { lo: thr.lower, hi: thr.upper },
    });
    const age = st.clock && st.clock.rx != null ? BF.serverNow() - st.clock.rx : null;
    const ageEl = document.getElementById("v-age");
    ageEl.textContent = age == null ? "none yet" : Math.max(0, Math.round(age)) + " s ago";
    ageEl.className = age != null && age > STALE_S ? "badge stale" : "";
  }

  function replyLine(label, reply) {
    const box = document.getElementById("replies");
    const line = BF.el("div", { class: "wait", text: label + ": sent, waiting for the session…" });
    box.prepend(line);
    reply.then((r) => {
      if (r.ok === true) {
        line.className = "ok";
        line.textContent = label + ": done" + (r.status && r.status !== "ok" ? " (" + r.status + ")" : "");
      } else {
        line.className = "bad";
        line.textContent = label + ": " + (r.ok === false ? "refused — " : "") + (r.error || r.status || "no reply");
      }
    });
  }

  function send(label, cmd, args) {
    replyLine(label, BF.command(cmd, args));
  }

  document.getElementById("b-offer").onclick = () => send("Offer next step", "offer_step", {});
  document.getElementById("b-pause").onclick = () => send("Pause", "pause", {});
  document.getElementById("b-complete").onclick = () => send("Step complete", "complete_step", {});
  document.getElementById("b-end").onclick = () => {
    if (confirm("End this session for " + clientId + "?")) send("End session", "end", {});
  };
  document.getElementById("f-thr").onsubmit = (ev) => {
    ev.preventDefault();
    const args = {};
    for (const [id, key] of [["t-upper", "upper"], ["t-lower", "lower"], ["t-dwell", "dwell_s"], ["t-recovery", "recovery_s"]]) {
      const v = document.getElementById(id).value;
      if (v !== "") args[key] = Number(v);
    }
    send("Adjust thresholds", "adjust_thresholds", args);
  };

  document.getElementById("f-recal").onsubmit = (ev) => {
    ev.preventDefault();
    const reason = document.getElementById("recal-reason").value.trim();
    send("Recalibrate", "recalibrate", reason ? { reason } : {});
  };

  fetch("/api/link/" + encodeURIComponent(clientId), { credentials: "same-origin" })
    .then((r) => (r.ok ? r.json() : null))
    .then((j) => {
      if (!j) return;
      const a = document.getElementById("client-link");
      a.href = j.path;
      a.textContent = location.origin + j.path;
    });

  BF.connect("/ws?client=" + encodeURIComponent(clientId), {
    snapshot(msg) {
      st.points = [];
      st.last = {};
      (msg.points || []).forEach(addPoint);
      st.events = msg.events || [];
      st.checkins = msg.checkins || [];
      st.spans = msg.spans || [];
      st.session = msg.session || null;
      st.status = msg.status || null;
      st.clock = msg.clock || null;
      renderNumbers();
      renderSession();
      renderEvents();
      renderSuds();
      renderCharts();
    },
    update(msg) {
      if (msg.clock) st.clock = msg.clock;
      if (msg.point && msg.kind !== "beat") addPoint(msg.point);
      if (msg.kind === "session") {
        const before = st.session && st.session.state;
        st.session = msg.view;
        if (msg.view.state !== before && msg.view.t != null) addSpan(msg.view.t, msg.view.state, msg.view.pause_reason);
        renderSession();
      } else if (msg.kind === "status") {
        st.status = msg.view;
        renderNotice();
      } else if (msg.kind === "event") {
        st.events.push(msg.view);
        if (st.events.length > 300) st.events.shift();
        const e = msg.view;
        if (e.to_state && e.from_state !== e.to_state && e.t != null) addSpan(e.t, e.to_state, e.reason);
        renderEvents();
      } else if (msg.kind === "checkin") {
        st.checkins.push(msg.view);
        renderSuds();
      }
      renderNumbers();
    },
    reply(msg) {
      // replies to commands sent elsewhere (another dashboard, the client's screen): the timeline
      // shows what they did; only a refusal is worth a line here
      const r = msg.reply || {};
      if (r.ok !== false) return;
      const box = document.getElementById("replies");
      box.prepend(BF.el("div", { class: "bad", text: "A command from elsewhere was refused: " + (r.error || r.status || "?") }));
    },
  });
  setInterval(renderCharts, 500);
  window.addEventListener("resize", renderCharts);
})();
