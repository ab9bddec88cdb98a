// The therapist overview's WebSocket, in a dedicated worker: the socket is read, and each frame
// parsed, as it arrives, whatever the page's main thread is doing. With hundreds of clients the page
// spends 10-30 ms in each of its four frames a second (style, layout, paint, the compositor's
// layers), and a socket on the main thread had every message that came then wait for the frame.
//
// The page gets the rows in batches: at once when a client paused or resumed (the alert and the
// tab title must not wait), otherwise at most every FORWARD_EVERY_MS; it writes the screen at most
// four times a second anyway. Every row the hub sent is handed on, in order: none is merged away,
// so the sparkline trails keep every point.
"use strict";

importScripts("/static/common.js");

(() => {
  const FORWARD_EVERY_MS = 50;
  let queued = []; // rows not yet handed to the page, in the order they came
  let timer = null;
  const paused = new Map(); // client id -> paused, as the page last heard it

  function forward() {
    if (timer !== null) {
      clearTimeout(timer);
      timer = null;
    }
    if (!queued.length) return;
    self.postMessage({ type: "summaries", summaries: queued, offset: BF.clockOffset() });
    queued = [];
  }

  BF.connect("/ws", {
    overview(msg) {
      queued = []; // the overview is the whole state: rows queued before it are older
      forward(); // nothing to hand on: only the timer goes
      paused.clear();
      for (const s of msg.clients) paused.set(s.client, s.paused === true);
      self.postMessage({ ...msg, offset: BF.clockOffset() });
    },
    summaries(msg) {
      let urgent = false;
      for (const s of msg.summaries) {
        const now = s.paused === true;
        if ((paused.get(s.client) || false) !== now) urgent = true;
        paused.set(s.client, now);
        queued.push(s);
      }
      if (urgent) forward();
      else if (timer === null) timer = setTimeout(forward, FORWARD_EVERY_MS);
    },
  });
})();
