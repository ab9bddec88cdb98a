// Therapist overview: one row per client, updated live from "summary" messages.
"use strict";

(() => {
  const STALE_S = 10;
  const rows = new Map(); // client id -> summary
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
        const stateText = s.paused && s.pause_reason ? state + " (" + s.pause_reason + ")" : state;
        const step = s.step_index != null ? s.step_index + 1 + (s.steps ? " / " + s.steps : "") : "–";
        const age = s.last_rx == null ? "–" : Math.max(0, Math.round(BF.serverNow() - s.last_rx)) + " s ago";
        const tr = BF.el(
          "tr",
          { class: "client-row", "data-client": id },
          BF.el("td", {}, BF.el("a", { href: "/t/" + encodeURIComponent(id), text: id })),
          BF.el("td", {}, BF.el("span", { class: "badge " + cls, text: label })),
          BF.el("td", {}, BF.el("span", { class: "badge " + state, "data-field": "state", text: stateText })),
          BF.el("td", { class: "num", title: s.step_title || "", text: step }),
          BF.el("td", { class: "num" }, meter(s), " ", BF.el("span", { "data-field": "arousal", text: BF.fmt(s.arousal) })),
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
      for (const s of msg.clients) rows.set(s.client, s);
      render();
    },
    summary(msg) {
      rows.set(msg.client, msg.summary);
      soon();
    },
  });
  // ages and staleness move on even when nothing arrives
  setInterval(render, 1000);
})();
