// The breathing pacer: its phase is computed from the service's schedule (start_t and phase
// lengths on the session clock), never from a timer of its own, so it stays in step with the
// service after a reconnect, a sleeping tablet or a slow frame.
"use strict";

const Pacer = (() => {
  const WORDS = { inhale: "Breathe in", hold: "Hold", exhale: "Breathe out", rest: "Rest" };
  const SMALL = 0.6;

  // phases: [[name, seconds], ...]; returns the phase at session time `now`
  function phaseAt(phases, startT, now) {
    const period = phases.reduce((s, p) => s + p[1], 0);
    if (!(period > 0) || now == null || startT == null) return null;
    const since = now - startT;
    const cycle = Math.floor(since / period);
    let pos = since - cycle * period;
    for (let i = 0; i < phases.length; i++) {
      const [name, dur] = phases[i];
      if (pos < dur || i === phases.length - 1) {
        return { name, index: i, elapsed: pos, duration: dur, progress: Math.min(1, pos / dur), cycle };
      }
      pos -= dur;
    }
    return null;
  }

  // circle scale for a phase: grows while breathing in, shrinks while breathing out (eased)
  function scaleFor(ph) {
    if (!ph) return 0.75;
    const ease = (x) => 0.5 - 0.5 * Math.cos(Math.PI * x);
    if (ph.name === "inhale") return SMALL + (1 - SMALL) * ease(ph.progress);
    if (ph.name === "hold") return 1;
    if (ph.name === "exhale") return 1 - (1 - SMALL) * ease(ph.progress);
    return SMALL;
  }

  return { phaseAt, scaleFor, WORDS };
})();
