// Therapist's page for one client: what comes next, live numbers, 5-minute charts, agenda,
// events, SUDS, controls. The words (state, next line, Offer button, timeline rows) come from the
// dashboard's views (biofeedback/web/next_action.py); this page only draws them.
"use strict";

(() => {
  const clientId = decodeURIComponent(location.pathname.split("/")[2] || "");
  document.getElementById("client-id").textContent = clientId;
  document.title = "Biofeedback — " + clientId;
  const GAP_S = 5;
  const WINDOW_S = 300;
  const STALE_S = 10;
  const EVENTS_SHOWN = 10; // newest rows shown whole; the rest behind "Show all"
  const DONE_FADES_MS = 5000; // "Pause: done" goes away; a refusal stays a while longer
  const REFUSAL_FADES_MS = 30000;
  const PAUSED = new Set(["paused", "grounding", "recovered", "resume_offered"]);
  const WHO = { therapist: "Your move", client: "Client's move", system: "Automatic", nobody: "Nothing to do" };
  const st = {
    points: [],
    events: [],
    checkins: [],
    spans: [],
    session: null,
    status: null,
    // the strap problem as the hub worked it out (next_action.strap_problem, the same the overview
    // row shows): {what, detail, hint, next} or null; `next` is what comes next until it is back
    problem: null,
    clock: null,
    last: {}, // newest hr / rmssd / arousal / quality
    allEvents: false,
  };

  // times as "into the session" (mm:ss from its start), which stays right on a demo's fast clock;
  // the wall-clock time is in the tooltip
  function clockText(s) {
    s = Math.max(0, Math.round(s));
    const mm = Math.floor(s / 60);
    return (mm >= 60 ? Math.floor(mm / 60) + ":" + String(mm % 60).padStart(2, "0") : mm) + ":" + String(s % 60).padStart(2, "0");
  }

  function when(t) {
    const start = st.session && st.session.started_t;
    if (t == null || !start) return { text: BF.fmtClock(t), title: "" };
    return { text: clockText(t - start), title: BF.fmtClock(t) };
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

  // ---- what comes next -------------------------------------------------------------------

  // the transition that brought the session into its current state (null: not seen here)
  function enteredBy(s) {
    for (let i = st.events.length - 1; i >= 0; i--) {
      const e = st.events[i];
      if (e.kind !== "transition" || e.from_state === e.to_state) continue;
      return e.to_state === s.state ? e : null;
    }
    return null;
  }

  // the newest event of a kind since the session entered its current state
  function sinceEntered(s, kind) {
    const since = s.state_since_t == null ? -Infinity : s.state_since_t;
    for (let i = st.events.length - 1; i >= 0; i--) {
      const e = st.events[i];
      if (e.t != null && e.t < since) return null;
      if (e.kind === kind) return e;
    }
    return null;
  }

  // The views' next line, with what only the events tell: the client just said "not yet", or
  // the next step waits for calm arousal.
  function nextLine(s) {
    const base = s.next || { who: "nobody", text: "Waiting for the session to report its state." };
    const action = s.offer_action || {};
    const problem = st.problem;
    if (problem && problem.next && s.state !== "ended") return problem.next;
    if (s.client_ready) return base;
    const entered = enteredBy(s);
    const declined = entered && (entered.reason || "").startsWith("decline:");
    if (declined && action.enabled) {
      const what = s.state === "paused" ? "Client said not yet to resuming." : "Client said not yet.";
      return { who: "therapist", text: what + " Offer again when they're ready: " + action.label };
    }
    if (s.state === "step_complete") {
      const waiting = sinceEntered(s, "offer_waiting");
      if (waiting && action.enabled) {
        const why = (waiting.why || "").replace(/\s*\(.*\)$/, "");
        return { who: "system", text: "Waiting: " + why + ". Or offer now: " + action.label };
      }
    }
    return base;
  }

  function renderNext() {
    const s = st.session || {};
    const n = nextLine(s);
    const box = document.getElementById("next");
    box.dataset.who = n.who;
    box.classList.toggle("ready", Boolean(s.client_ready));
    setText("next-who", WHO[n.who] || "Next");
    setText("next-text", n.text);
    // the client's request, prominent until it is answered; it is a request, never a resume
    const note = document.getElementById("next-note");
    note.hidden = !s.client_ready;
    note.textContent = s.client_ready
      ? "Said at " + when(s.client_ready_t).text + " into the session. Resuming still needs your offer and the client's yes to it."
      : "";
  }

  function renderControls() {
    const s = st.session || {};
    const a = s.offer_action || { label: "Offer next step", enabled: false, why: "no session state has arrived yet" };
    const offer = document.getElementById("b-offer");
    offer.textContent = a.label;
    offer.disabled = !a.enabled;
    setText("offer-why", a.enabled ? "" : a.label + ": not now, " + a.why + ".");
    const complete = document.getElementById("b-complete");
    const running = s.state === "exposing" || PAUSED.has(s.state);
    complete.disabled = !running;
    const cw = document.getElementById("complete-why");
    cw.textContent = running ? "" : "Step complete: no step is in progress.";
    cw.hidden = running;
    document.getElementById("b-end").disabled = s.state === "ended";
  }

  // ---- the session ---------------------------------------------------------------------

  function renderSession() {
    const s = st.session;
    const badge = document.getElementById("state");
    const state = (s && s.state) || "unknown";
    badge.textContent = s ? s.state_label || state : "No state yet";
    badge.dataset.state = state;
    badge.className = "badge " + state;
    const agenda = document.getElementById("agenda");
    const steps = (s && s.steps) || [];
    document.getElementById("no-agenda").hidden = steps.length > 0;
    agenda.replaceChildren(
      ...steps.map((step) => {
        let cls = "";
        if (step.status === "completed" || step.status === "done") cls = "done";
        else if (s.step_index != null && step.index === s.step_index) cls = "current";
        else if (step.status == null && s.step_index != null && step.index < s.step_index) cls = "done";
        const note = step.status === "left" ? " (started, not finished)" : step.status === "completed" ? " (done)" : "";
        return BF.el("li", { class: cls, "data-index": String(step.index), text: step.title + note });
      })
    );
    const thr = (s && s.thresholds) || {};
    renderNext();
    renderControls();
    renderNotice();
    renderProgress();
    renderSuds();
    for (const [id, key] of [["t-upper", "upper"], ["t-lower", "lower"], ["t-dwell", "dwell_s"], ["t-recovery", "recovery_s"]]) {
      const input = document.getElementById(id);
      if (document.activeElement !== input && thr[key] != null) input.value = thr[key];
    }
  }

  const BY = { client: "client", therapist: "therapist", system: "service", device: "strap", service: "service" };

  function renderEvents() {
    const tbody = document.querySelector("#events tbody");
    document.getElementById("no-events").hidden = st.events.length > 0;
    const newest = st.events.slice(-300).reverse();
    const shown = st.allEvents ? newest : newest.slice(0, EVENTS_SHOWN);
    const rows = shown.map((e) => {
      const why = BF.el("td", { text: e.why != null ? e.why : e.reason || "" });
      if (e.hint) why.append(BF.el("strong", { class: "hint", text: " Fix: " + e.hint }));
      return BF.el(
        "tr",
        { class: e.kind === "client_ready" ? "ready" : e.kind === "error" || e.next ? "problem" : "", "data-kind": e.kind || "" },
        BF.el("td", { class: "num", text: when(e.t).text, title: when(e.t).title }),
        BF.el("td", { text: e.what || e.kind || "" }),
        BF.el("td", { text: BY[e.actor || e.source] || e.actor || e.source || "" }),
        BF.el("td", { text: e.change || "" }),
        why
      );
    });
    tbody.replaceChildren(...rows);
    const more = document.getElementById("b-more-events");
    more.hidden = newest.length <= EVENTS_SHOWN;
    more.textContent = st.allEvents ? "Show the newest " + EVENTS_SHOWN : "Show all " + newest.length + " events";
    more.setAttribute("aria-expanded", String(st.allEvents));
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
    const problem = st.problem;
    if (problem) notes.push(["bad", "Strap problem: " + problem.detail, problem.hint ? "Fix: " + problem.hint : ""]);
    if (s.monitoring_ok === false) notes.push(["bad", "Monitoring lost: exposure is held paused until the signal returns"]);
    if (s.device_connected === false) notes.push(["bad", "Strap disconnected"]);
    if (s.calibration_failed && s.calibration_detail) notes.push(["warn", "Calibration failed: " + s.calibration_detail]);
    else if (s.calibrated === false && s.calibration_detail) notes.push(["warn", "Calibration: " + s.calibration_detail]);
    if (s.recalibrating) notes.push(["info", "Fresh calibration running: the client is asked to sit quietly" + (s.calibration_reason ? " (" + s.calibration_reason + ")" : "")]);
    for (const n of s.calibration_notes || []) notes.push(["warn", "Calibration looked unusual: " + n]);
    if (s.checkin_due) notes.push(["info", "SUDS check-in due" + (s.checkin_prompt ? " (" + s.checkin_prompt.replaceAll("_", " ") + ")" : "")]);
    if (s.state === "exposing" && s.dwell_progress > 0) notes.push(["warn", "Above the pause threshold: " + Math.round(s.dwell_progress * 100) + " % of the dwell time"]);
    if ((s.state === "paused" || s.state === "grounding") && s.recovery_progress > 0) notes.push(["info", "Recovering: " + Math.round(s.recovery_progress * 100) + " % of the recovery time"]);
    const box = document.getElementById("notices");
    box.replaceChildren(
      ...notes.map(([cls, text, hint]) => {
        const n = BF.el("div", { class: "notice " + cls, text });
        if (hint) n.append(BF.el("span", { class: "hint", text: " " + hint }));
        return n;
      })
    );
    box.hidden = notes.length === 0;
  }

  // Calibration progress with the time left, on the session clock (redrawn with the charts).
  function renderProgress() {
    const s = st.session || {};
    let text = "";
    if (s.state === "calibrating" || s.recalibrating) {
      const now = BF.sessionNow(st.clock);
      if (s.calibration_started_t != null && s.calibration_s && now != null) {
        const done = Math.min(1, Math.max(0, (now - s.calibration_started_t) / s.calibration_s));
        const left = Math.max(0, s.calibration_s - (now - s.calibration_started_t));
        text = "Calibrating: " + Math.round(done * 100) + " % done, " + clockText(left) + " left";
        if (done >= 1) text = "Calibrating: finishing (checking the baseline)";
      } else if (s.state === "calibrating" && !s.calibration_failed) {
        text = "Calibration starts with the strap's first beat";
      }
    }
    const el = document.getElementById("progress");
    el.textContent = text;
    el.hidden = !text;
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
    renderProgress();
  }

  // ---- commands and their outcome ------------------------------------------------------------

  function replyLine(label, reply) {
    const box = document.getElementById("replies");
    const line = BF.el("div", { class: "wait", text: label + ": sent, waiting for the session…" });
    box.prepend(line);
    while (box.children.length > 3) box.lastElementChild.remove();
    reply.then((r) => {
      if (r.ok === true) {
        line.className = "ok";
        line.textContent = label + ": done" + (r.status && r.status !== "ok" ? " (" + r.status + ")" : "");
        setTimeout(() => line.remove(), DONE_FADES_MS); // a done notice must not go stale
      } else {
        line.className = "bad";
        line.textContent = label + ": " + (r.ok === false ? "refused — " : "") + (r.error || r.status || "no reply");
        setTimeout(() => line.remove(), REFUSAL_FADES_MS);
      }
    });
  }

  function send(label, cmd, args) {
    replyLine(label, BF.command(cmd, args));
  }
  Assessment.wire(send); // its offer and stop buttons (assessment.js)

  document.getElementById("b-offer").onclick = () => {
    const a = (st.session && st.session.offer_action) || {};
    if (!a.enabled) return;
    // the step the label names, so the service does exactly what the button said
    send(a.label, "offer_step", a.step != null ? { step: a.step } : {});
  };
  document.getElementById("b-pause").onclick = () => send("Pause", "pause", {});
  document.getElementById("b-complete").onclick = () => send("Step complete", "complete_step", {});
  document.getElementById("b-end").onclick = () => {
    const debrief = st.session && st.session.state === "debrief";
    const question = debrief ? "Close the session for " + clientId + "?" : "End this session for " + clientId + " (moves to debrief)?";
    if (confirm(question)) send("End session", "end", {});
  };
  document.getElementById("b-more-events").onclick = () => {
    st.allEvents = !st.allEvents;
    renderEvents();
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
      st.problem = msg.problem || null;
      st.clock = msg.clock || null;
      renderNumbers();
      renderSession();
      renderEvents();
      renderSuds();
      renderCharts();
      Chest.snapshot(msg); // ECG strip and breathing trace (chest.js)
      Assessment.snapshot(msg); // the breathing-rate check (assessment.js)
    },
    update(msg) {
      if (msg.clock) st.clock = msg.clock;
      if (Assessment.update(msg)) return; // the breathing-rate check (assessment.js)
      if (Chest.update(msg)) return; // ecg, breathing, movement, guidance (chest.js)
      if (msg.point && msg.kind !== "beat") addPoint(msg.point);
      if (msg.kind === "session") {
        const before = st.session && st.session.state;
        st.session = msg.view;
        if (msg.view.state !== before && msg.view.t != null) addSpan(msg.view.t, msg.view.state, msg.view.pause_reason);
        renderSession();
      } else if (msg.kind === "status") {
        st.status = msg.view;
        st.problem = msg.problem || null;
        renderNext();
        renderNotice();
      } else if (msg.kind === "event") {
        // a late arrival (held by a bridge during an outage) goes where its time says
        let at = st.events.length;
        while (at > 0 && msg.view.t != null && st.events[at - 1].t > msg.view.t && st.events.length - at < 50) at--;
        st.events.splice(at, 0, msg.view);
        if (st.events.length > 300) st.events.shift();
        st.problem = msg.problem || null;
        const e = msg.view;
        if (e.to_state && e.from_state !== e.to_state && e.t != null) addSpan(e.t, e.to_state, e.reason);
        renderEvents();
        // a decline or a device error changes what comes next before the session says so
        renderNext();
        renderNotice();
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
      const line = BF.el("div", { class: "bad", text: "A command from elsewhere was refused: " + (r.error || r.status || "?") });
      box.prepend(line);
      setTimeout(() => line.remove(), REFUSAL_FADES_MS);
    },
  });
  setInterval(renderCharts, 500);
  window.addEventListener("resize", renderCharts);
})();
