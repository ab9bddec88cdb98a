// The client's own page: the agreed step, consent, SUDS check-in, breathing pacer, pause, and
// "I'm ready to continue" after a pause.
//
// Promises this screen keeps (tests/web/test_client_screen.py checks them in Chromium):
// - refusing is never harder than agreeing: "Yes" and "Not yet" look the same and sit side by side;
// - a check-in never shares the screen with a consent prompt: it waits until the prompt is answered;
// - the check-in slider has no value until the client places it;
// - "let's breathe together" is said only while the circle really paces (the service's schedule);
// - a message about an earlier moment ("Paused. You're in control.") goes when the session moves on.
// - the breathing-rate check (docs/resonance.md) starts only on "Yes, let's start", asked like a
//   step ("Not now" drawn the same); while it runs, "Stop the breathing check" and Pause stop it;
// - the client may choose their own breathing pace; it wins over the measured one.
"use strict";

(() => {
  const wsPath = location.pathname.replace(/\/+$/, "") + "/ws";
  const reduced = window.matchMedia("(prefers-reduced-motion: reduce)");
  const st = {
    session: null,
    guidance: null,
    assessment: null, // the breathing-rate check (the service's assessment topic)
    clock: null,
    checkin: null,
    answered: false,
    last: {},
    state: null, // the session state the screen last drew
    inflight: 0, // commands sent and not answered yet
  };
  const $ = (id) => document.getElementById(id);
  const PAUSED = ["paused", "grounding", "recovered"];

  // ---- numbers (hidden unless the client turns them on) -------------------------------------
  const toggle = $("show-numbers");
  toggle.checked = localStorage.getItem("bf-show-numbers") === "1";
  function renderNumbers() {
    $("numbers").hidden = !toggle.checked;
    $("n-hr").textContent = st.last.hr == null ? "–" : BF.fmt(st.last.hr) + " bpm";
    $("n-arousal").textContent = st.last.arousal == null ? "–" : BF.fmt(st.last.arousal) + " of 100";
  }
  toggle.onchange = () => {
    localStorage.setItem("bf-show-numbers", toggle.checked ? "1" : "0");
    renderNumbers();
  };

  // ---- what the screen says --------------------------------------------------------------
  const QUIET_MINUTE = "Taking a quiet minute to measure your resting rhythm. Sit comfortably and breathe normally.";

  // the breathing guidance in progress, when the service runs one with a schedule
  function pacing() {
    const g = st.guidance;
    return Boolean(g && g.active && g.phases && g.phases.length && g.start_t != null);
  }

  function stepLine(s) {
    const title = s.step_title;
    // a fresh calibration the therapist started: whatever the state, the client sits quietly
    if (s.recalibrating) return QUIET_MINUTE;
    switch (s.state) {
      case "calibrating":
        return QUIET_MINUTE;
      case "ready":
        return "Ready when you are.";
      case "step_offered":
        return title ? "Next step, if you want it: " + title : "A next step is offered.";
      case "exposing":
        return title ? "Your step: " + title : "You're doing the step you chose.";
      case "paused":
      case "grounding":
        // said only with a circle that really paces at the service's rate
        return pacing() ? "Paused. There's no hurry — let's breathe together." : "Paused. There's no hurry.";
      case "recovered":
        return "You've settled. Take all the time you like.";
      case "resume_offered":
        return title ? "When you're ready, you can go back to: " + title : "You can go back to your step when ready.";
      case "step_complete":
        return "Step complete. Well done.";
      case "debrief":
        return "Let's talk about how that went.";
      case "ended":
        return "The session has ended. Thank you.";
      default:
        return "Welcome. Take your time.";
    }
  }

  function checkinDue() {
    // the session payload is authoritative when present: it clears the prompt once answered
    if (st.session && "checkin_due" in st.session) return Boolean(st.session.checkin_due) && !st.answered;
    const c = st.checkin;
    return Boolean(c && c.due) && !st.answered;
  }

  // the breathing-rate check, in words the client reads at a glance
  function assessmentLine(a) {
    const n = (a.rates_bpm || []).length;
    const i = a.block_index == null ? 0 : a.block_index;
    const left = a.remaining_s == null ? "" : " About " + Math.max(1, Math.round(a.remaining_s / 60)) + " min left in this part.";
    if (a.phase === "rest") return "Breathing-rate check: a rest. Breathe as you like." + left;
    const rate = a.rate_bpm == null ? "" : " at " + BF.fmt(a.rate_bpm, 1) + " breaths a minute";
    return "Breathing-rate check, part " + (i + 1) + " of " + n + ": breathe with the circle" + rate + "." + left;
  }

  function render() {
    const s = st.session || {};
    const a = st.assessment || {};
    if (s.state !== st.state) {
      // a message about the previous moment does not outlive it (unless an answer is on its way)
      if (st.state !== null && st.inflight === 0) feedback("");
      st.state = s.state;
    }
    document.body.dataset.state = s.state || "";
    document.body.dataset.clientReady = String(Boolean(s.client_ready));
    $("step").textContent = stepLine(s);
    const agreed = $("agreed");
    const showAgreed = s.step_title && PAUSED.includes(s.state);
    agreed.hidden = !showAgreed;
    if (showAgreed) agreed.textContent = "Your step, on hold: " + s.step_title;
    const signal = $("signal");
    const lost = s.monitoring_ok === false || s.device_connected === false;
    signal.hidden = !lost;
    if (lost) signal.textContent = "The heart-rate strap is not sending right now, so we are staying paused. Nothing is lost.";

    const consent = $("consent");
    const stepAsked = Boolean(s.consent_needed);
    // one question at a time: the step's question first; the check's only with none open
    const aAsked = a.state === "offered" && !stepAsked;
    const asked = stepAsked || aAsked;
    $("a-consent").hidden = !aAsked;
    if (aAsked) $("a-consent-text").textContent = a.consent_needed || "Breathing-rate check: shall we start? You can stop at any moment.";
    const aRunning = a.state === "running";
    $("a-running").hidden = !aRunning;
    if (aRunning) $("a-running-text").textContent = assessmentLine(a);
    document.body.dataset.assessment = a.state || "";
    consent.hidden = !stepAsked;
    if (stepAsked) {
      $("consent-text").textContent =
        s.consent_text ||
        (s.consent_for === "resume"
          ? "Would you like to go back to your step" + (s.step_title ? ": " + s.step_title : "") + "?"
          : "Would you like to begin" + (s.step_title ? ": " + s.step_title : " the next step") + "?");
    }
    // one question at a time: a check-in waits until the consent prompt is answered
    const checkin = $("checkin");
    const showCheckin = checkinDue() && !asked;
    if (showCheckin && checkin.hidden) resetSlider();
    checkin.hidden = !showCheckin;
    // the words the client and therapist agreed for this step's scale, when the protocol has them
    const anchors = s.step_anchors || [];
    const low = anchors.find((a) => a[0] === 0);
    const high = anchors.find((a) => a[0] === 100);
    $("suds-low").textContent = "0 " + (low ? low[1] : "calm");
    $("suds-high").textContent = "100 " + (high ? high[1] : "worst");
    const middle = anchors.filter((a) => a[0] !== 0 && a[0] !== 100);
    $("suds-anchors").textContent = middle.map((a) => a[0] + " " + a[1]).join(" · ");

    const paced = pacing();
    $("pacer-wrap").hidden = !paced;
    // the client's own pace: offered whenever the session paces them, never during the check
    $("rate").hidden = !(paced && !aRunning);
    const chosen = a.chosen_rate_bpm == null ? "" : String(a.chosen_rate_bpm);
    const sel = $("rate-choice");
    if (document.activeElement !== sel && [...sel.options].some((o) => o.value === chosen)) sel.value = chosen;
    $("main").classList.toggle("asking", asked || showCheckin);
    const g = st.guidance;
    const prompt = g && g.active && g.prompt ? g.prompt : "";
    $("prompt").textContent = prompt;
    $("prompt").hidden = !prompt;

    // after any pause the client can say "I'm ready to continue": a request, never a resume
    const pausedNow = PAUSED.includes(s.state) && !asked;
    $("ready").hidden = !pausedNow;
    const said = Boolean(s.client_ready);
    $("b-ready").hidden = said;
    $("ready-text").textContent = said
      ? "Your therapist knows you're ready. Nothing goes on until they ask you and you say yes."
      : "When you feel ready to go on, you can tell your therapist. There's no rush.";

    $("grounding").hidden = !(s.state === "paused" || s.state === "grounding");
    $("grounding-text").textContent = paced
      ? "Would something else help more than breathing?"
      : "Would something help? You choose.";
    // only what the client's protocol offers; the one in use is marked
    const menu = s.grounding_menu || [];
    const current = g && g.active ? g.technique : null;
    document.querySelectorAll("[data-technique]").forEach((b) => {
      b.hidden = menu.length > 0 && !menu.includes(b.dataset.technique);
      b.setAttribute("aria-pressed", String(b.dataset.technique === current));
    });
    const paused = Boolean(s.paused);
    const pause = $("b-pause");
    pause.dataset.paused = String(paused);
    pause.textContent = paused ? "Paused" : "Pause";
    pause.hidden = s.state === "ended"; // nothing left to pause
    renderNumbers();
  }

  // ---- pacer -------------------------------------------------------------------------------
  const pacer = $("pacer");
  const ring = $("ring");
  const word = $("phase-word");
  let bar = null;

  function frame() {
    const g = st.guidance;
    const now = BF.sessionNow(st.clock);
    const ph = pacing() ? Pacer.phaseAt(g.phases, g.start_t, now) : null;
    if (!ph) {
      pacer.dataset.phase = "idle";
      delete pacer.dataset.elapsed;
      word.textContent = "";
      ring.style.transform = "";
      if (bar) bar.firstChild.style.width = "0%";
    } else {
      pacer.dataset.phase = ph.name;
      pacer.dataset.elapsed = ph.elapsed.toFixed(2);
      pacer.dataset.cycle = String(ph.cycle);
      pacer.dataset.now = now.toFixed(3);
      pacer.dataset.scale = Pacer.scaleFor(ph).toFixed(4);
      const w = Pacer.WORDS[ph.name] || ph.name;
      if (word.textContent !== w) word.textContent = w;
      if (reduced.matches) {
        ring.style.transform = "";
        if (!bar) {
          bar = BF.el("div", { class: "phase-bar" }, BF.el("span"));
          pacer.after(bar);
        }
        bar.firstChild.style.width = Math.round(ph.progress * 100) + "%";
      } else {
        ring.style.transform = "scale(" + Pacer.scaleFor(ph).toFixed(4) + ")";
      }
    }
    requestAnimationFrame(frame);
  }
  requestAnimationFrame(frame);

  // ---- the check-in slider: no value until the client places it ----------------------------
  const slider = $("suds");
  let placed = false;

  function resetSlider() {
    placed = false;
    slider.value = "50"; // not shown: the marker is hidden until the client places it
    showSlider();
  }

  function place() {
    placed = true;
    showSlider();
  }

  function showSlider() {
    slider.classList.toggle("unset", !placed);
    slider.style.setProperty("--fill", slider.value + "%");
    slider.setAttribute("aria-valuetext", placed ? slider.value : "not chosen yet");
    $("suds-value").textContent = placed ? slider.value : "–";
    $("b-suds").disabled = !placed;
  }

  slider.addEventListener("input", place);
  // a touch or click on the line places the marker there, even where the hidden value already is
  slider.addEventListener("pointerup", place);
  slider.addEventListener("keydown", (ev) => {
    if (placed) return;
    // the first key places the marker in the middle, visibly; the next ones move it
    if (["ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown", "PageUp", "PageDown"].includes(ev.key)) {
      ev.preventDefault();
      slider.value = "50";
      place();
    } else if (ev.key === "Home" || ev.key === "End") {
      ev.preventDefault();
      slider.value = ev.key === "Home" ? "0" : "100";
      place();
    }
  });

  // ---- actions -----------------------------------------------------------------------------
  function feedback(text) {
    $("feedback").textContent = text;
  }

  async function act(cmd, args, pendingText, doneText, buttons) {
    buttons.forEach((b) => (b.disabled = true));
    feedback(pendingText);
    st.inflight += 1;
    let r;
    try {
      r = await BF.command(cmd, args);
    } finally {
      st.inflight -= 1;
      buttons.forEach((b) => (b.disabled = false));
    }
    if (r.ok === true) feedback(doneText);
    else if (r.ok === false) feedback("That didn't go through (" + (r.error || r.status) + "). You can try again.");
    // no answer: it may still arrive, and the screen follows the session either way
    else feedback("No answer from the session yet. If nothing changes, you can try again.");
    return r;
  }

  $("b-pause").onclick = () => act("pause", {}, "Pausing…", "Paused. You're in control.", []);
  $("b-consent").onclick = () =>
    act("consent", {}, "Letting your therapist know…", "Thank you. You can pause at any time.", [$("b-consent"), $("b-decline")]);
  $("b-decline").onclick = () =>
    act("decline", {}, "Letting your therapist know…", "That's fine. Nothing happens until you're ready.", [$("b-consent"), $("b-decline")]);
  $("b-a-consent").onclick = () =>
    act("assessment_consent", {}, "Letting your therapist know…", "Thank you. You can stop at any moment.", [$("b-a-consent"), $("b-a-decline")]);
  $("b-a-decline").onclick = () =>
    act("assessment_decline", {}, "Letting your therapist know…", "That's fine. Nothing happens unless you want it.", [$("b-a-consent"), $("b-a-decline")]);
  // never disabled: stopping is always possible, even while an earlier stop is on its way
  $("b-a-stop").onclick = () => act("assessment_stop", {}, "Stopping…", "Stopped. What was measured is kept.", []);
  $("rate-choice").onchange = (ev) => {
    const v = ev.target.value;
    act("choose_rate", { rate_bpm: v === "" ? null : Number(v) }, "…", v === "" ? "Your measured pace." : "Your pace: " + v + " breaths a minute.", []);
  };
  $("b-ready").onclick = () =>
    act("ready", {}, "Letting your therapist know…", "Your therapist has been told.", [$("b-ready")]);
  $("b-suds").onclick = async () => {
    if (!placed) return;
    const r = await act("suds", { value: Number(slider.value) }, "Sending…", "Thank you.", [$("b-suds")]);
    showSlider(); // act() re-enabled Send; it stays as the slider says
    if (r.ok === true) {
      st.answered = true; // until the service says whether another check-in is due
      render();
    }
  };
  document.querySelectorAll("[data-technique]").forEach((b) => {
    b.onclick = () => act("choose_grounding", { technique: b.dataset.technique }, "…", "Okay.", []);
  });

  // ---- data --------------------------------------------------------------------------------
  BF.connect(wsPath, {
    snapshot(msg) {
      st.session = msg.session || null;
      st.guidance = msg.guidance || null;
      st.assessment = msg.assessment || null;
      st.checkin = msg.checkin || null;
      st.clock = msg.clock || null;
      const pts = msg.points || [];
      for (const p of pts) for (const k of ["hr", "arousal"]) if (k in p) st.last[k] = p[k];
      render();
    },
    update(msg) {
      if (msg.clock) st.clock = msg.clock;
      if (msg.point) for (const k of ["hr", "arousal"]) if (k in msg.point && msg.kind !== "beat") st.last[k] = msg.point[k];
      if (msg.kind === "session") {
        if (st.answered && !msg.view.checkin_due) st.answered = false;
        st.session = msg.view;
      } else if (msg.kind === "guidance") st.guidance = msg.view;
      else if (msg.kind === "assessment") st.assessment = msg.view;
      else if (msg.kind === "checkin") {
        if (msg.view.due) st.answered = false;
        st.checkin = msg.view;
      }
      else if (msg.kind !== "metrics" && msg.kind !== "arousal" && msg.kind !== "beat") return;
      render();
    },
  });
  resetSlider();
  render();
})();
