// Therapist overview of a group: one row per client, the clients who need attention first
// (paused, then arousal rising, then signal trouble, then the rest; id order within a group so
// rows move only when a client changes group), a quiet alert when anyone pauses.
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
    const trend = s.trend == null ? "" : ", trend " + (s.trend > 0 ? "+" : "") + s.trend + " per minute";
    c.setAttribute("aria-label", "arousal of " + s.client + ", last 2 minutes" + trend);
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
    r.fill = BF.el("span", { class: "fill" });
    r.mark = BF.el("span", { class: "mark" });
    const meterEl = BF.el("span", { class: "meter", title: "arousal 0–100" }, r.fill, r.mark);
    meterEl.setAttribute("aria-hidden", "true"); // the number beside it says the same
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
      BF.el("td", { class: "num", "data-label": "Arousal" }, meterEl, " ", r.arousal, r.trend),
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
    r.fill.hidden = s.arousal == null;
    r.fill.style.width = Math.max(0, Math.min(100, s.arousal || 0)) + "%";
    r.mark.hidden = s.upper == null;
    r.mark.style.left = (s.upper || 0) + "%";
    setText(r.arousal, BF.fmt(s.arousal));
    const per = s.trend == null ? null : Math.round(s.trend);
    const trend = per == null ? "" : " " + (per > 0 ? "↑ " : per < 0 ? "↓ " : "→ ") + Math.abs(per) + "/min";
    setText(r.trend, trend);
    const trail = trails.get(s.client) || [];
    const sig = trail.length + ":" + (trail.length ? trail[trail.length - 1][0] : "") + ":" + s.upper + ":" + s.lower;
    if (sig !== r.sig && (now - r.drawn >= 1000 || !r.drawn)) {
      drawSpark(r.canvas, s);
      r.sig = sig;
      r.drawn = now;
    }
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

  function render() {
    const now = Date.now();
    const keyed = order();
    document.getElementById("none").hidden = keyed.length > 0;
    const paused = keyed.filter(([g]) => g[0] === 0).length;
    const title = (paused ? "(" + paused + " paused) " : "") + baseTitle;
    if (document.title !== title) document.title = title;
    for (const id of [...els.keys()]) {
      if (!rows.has(id)) {
        els.get(id).tr.remove();
        els.delete(id);
      }
    }
    const wanted = [];
    for (const [[rank, why], s] of keyed) {
      let r = els.get(s.client);
      if (!r) els.set(s.client, (r = makeRow(s.client)));
      updateRow(r, s, rank, why, now);
      wanted.push(r.tr);
    }
    // move rows only when the order changed (a client changed group, or a new one came)
    const current = tbody.children;
    let same = current.length === wanted.length;
    for (let i = 0; same && i < wanted.length; i++) same = current[i] === wanted[i];
    if (!same) tbody.append(...wanted);
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
    render();
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

  // many clients publish several times a second: redraw at most 4 times a second
  let scheduled = false;
  function soon() {
    if (scheduled) return;
    scheduled = true;
    setTimeout(() => {
      scheduled = false;
      render();
    }, 250);
  }

  BF.connect("/ws", {
    overview(msg) {
      rows.clear();
      for (const s of msg.clients) {
        rows.set(s.client, s);
        if (s.trail) trails.set(s.client, s.trail.slice());
        else remember(s);
      }
      loaded = true;
      render();
    },
    // the hub sends the rows that changed in one frame per turn of its loop: each client's newest
    // row, and every pause or state change in the order it happened
    summaries(msg) {
      let paused = false;
      for (const s of msg.summaries) {
        const before = rows.get(s.client);
        rows.set(s.client, s);
        remember(s);
        if (loaded && s.paused === true && !(before && before.paused === true)) {
          announcePause(s);
          paused = true;
        }
      }
      if (paused) render(); // a pause moves its row to the top now, not in a quarter second
      else soon();
    },
  });
  // ages and staleness move on even when nothing arrives
  setInterval(render, 1000);
})();
