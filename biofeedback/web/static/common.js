// Shared by every dashboard page: the WebSocket (reconnecting by itself, honest about being
// disconnected), the server/session clock, and commands with their replies. Also loaded by the
// overview's feed worker (overview-feed.js), which owns the overview's socket off the page's main
// thread: there the banner and the clock go to the page as messages (`connectVia`).
"use strict";

const BF = (() => {
  let ws = null;
  let url = null;
  let handlers = {};
  let retryMs = 500;
  let pingTimer = null;
  let lastPong = 0;
  let connected = false;
  let brokerOk = true; // the dashboard's own connection to the data (MQTT broker)
  let refCounter = 0;
  const pending = new Map(); // ref or command id -> {resolve, ref}
  // server wall clock = browser clock + offset (seconds); best estimate from ping round trips
  let offset = 0;
  let bestRtt = Infinity;

  const inWorker = typeof document === "undefined";

  function banner(state, text) {
    if (inWorker) {
      self.postMessage({ type: "conn", state, text, connected });
      return;
    }
    const el = document.getElementById("conn");
    if (!el) return;
    el.dataset.state = state;
    el.textContent = text;
  }

  function connect(path, hs) {
    handlers = hs;
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    url = proto + "//" + location.host + path;
    open();
  }

  function open() {
    banner("connecting", "Connecting…");
    try {
      ws = new WebSocket(url);
    } catch (e) {
      scheduleReconnect();
      return;
    }
    ws.onopen = () => {
      connected = true;
      retryMs = 500;
      bestRtt = Infinity;
      lastPong = Date.now();
      showState();
      ping();
      clearInterval(pingTimer);
      pingTimer = setInterval(() => {
        // a socket that stopped answering is lost even if the browser has not noticed yet
        if (Date.now() - lastPong > 12000) {
          ws.close();
          return;
        }
        ping();
      }, 4000);
      if (handlers.open) handlers.open();
    };
    ws.onmessage = (ev) => {
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch (e) {
        return;
      }
      dispatch(msg);
    };
    ws.onclose = (ev) => {
      clearInterval(pingTimer);
      const was = connected;
      connected = false;
      for (const [key, p] of pending) {
        p.resolve({ ok: null, status: "unknown", error: "connection lost before a reply came" });
        pending.delete(key);
      }
      if (ev.code === 1008 || ev.code === 4403) {
        banner("lost", "Not allowed. Reload the page or ask for a new link.");
        return;
      }
      banner("lost", was ? "Connection lost — reconnecting…" : "Cannot reach the dashboard — retrying…");
      if (handlers.lost) handlers.lost();
      scheduleReconnect();
    };
  }

  // The page side of a feed worker: the worker's socket messages come to `hs` as if from a socket
  // of the page's own, with the worker's banner and server clock. Without workers: the socket here.
  function connectVia(makeWorker, path, hs) {
    if (typeof Worker === "undefined") {
      connect(path, hs);
      return;
    }
    handlers = hs;
    banner("connecting", "Connecting…");
    const worker = makeWorker();
    let heard = false;
    // a worker that cannot start (its script not served, a policy that forbids it): the socket
    // here after all, rather than a page that says "Connecting…" for ever
    worker.onerror = (ev) => {
      if (heard) return;
      ev.preventDefault();
      worker.terminate();
      connect(path, hs);
    };
    worker.onmessage = (ev) => {
      heard = true;
      const msg = ev.data;
      if (msg.offset != null) offset = msg.offset;
      if (msg.type === "conn") {
        connected = msg.connected === true;
        banner(msg.state, msg.text);
        return;
      }
      dispatch(msg);
    };
  }

  function clockOffset() {
    return offset;
  }

  function showState() {
    if (!connected) return;
    if (brokerOk) banner("live", "Live");
    else banner("lost", "Connection lost — no data is arriving; reconnecting…");
  }

  function scheduleReconnect() {
    setTimeout(open, retryMs);
    retryMs = Math.min(retryMs * 2, 5000);
  }

  function ping() {
    if (ws && ws.readyState === WebSocket.OPEN) {
      ws.send(JSON.stringify({ type: "ping", c: Date.now() / 1000 }));
    }
  }

  function dispatch(msg) {
    if (msg.type === "pong") {
      lastPong = Date.now();
      const now = Date.now() / 1000;
      const rtt = now - msg.c;
      if (rtt <= bestRtt * 1.5 || rtt < 0.05) {
        bestRtt = Math.min(bestRtt, rtt);
        offset = msg.srv - (msg.c + rtt / 2);
      }
      return;
    }
    if (msg.type === "hello" && bestRtt === Infinity) {
      offset = msg.srv - Date.now() / 1000;
    }
    if (msg.type === "hello" || msg.type === "broker") {
      const value = msg.type === "hello" ? msg.broker : msg.connected;
      brokerOk = value !== false;
      showState();
      if (msg.type === "broker") return;
    }
    if (msg.type === "sent") {
      const p = pending.get("ref:" + msg.ref);
      if (p) {
        pending.delete("ref:" + msg.ref);
        pending.set("id:" + msg.id, p);
        if (p.onSent) p.onSent(msg.id);
      }
      return;
    }
    if (msg.type === "refused") {
      const p = pending.get("ref:" + msg.ref);
      if (p) {
        pending.delete("ref:" + msg.ref);
        p.resolve({ ok: false, status: "refused", error: msg.error });
      }
      return;
    }
    if (msg.type === "reply") {
      const p = pending.get("id:" + (msg.reply && msg.reply.id));
      if (p) {
        pending.delete("id:" + msg.reply.id);
        p.resolve(msg.reply);
        return;
      }
    }
    const h = handlers[msg.type];
    if (h) h(msg);
  }

  // Send a command; resolves with the service's reply ({ok, status, error}) or a refusal/timeout.
  function command(cmd, args, client) {
    return new Promise((resolve) => {
      if (!ws || ws.readyState !== WebSocket.OPEN) {
        resolve({ ok: false, status: "offline", error: "not connected: the command was not sent" });
        return;
      }
      const ref = "r" + ++refCounter;
      pending.set("ref:" + ref, { resolve, ref });
      const body = { type: "cmd", ref, cmd, args: args || {} };
      if (client) body.client = client;
      ws.send(JSON.stringify(body));
    });
  }

  function serverNow() {
    return Date.now() / 1000 + offset;
  }

  // Session-clock time now, from the newest anchor {t, rx, speed} the hub sent.
  function sessionNow(clock) {
    if (!clock || clock.t == null || clock.rx == null) return null;
    return clock.t + (serverNow() - clock.rx) * (clock.speed || 1);
  }

  function isConnected() {
    return connected;
  }

  function fmtClock(t) {
    if (t == null) return "–";
    const d = new Date(t * 1000);
    return d.toLocaleTimeString([], { hour12: false });
  }

  function fmt(v, digits) {
    return v == null || Number.isNaN(v) ? "–" : Number(v).toFixed(digits || 0);
  }

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("data-")) e.setAttribute(k, v);
      else e[k] = v;
    }
    for (const c of children) if (c != null) e.append(c);
    return e;
  }

  return { connect, connectVia, clockOffset, command, serverNow, sessionNow, isConnected, fmt, fmtClock, el };
})();
