// Therapist overview of a group: one row per client, the clients who need attention first
// (paused, then arousal rising, then signal trouble, then the rest; id order within a group so
// rows move only when a client changes group), a quiet alert when anyone pauses.
//
// Cheap with hundreds of live clients, so that the WebSocket's messages are handled as they come:
// - the message handler only stores the rows (and announces a pause);
// - the DOM is written in one animation frame, at most four times a second (in the next frame
//   for a pause or a row scrolled into view), only for rows whose data changed or whose age
//   ticked: rows on screen (IntersectionObserver) at once, rows off screen a few per frame
//   (every row's text stays true within a few seconds, for screen readers and find-in-page),
//   and a row whose group changed at once wherever it is;
// - rows are grid boxes with fixed columns (dashboard.css): a changed row is laid out alone,
//   where a table of 300 rows was laid out whole whenever one cell changed (20-110 ms a frame);
//   and each row is a compositor layer: a client changing group moves the rows between its old
//   and new place, which are then moved, not painted again (20-40 ms a frame with 300 clients);
// - sparklines are drawn only for rows on screen, at most once a second each, a few
//   milliseconds' worth per frame; a row scrolled into view is drawn in the next frame.
"use strict";

(() => {
  const STALE_S = 10;
  // who acts next on each client, in a word (the client's page has the whole line)
  const NEXT_WHO = { therapist: "You", client: "Client", system: "Automatic", nobody: "—" };
  const GROUP_CLASS = ["paused", "rising", "signal", "calm"];
  const rows = new Map(); // client id -> summary
  const trails = new Map(); // client id -> [[session t, arousal|null], ...]
  const alertedUntil = new Map(); // client id -> Date.now() until which its row is marked
  const TRAIL_S = 120;
  const SPARK_W = 240;
  const SPARK_H = 56;
  const ALERT_MARK_MS = 30000;
  const MAX_ALERTS = 4;
  const SPARK_EVERY_MS = 1000; // a row's sparkline is redrawn at most this often
  const SPARK_BUDGET_MS = 4; // sparkline drawing per frame; the rest waits for the next frame
  const RENDER_EVERY_MS = 250; // live values are written at most 4 times a second
  const OFFSCREEN_PER_FRAME = 10; // rows off screen written per frame (300 rows in ~8 s)
  let loaded = false; // the first overview came: later pauses are news
  const baseTitle = document.title;

  function remember(s) {
    const t = s.arousal_t;
    if (t == null) return;
    let trail = trails.get(s.client);
    if (!trail) trails.set(s.client, (trail = []));
    const last = trail[trail.length - 1];
    if (last && last[0] >= t) return;
    trail.push([t, s.arousal]);
    while (trail.length && trail[0][0] < t - TRAIL_S) trail.shift();
  }

  // the arousal of the last two minutes; upper threshold dashed, lower dotted; breaks where no data.
  // Drawn into the row's own canvas, at most once a second per row (300 rows stay cheap).
  function drawSpark(c, s) {
    const dpr = Math.max(1, Math.min(3, window.devicePixelRatio || 1));
    if (c.width !== SPARK_W * dpr) {
      c.width = SPARK_W * dpr;
      c.height = SPARK_H * dpr;
    }
    const trail = trails.get(s.client) || [];
    c.dataset.points = String(trail.length);
    const ctx = c.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, SPARK_W, SPARK_H);
    const y = (v) => SPARK_H - 3 - (v / 100) * (SPARK_H - 6);
    const line = (v, dash, colour) => {
      ctx.strokeStyle = colour;
      ctx.lineWidth = 1;
      ctx.setLineDash(dash);
      ctx.beginPath();
      ctx.moveTo(0, y(v));
      ctx.lineTo(SPARK_W, y(v));
      ctx.stroke();
      ctx.setLineDash([]);
    };
    if (s.upper != null) line(s.upper, [4, 3], "#b07a20");
    if (s.lower != null) line(s.lower, [1, 3], "#5b6270");
    if (!trail.length) return;
    const end = trail[trail.length - 1][0];
    const x = (t) => SPARK_W - ((end - t) / TRAIL_S) * SPARK_W;
    ctx.strokeStyle = "#6a4c9c";
    ctx.lineWidth = 2;
    let prev = null;
    ctx.beginPath();
    for (const [t, v] of trail) {
      if (v == null) {
        prev = null;
        continue;
      }
      if (prev != null && t - prev <= 5) ctx.lineTo(x(t), y(v));
      else ctx.moveTo(x(t), y(v));
      prev = t;
    }
    ctx.stroke();
  }
  const tbody = document.querySelector("#clients tbody");
  const chime = document.getElementById("chime");

  function connection(s) {
    if (s.online === false) return ["offline", "offline"];
    const age = s.last_rx == null ? null : BF.serverNow() - s.last_rx;
    if (age == null) return ["stale", "no data"];
    if (age > STALE_S) return ["stale", "silent " + Math.round(age) + " s"];
    return ["online", "live"];
  }

  // the hub's group, plus data gone silent (only the browser knows how long ago is "now")
  function group(s) {
    const g = s.attention == null ? 3 : s.attention;
    const [cls, label] = connection(s);
    if (g === 3 && cls !== "online") return [2, label.charAt(0).toUpperCase() + label.slice(1)];
    return [g, s.attention_why || ""];
  }

  function order() {
    const keyed = [...rows.values()].map((s) => [group(s), s]);
    keyed.sort((a, b) => a[0][0] - b[0][0] || (a[1].client < b[1].client ? -1 : 1));
    return keyed;
  }

  function setText(el, text) {
    if (el.textContent !== text) el.textContent = text;
  }
  function setAttr(el, name, value) {
    if (el.getAttribute(name) !== value) el.setAttribute(name, value);
  }

  // One row per client, made once and then updated in place: rebuilding every row four times a
  // second kept a browser busy for seconds with a few hundred clients.
  const els = new Map(); // client id -> the row's elements
  function makeRow(id) {
    const r = {};
    const href = "/t/" + encodeURIComponent(id);
    r.tr = BF.el("tr", { class: "client-row", "data-client": id });
    r.attnBadge = BF.el("span", {});
    r.stateBadge = BF.el("span", { "data-field": "state" });
    r.next = BF.el("td", { "data-field": "next", "data-label": "Next" });
    // the bar and the pause threshold's mark are backgrounds of one box, moved by two custom
    // properties (dashboard.css): no positioned boxes, which made every frame's paint walk
    // three layers per row
    r.meter = BF.el("span", { class: "meter", title: "arousal 0–100" });
    r.meter.setAttribute("aria-hidden", "true"); // the number beside it says the same
    r.arousal = BF.el("span", { "data-field": "arousal" });
    r.trend = BF.el("span", { class: "trend", "data-field": "trend" });
    r.canvas = BF.el("canvas", { class: "spark", width: SPARK_W, height: SPARK_H });
    r.canvas.setAttribute("role", "img");
    r.drawn = 0;
    r.hr = BF.el("td", { class: "num", "data-field": "hr", "data-label": "HR" });
    r.quality = BF.el("td", { class: "num", "data-field": "quality", "data-label": "Signal" });
    r.conn = BF.el("span", {});
    r.step = BF.el("td", { class: "num", "data-label": "Step" });
    r.battery = BF.el("td", { class: "num", "data-field": "battery", "data-label": "Battery" });
    r.age = BF.el("td", { class: "num", "data-label": "Last data" });
    r.tr.append(
      BF.el("td", { class: "attn", "data-field": "attention", "data-label": "Attention" }, r.attnBadge),
      BF.el("td", { class: "who", "data-label": "Client" }, BF.el("a", { href, text: id })),
      BF.el("td", { "data-label": "Session" }, r.stateBadge),
      r.next,
      BF.el("td", { class: "num", "data-label": "Arousal" }, r.meter, " ", r.arousal, r.trend),
      BF.el("td", { class: "spark-cell", "data-label": "Last 2 min" }, r.canvas),
      r.hr,
      r.quality,
      BF.el("td", { "data-label": "Connection" }, r.conn),
      r.step,
      r.battery,
      r.age
    );
    r.tr.addEventListener("click", (ev) => {
      if (ev.target.tagName !== "A") location.href = href;
    });
    return r;
  }

  function setVar(el, name, value) {
    if (el.style.getPropertyValue(name) !== value) el.style.setProperty(name, value);
  }

  function updateRow(r, s, rank, why, now) {
    const marked = (alertedUntil.get(s.client) || 0) > now;
    setAttr(r.tr, "class", "client-row group-" + GROUP_CLASS[rank] + (marked ? " alerted" : ""));
    setAttr(r.tr, "data-attention", String(rank));
    setAttr(r.attnBadge, "class", why ? "badge attn-" + GROUP_CLASS[rank] : "calm");
    setText(r.attnBadge, why || "—");
    const state = s.state || "unknown";
    // in words from the dashboard's views; an older hub gives only the id: no underscores
    const stateText = s.state_label || (s.state ? s.state.replaceAll("_", " ") : "no state yet");
    setAttr(r.stateBadge, "class", "badge " + state);
    setAttr(r.stateBadge, "data-state", state);
    setText(r.stateBadge, stateText);
    const next = s.next || {};
    const nextText = s.client_ready ? next.short || "Client is ready" : next.short || NEXT_WHO[next.who] || "–";
    setAttr(r.next, "class", "next-cell" + (s.client_ready ? " ready" : ""));
    setAttr(r.next, "title", next.text || "");
    if (r.next.textContent !== nextText || !!r.next.querySelector("strong") !== !!s.client_ready) {
      r.next.replaceChildren(s.client_ready ? BF.el("strong", { text: nextText }) : nextText);
    }
    setVar(r.meter, "--a", (s.arousal == null ? 0 : Math.max(0, Math.min(100, s.arousal))) + "%");
    setVar(r.meter, "--u", s.upper == null ? "-10%" : s.upper + "%"); // -10 %: off the bar, no mark
    setText(r.arousal, BF.fmt(s.arousal));
    const per = s.trend == null ? null : Math.round(s.trend);
    const trend = per == null ? "" : " " + (per > 0 ? "↑ " : per < 0 ? "↓ " : "→ ") + Math.abs(per) + "/min";
    setText(r.trend, trend);
    const sparkTrend = s.trend == null ? "" : ", trend " + (s.trend > 0 ? "+" : "") + s.trend + " per minute";
    setAttr(r.canvas, "aria-label", "arousal of " + s.client + ", last 2 minutes" + sparkTrend);
    setText(r.hr, s.hr == null ? "–" : BF.fmt(s.hr) + " bpm");
    setText(r.quality, s.quality == null ? "–" : Math.round(s.quality * 100) + " %");
    const [cls, label] = connection(s);
    setAttr(r.conn, "class", "badge " + cls);
    setText(r.conn, label);
    setText(r.step, s.step_index != null ? s.step_index + 1 + (s.steps ? " / " + s.steps : "") : "–");
    setAttr(r.step, "title", s.step_title || "");
    setText(r.battery, s.battery == null ? "–" : BF.fmt(s.battery) + " %");
    setText(r.age, s.last_rx == null ? "–" : Math.max(0, Math.round(BF.serverNow() - s.last_rx)) + " s ago");
  }

  // Rows on screen (or about to be): only their sparklines are drawn. A row coming into view is
  // brought up to date at once.
  const onScreen = new Set(); // client ids
  const seen = new IntersectionObserver(
    (entries) => {
      for (const e of entries) {
        const id = e.target.dataset.client;
        if (e.isIntersecting) {
          onScreen.add(id);
          dirty.add(id);
        } else onScreen.delete(id);
      }
      frame(true);
    },
    { rootMargin: "200px 0px" }
  );

  // which sparklines are out of date, oldest first; drawn within a time budget per frame
  function sparkSig(s) {
    const trail = trails.get(s.client) || [];
    return trail.length + ":" + (trail.length ? trail[trail.length - 1][0] : "") + ":" + s.upper + ":" + s.lower;
  }
  function drawSparks(now) {
    const due = [];
    for (const id of onScreen) {
      const r = els.get(id);
      const s = rows.get(id);
      if (!r || !s || sparkSig(s) === r.sig) continue;
      if (r.drawn && now - r.drawn < SPARK_EVERY_MS) continue;
      due.push(r);
    }
    due.sort((a, b) => a.drawn - b.drawn);
    const start = performance.now();
    let left = 0;
    for (let i = 0; i < due.length; i++) {
      if (i > 0 && performance.now() - start > SPARK_BUDGET_MS) {
        left = due.length - i;
        break;
      }
      const r = due[i];
      const s = rows.get(r.tr.dataset.client);
      drawSpark(r.canvas, s);
      r.sig = sparkSig(s);
      r.drawn = now;
    }
    return left;
  }

  function showPausedInTitle(paused) {
    const title = (paused ? "(" + paused + " paused) " : "") + baseTitle;
    if (document.title !== title) document.title = title;
  }

  // indices into `seq` of a longest strictly increasing subsequence (entries < 0 left out)
  function longestRun(seq) {
    const tails = []; // tails[k]: index in seq ending the best run of length k + 1
    const prev = new Array(seq.length).fill(-1);
    for (let i = 0; i < seq.length; i++) {
      if (seq[i] < 0) continue;
      let lo = 0;
      let hi = tails.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (seq[tails[mid]] < seq[i]) lo = mid + 1;
        else hi = mid;
      }
      if (lo > 0) prev[i] = tails[lo - 1];
      tails[lo] = i;
    }
    const keep = new Set();
    for (let i = tails.length ? tails[tails.length - 1] : -1; i >= 0; i = prev[i]) keep.add(i);
    return keep;
  }

  function reorder(wanted) {
    const place = new Map();
    let k = 0;
    for (const tr of tbody.children) place.set(tr, k++);
    const keep = longestRun(wanted.map((r) => (place.has(r.tr) ? place.get(r.tr) : -1)));
    let anchor = null; // the row the next one (going up the list) goes before
    for (let i = wanted.length - 1; i >= 0; i--) {
      const tr = wanted[i].tr;
      if (!keep.has(i)) {
        if (!tr.isConnected) {
          tbody.insertBefore(tr, anchor);
          seen.observe(tr);
        } else if (tbody.moveBefore) tbody.moveBefore(tr, anchor);
        else tbody.insertBefore(tr, anchor);
      }
      anchor = tr;
    }
  }

  let lastOrder = []; // the rows in the order drawn
  function render() {
    const now = Date.now();
    const keyed = order();
    document.getElementById("none").hidden = keyed.length > 0;
    showPausedInTitle(keyed.filter(([g]) => g[0] === 0).length);
    for (const id of [...els.keys()]) {
      if (!rows.has(id)) {
        const gone = els.get(id);
        seen.unobserve(gone.tr);
        gone.tr.remove();
        els.delete(id);
        onScreen.delete(id);
      }
    }
    const wanted = [];
    for (const [[rank, why], s] of keyed) {
      const id = s.client;
      let r = els.get(id);
      const made = !r;
      if (made) els.set(id, (r = makeRow(id)));
      // a row's group can change with nothing new from the hub (its data went silent), so the
      // group is compared on every frame and written wherever the row is
      if (made || r.rank !== rank || r.why !== why || (dirty.has(id) && onScreen.has(id))) {
        updateRow(r, s, rank, why, now);
        r.rank = rank;
        r.why = why;
        dirty.delete(id);
      }
      wanted.push(r);
    }
    // rows off screen: the ones waiting longest first (a Set keeps the order ids were added in)
    let budget = OFFSCREEN_PER_FRAME;
    for (const id of dirty) {
      if (budget <= 0) break;
      const r = els.get(id);
      const s = rows.get(id);
      dirty.delete(id);
      if (!r || !s) continue;
      updateRow(r, s, r.rank, r.why, now);
      budget--;
    }
    // move rows only when the order changed (a client changed group, or a new one came), and then
    // the fewest: rows already in order (the longest increasing run of their places) stay; a row
    // moved one at a time down the list re-inserted every row after it, hundreds per frame
    let same = lastOrder.length === wanted.length;
    for (let i = 0; same && i < wanted.length; i++) same = lastOrder[i] === wanted[i];
    if (!same) {
      reorder(wanted);
      lastOrder = wanted;
    }
    return drawSparks(now) + (dirty.size ? 1 : 0);
  }

  // All DOM writes happen in one animation frame: right after the data, before style and layout,
  // so nothing is laid out twice. `urgent` (a pause, a row scrolled into view) draws in the next
  // frame; live values at most every RENDER_EVERY_MS.
  const dirty = new Set(); // client ids whose rows must be written
  let framePending = false;
  let timerPending = false;
  let lastRender = 0;
  function frame(urgent) {
    if (framePending) return;
    const wait = RENDER_EVERY_MS - (performance.now() - lastRender);
    if (!urgent && wait > 0) {
      if (timerPending) return;
      timerPending = true;
      setTimeout(() => {
        timerPending = false;
        frame(true);
      }, wait);
      return;
    }
    framePending = true;
    let done = false;
    const run = () => {
      if (done) return;
      done = true;
      framePending = false;
      lastRender = performance.now();
      // sparklines left over for lack of time are drawn in the next frame, rows off screen in
      // the next render
      const left = render();
      if (left > 0) frame(dirty.size === 0);
    };
    requestAnimationFrame(run);
    // a hidden tab gets no animation frames, and its title must still say who paused
    setTimeout(run, 100);
  }

  // a pause is news once: a line in the polite live region (read out by a screen reader when
  // it is idle), the row marked for a while; a sound only when the therapist turned it on
  function announcePause(s) {
    alertedUntil.set(s.client, Date.now() + ALERT_MARK_MS);
    const why = s.pause_reason ? " (" + String(s.pause_reason).replaceAll("_", " ") + ")" : "";
    const item = BF.el(
      "li",
      { class: "alert", "data-client": s.client },
      BF.el("span", { text: s.client + " paused" + why + " at " + BF.fmtClock(BF.serverNow()) + ". " }),
      BF.el("a", { href: "/t/" + encodeURIComponent(s.client), text: "Open " + s.client })
    );
    const list = document.getElementById("alert-list");
    list.append(item); // a log region reads additions; the newest is drawn first by CSS
    while (list.children.length > MAX_ALERTS) list.firstElementChild.remove();
    dismiss.hidden = false;
    if (chime && chime.checked) ding();
  }

  let audio = null;
  function ding() {
    try {
      audio = audio || new AudioContext();
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.frequency.value = 660;
      gain.gain.setValueAtTime(0.0001, audio.currentTime);
      gain.gain.exponentialRampToValueAtTime(0.08, audio.currentTime + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, audio.currentTime + 0.5);
      osc.connect(gain).connect(audio.destination);
      osc.start();
      osc.stop(audio.currentTime + 0.55);
    } catch (e) {
      // no audio device: the visual alert is the alert
    }
  }

  const dismiss = document.getElementById("b-dismiss");
  dismiss.addEventListener("click", () => {
    document.getElementById("alert-list").replaceChildren();
    dismiss.hidden = true;
    alertedUntil.clear();
    for (const id of rows.keys()) dirty.add(id);
    frame(true);
  });
  if (chime) {
    chime.checked = localStorage.getItem("bf-chime") === "1";
    chime.addEventListener("change", () => localStorage.setItem("bf-chime", chime.checked ? "1" : "0"));
  }

  // the table scrolls sideways (a keyboard-reachable box) only where it is drawn as a table; on a
  // phone each client is a card and the box is neither scrollable nor a tab stop
  const scroller = document.querySelector(".table-scroll");
  const narrow = window.matchMedia("(max-width: 700px)");
  function fitScroller() {
    if (narrow.matches) scroller.removeAttribute("tabindex");
    else scroller.setAttribute("tabindex", "0");
  }
  narrow.addEventListener("change", fitScroller);
  fitScroller();

  // the socket lives in a worker (overview-feed.js): its messages are read on time while this
  // thread draws
  BF.connectVia(() => new Worker("/static/overview-feed.js"), "/ws", {
    overview(msg) {
      rows.clear();
      for (const s of msg.clients) {
        rows.set(s.client, s);
        if (s.trail) trails.set(s.client, s.trail.slice());
        else remember(s);
      }
      loaded = true;
      for (const id of rows.keys()) dirty.add(id);
      frame(true);
    },
    // the hub sends the rows that changed in one frame per turn of its loop: each client's newest
    // row, and every pause or state change in the order it happened. Kept here; drawn in a frame.
    summaries(msg) {
      let paused = false;
      let moved = false; // someone paused or resumed
      for (const s of msg.summaries) {
        const before = rows.get(s.client);
        rows.set(s.client, s);
        remember(s);
        dirty.add(s.client);
        if ((before && before.paused) !== s.paused) moved = true;
        if (loaded && s.paused === true && !(before && before.paused === true)) {
          announcePause(s);
          paused = true;
        }
      }
      // the tab's title counts the paused at once: a hidden tab gets no animation frames, and a
      // therapist on another tab sees the title
      if (moved) showPausedInTitle([...rows.values()].filter((s) => group(s)[0] === 0).length);
      frame(paused); // a pause moves its row to the top in the next frame, not in a quarter second
    },
  });
  // ages and staleness move on even when nothing arrives
  setInterval(() => {
    for (const id of rows.keys()) dirty.add(id);
    frame(false);
  }, 1000);
})();
