// Therapist overview: one row per client, updated live from "summary" messages.
"use strict";

(() => {
  const STALE_S = 10;
  // who acts next on each client, in a word (the client's page has the whole line)
  const NEXT_WHO = { therapist: "You", client: "Client", system: "Automatic", nobody: "—" };
  const rows = new Map(); // client id -> summary
  const trails = new Map(); // client id -> [[session t, arousal|null], ...] seen since page load
  const TRAIL_S = 120;

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

  // a small arousal trace of the last two minutes, upper threshold dashed; breaks where no data
  function sparkline(s) {
    const c = BF.el("canvas", { class: "spark", width: 120, height: 26, title: "arousal, last 2 min" });
    c.setAttribute("role", "img");
    c.setAttribute("aria-label", "arousal trace of " + s.client + ", last 2 minutes");
    const ctx = c.getContext("2d");
    const trail = trails.get(s.client) || [];
    if (!trail.length) return c;
    const end = trail[trail.length - 1][0];
    const x = (t) => 120 - ((end - t) / TRAIL_S) * 120;
    const y = (v) => 24 - (v / 100) * 22;
    if (s.upper != null) {
      ctx.strokeStyle = "#b07a20";
      ctx.setLineDash([3, 3]);
      ctx.beginPath();
      ctx.moveTo(0, y(s.upper));
      ctx.lineTo(120, y(s.upper));
      ctx.stroke();
      ctx.setLineDash([]);
    }
    ctx.strokeStyle = "#6a4c9c";
    ctx.lineWidth = 1.5;
    let prev = null;
    ctx.beginPath();
    for (const [t, v] of trail) {
      if (v == null) {
        prev = null;
        continue;
      }
      if (prev && t - prev <= 5) ctx.lineTo(x(t), y(v));
      else ctx.moveTo(x(t), y(v));
      prev = t;
    }
    ctx.stroke();
    return c;
  }
  const tbody = document.querySelector("#clients tbody");

  function connection(s) {
    if (s.online === false) return ["offline", "offline"];
    const age = s.last_rx == null ? null : BF.serverNow() - s.last_rx;
    if (age == null) return ["stale", "no data"];
    if (age > STALE_S) return ["stale", "silent " + Math.round(age) + " s"];
    return ["online", "live"];
  }

  function meter(s) {
    const wrap = BF.el("span", { class: "meter", title: "arousal 0–100" });
    wrap.setAttribute("aria-hidden", "true"); // the number beside it says the same
    if (s.arousal != null) {
      const fill = BF.el("span", { class: "fill" });
      fill.style.width = Math.max(0, Math.min(100, s.arousal)) + "%";
      wrap.append(fill);
    }
    if (s.upper != null) {
      const mark = BF.el("span", { class: "mark" });
      mark.style.left = s.upper + "%";
      wrap.append(mark);
    }
    return wrap;
  }

  function render() {
    const ids = [...rows.keys()].sort();
    document.getElementById("none").hidden = ids.length > 0;
    tbody.replaceChildren(
      ...ids.map((id) => {
        const s = rows.get(id);
        const [cls, label] = connection(s);
        const state = s.state || "unknown";
        // in words from the dashboard's views; an older hub gives only the id: no underscores
        const stateText = s.state_label || (s.state ? s.state.replaceAll("_", " ") : "no state yet");
        const next = s.next || {};
        const nextCell = BF.el("td", { class: "next-cell" + (s.client_ready ? " ready" : ""), "data-field": "next", title: next.text || "" });
        nextCell.append(s.client_ready ? BF.el("strong", { text: next.short || "Client is ready" }) : next.short || NEXT_WHO[next.who] || "–");
        const step = s.step_index != null ? s.step_index + 1 + (s.steps ? " / " + s.steps : "") : "–";
        const age = s.last_rx == null ? "–" : Math.max(0, Math.round(BF.serverNow() - s.last_rx)) + " s ago";
        const tr = BF.el(
          "tr",
          { class: "client-row", "data-client": id },
          BF.el("td", {}, BF.el("a", { href: "/t/" + encodeURIComponent(id), text: id })),
          BF.el("td", {}, BF.el("span", { class: "badge " + cls, text: label })),
          BF.el("td", {}, BF.el("span", { class: "badge " + state, "data-field": "state", "data-state": state, text: stateText })),
          nextCell,
          BF.el("td", { class: "num", title: s.step_title || "", text: step }),
          BF.el("td", { class: "num" }, meter(s), " ", BF.el("span", { "data-field": "arousal", text: BF.fmt(s.arousal) })),
          BF.el("td", {}, sparkline(s)),
          BF.el("td", { class: "num", "data-field": "hr", text: s.hr == null ? "–" : BF.fmt(s.hr) + " bpm" }),
          BF.el("td", { class: "num", "data-field": "quality", text: s.quality == null ? "–" : Math.round(s.quality * 100) + " %" }),
          BF.el("td", { class: "num", "data-field": "battery", text: s.battery == null ? "–" : BF.fmt(s.battery) + " %" }),
          BF.el("td", { class: "num", text: age })
        );
        tr.addEventListener("click", (ev) => {
          if (ev.target.tagName !== "A") location.href = "/t/" + encodeURIComponent(id);
        });
        return tr;
      })
    );
  }

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
        remember(s);
      }
      render();
    },
    summary(msg) {
      rows.set(msg.client, msg.summary);
      remember(msg.summary);
      soon();
    },
  });
  // ages and staleness move on even when nothing arrives
  setInterval(render, 1000);
})();
