"""The dashboard hub: MQTT messages in, per-client state kept, WebSocket subscribers fed.

`Hub.ingest(topic, payload)` is the only way data gets in (the MQTT feeder in `mqttfeed.py` calls
it; tests call it directly). Every message updates the state of one client (latest views, the last
5 minutes of chart points, the event timeline, check-ins) and is pushed, serialised once, to every
subscriber watching that client. The overview gets its rows batched (`OverviewBatch`): one
`summaries` frame at the end of a loop turn with a pause or other state change, and for live
samples at most one every `HubLimits.overview_every_s` (5 ms), holding each changed client's
newest row, so with hundreds of clients a message costs the overview a dictionary look-up rather
than a summary, a JSON encoding and a WebSocket send per watcher. A subscriber that cannot keep up
is cut off (its browser reconnects and gets a fresh snapshot) instead of growing a queue without
bound.

Commands go the other way through `Hub.send_command`, which validates them for the sender's role,
stamps them with a fresh id and hands them to a `CommandSink` (the MQTT publisher); the reply that
comes back on the client's `reply` topic is routed to the subscriber that sent the command.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import secrets
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from biofeedback.errors import CommandError
from biofeedback.exposure.messages import GroundingTechnique
from biofeedback.service.topics import SCHEMA_VERSION, Topic, parse_topic
from biofeedback.web import attention, chest_views, next_action, views
from biofeedback.web.assessment_view import assessment_view
from biofeedback.web.history import PointHistory
from biofeedback.web.views import JsonDict

log = logging.getLogger(__name__)

CLIENT_COMMANDS = frozenset(
    {"pause", "consent", "decline", "suds", "choose_grounding", "ready"}
    # the resonance assessment (docs/resonance.md): agree, decline, stop, and one's own rate
    | {"assessment_consent", "assessment_decline", "assessment_stop", "choose_rate"}
)
# consent is the client's alone: a therapist can offer, pause and end, never agree for the client
THERAPIST_COMMANDS = frozenset(
    {"pause", "offer_step", "complete_step", "end", "adjust_thresholds", "recalibrate"}
    | {"assessment_offer", "assessment_stop"}
)
ROLE_COMMANDS: Mapping[str, frozenset[str]] = {
    "client": CLIENT_COMMANDS,
    "therapist": THERAPIST_COMMANDS,
}


@dataclass(frozen=True, slots=True)
class HubLimits:
    """How much the hub keeps per client and per subscriber."""

    history_s: float = 300.0  # chart window, session seconds
    max_points: int = 3000  # per series, whatever the beat rate
    max_events: int = 300
    max_checkins: int = 100
    queue_size: int = 2000  # messages waiting for one WebSocket before it is cut off
    reply_timeout_s: float = 5.0
    max_clients: int = 500  # distinct client ids tracked (junk topics cannot grow memory)
    commands_per_10s: int = 20  # per page: a stuck key or a script cannot flood the session
    # live samples reach the overview at most this often (one frame for every client that
    # changed); pauses and other state changes go out at the end of the loop turn they arrive in.
    # 5 ms: with 300 clients, against 10 ms, publish -> browser p50 4.6 against 7.4 ms and p99
    # 11.8 against 16.0 ms, for ~3 % of a core more (docs/benchmarks.md, "Clinic")
    overview_every_s: float = 0.005


class CommandSink(Protocol):
    """Where validated commands go (the MQTT publisher)."""

    @property
    def connected(self) -> bool:
        """False while the broker is unreachable (a command would wait in a queue)."""
        ...

    async def send_command(self, client_id: str, payload: bytes) -> None: ...


# Only a pause may wait for the broker to come back: applied late it is still the safe direction.
# A consent, an offer or new thresholds applied minutes after the click would act on a moment
# that has passed, so those are refused while the link is down and the person can try again.
QUEUE_WHILE_OFFLINE = frozenset({"pause"})


@dataclass(slots=True)
class ClientState:
    """What the hub knows about one client."""

    client_id: str
    status: JsonDict | None = None
    session: JsonDict | None = None
    guidance: JsonDict | None = None
    assessment: JsonDict | None = None  # the resonance assessment (web/assessment_view.py)
    arousal: JsonDict | None = None
    metrics: JsonDict | None = None
    checkin: JsonDict | None = None
    points: PointHistory = field(default_factory=PointHistory)  # flat arrays (web/history.py)
    events: deque[JsonDict] = field(default_factory=deque)
    checkins: deque[JsonDict] = field(default_factory=deque)
    spans: deque[JsonDict] = field(default_factory=deque)  # state changes: t, state, reason
    last_t: float | None = None  # newest session-clock stamp seen
    last_rx: float | None = None  # server wall time it arrived
    clock_speed: float = 1.0
    speed_given: bool = False  # the service said its clock speed; otherwise it is estimated
    anchors: deque[tuple[float, float]] = field(default_factory=deque)  # (rx, t) of live samples
    trend: float | None = None  # arousal slope, points per minute (attention.py)
    trend_t: float | None = None  # when it was last computed
    rising: bool = False  # in the overview's "arousal rising" group (with hysteresis)
    # the strap problem that lasts now (next_action.strap_problem), worked out when a strap event
    # or a status arrives (rare), so the overview row costs no more per live sample
    problem: JsonDict | None = None

    def update_problem(self) -> None:
        """Work the strap problem out again from the timeline and the status."""
        self.problem = next_action.strap_problem(self.events, self.status)

    def update_trend(self, t: float, value: float | None) -> None:
        """Recompute the arousal trend from the newest `TREND_WINDOW_S` of chart points (at most
        every `TREND_EVERY_S`: a 30 s slope moves slowly, and this runs for every client)."""
        if self.trend_t is not None and self.trend_t <= t < self.trend_t + attention.TREND_EVERY_S:
            return
        self.trend_t = t
        recent = self.points.arousal_since(t - attention.TREND_WINDOW_S)
        self.trend = attention.slope_per_min(recent, t)
        lower = ((self.session or {}).get("thresholds") or {}).get("lower")
        self.rising = attention.still_rising(self.rising, self.trend, value, lower)

    def observe_time(self, t: float, rx: float, *, live: bool) -> None:
        """Move the session-clock anchor forward; estimate the clock's speed from live samples.

        A demo's session clock may run several times faster than wall time. Unless the service
        says so, the speed is the slope of sample time over arrival time across up to 30 s of
        live samples (retained state and events can be old, so they never count). Within 3 % of
        real time it is taken as exactly 1.
        """
        if self.last_t is not None and t < self.last_t:
            return
        self.last_t, self.last_rx = t, rx
        if not live or self.speed_given:
            return
        self.anchors.append((rx, t))
        while len(self.anchors) > 2 and rx - self.anchors[0][0] > 30.0:
            self.anchors.popleft()
        rx0, t0 = self.anchors[0]
        if rx - rx0 >= 3.0 and t > t0:
            est = (t - t0) / (rx - rx0)
            self.clock_speed = 1.0 if abs(est - 1.0) < 0.03 else min(max(est, 0.01), 1000.0)

    def summary(self) -> JsonDict:
        """One overview row."""
        status = self.status or {}
        session = self.session or {}
        arousal = self.arousal or {}
        metrics = self.metrics or {}
        row: JsonDict = {
            "client": self.client_id,
            "online": status.get("online"),
            "battery": status.get("battery"),
            "device": status.get("device"),
            "contact": status.get("contact"),
            "quality": metrics.get("quality")
            if metrics.get("quality") is not None
            else status.get("quality"),
            "state": session.get("state"),
            "state_label": session.get("state_label"),  # in words (views / next_action.py)
            "next": session.get("next"),  # who acts next, and with which button
            "client_ready": session.get("client_ready"),
            "paused": session.get("paused"),
            "pause_reason": session.get("pause_reason"),
            "step_index": session.get("step_index"),
            "step_title": session.get("step_title"),
            "steps": len(session.get("steps") or ()),
            "arousal": arousal.get("arousal"),
            "arousal_t": arousal.get("t"),
            "upper": (session.get("thresholds") or {}).get("upper"),
            "lower": (session.get("thresholds") or {}).get("lower"),
            "hr": metrics.get("hr"),
            "last_t": self.last_t,
            "last_rx": self.last_rx,
            "device_connected": session.get("device_connected"),
            "monitoring_ok": session.get("monitoring_ok"),
            "trend": None if self.trend is None else round(self.trend, 1),
            "rising": self.rising,
            "strap_problem": None,
        }
        problem = self.problem
        if problem is not None and session.get("state") != "ended":
            # the client's page says the same until the strap is back (static/detail.js)
            row["strap_problem"] = problem["what"]
            if problem["next"] is not None:
                row["next"] = problem["next"]
        group, why = attention.attention(row, self.rising)
        row["attention"] = int(group)
        row["attention_why"] = why
        return row

    def clock(self) -> JsonDict:
        """Anchor mapping server wall time to this client's session clock."""
        return {"t": self.last_t, "rx": self.last_rx, "speed": self.clock_speed}

    def snapshot(self) -> JsonDict:
        """Everything a client page needs to draw itself from scratch."""
        return {
            "client": self.client_id,
            "summary": self.summary(),
            "status": self.status,
            "session": self.session,
            "guidance": self.guidance,
            "assessment": self.assessment,
            "checkin": self.checkin,
            "points": list(self.points),
            "events": list(self.events),
            "checkins": list(self.checkins),
            "spans": list(self.spans),
            "clock": self.clock(),
            "problem": self.problem,
        }


class Subscriber:
    """One WebSocket's view: either the overview (client None) or one client's page."""

    def __init__(self, role: str, client_id: str | None, queue_size: int) -> None:
        self.role = role
        self.client_id = client_id
        self.queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=queue_size)
        self.overflowed = False
        self.command_times: deque[float] = deque()

    def push(self, message: str) -> None:
        """Queue one serialised message; on overflow, end the stream (the page reconnects)."""
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            self.overflowed = True
            log.warning(
                "dashboard subscriber (%s, %s) fell %d messages behind; disconnecting it",
                self.role,
                self.client_id or "overview",
                self.queue.qsize(),
            )
            # make room for the end marker so the writer wakes up and closes the socket
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(None)


# Row fields whose every change the overview must see: a pause (the alert), a state, the service
# or strap going away. Two rows of one client that differ in any of them are both sent, in order;
# rows that differ only in numbers (HR, arousal, trend) are merged into the newest one.
MOMENT_FIELDS = (
    "online",
    "state",
    "paused",
    "pause_reason",
    "client_ready",
    "device_connected",
    "monitoring_ok",
    "contact",
    "step_index",
    "attention",
    "strap_problem",
)


def _moment(row: JsonDict) -> tuple[Any, ...]:
    return tuple(row.get(k) for k in MOMENT_FIELDS)


class OverviewBatch:
    """Overview rows waiting for the end of this event-loop turn.

    A live sample (metrics, arousal) only marks its client: the row is built at the flush, so a
    client with ten samples in one turn costs one summary. Any other message (session, status,
    event) builds its row at once; it replaces that client's waiting row when the moment fields
    are the same, and is queued after it when they differ, so every pause and state change reaches
    the page exactly once and in order, and the last row of a client is always its newest.
    """

    __slots__ = ("entries", "last")

    def __init__(self) -> None:
        # [client id, row or None (build at the flush)], in arrival order of their moments
        self.entries: list[list[Any]] = []
        self.last: dict[str, int] = {}  # client id -> index of its newest entry

    def mark(self, client_id: str) -> None:
        i = self.last.get(client_id)
        if i is not None and self.entries[i][1] is None:
            return
        self.last[client_id] = len(self.entries)
        self.entries.append([client_id, None])

    def add(self, client_id: str, row: JsonDict) -> None:
        i = self.last.get(client_id)
        if i is not None:
            entry = self.entries[i]
            if entry[1] is None or _moment(entry[1]) == _moment(row):
                entry[1] = row
                return
        self.last[client_id] = len(self.entries)
        self.entries.append([client_id, row])

    def take(self, build: Callable[[str], JsonDict | None]) -> list[JsonDict]:
        """The rows to send, oldest moment first; a row built now that shows the same moment as
        its client's previous one takes that one's place (no client is sent twice unchanged)."""
        rows: list[JsonDict] = []
        newest: dict[str, int] = {}
        for client_id, entry_row in self.entries:
            row = build(client_id) if entry_row is None else entry_row
            if row is None:
                continue
            i = newest.get(client_id)
            if i is not None and _moment(rows[i]) == _moment(row):
                rows[i] = row
            else:
                newest[client_id] = len(rows)
                rows.append(row)
        self.entries = []
        self.last = {}
        return rows


def _event_key(e: JsonDict) -> tuple[Any, ...]:
    return (e.get("source"), e.get("seq"), e.get("t"), e.get("kind"), e.get("to_state"))


def _same_event_known(events: deque[JsonDict], event: JsonDict, look_back: int = 50) -> bool:
    """True when the newest `look_back` events hold this one already (same source, seq, time,
    kind and state: a redelivered copy; a new session's seq 1 has another time)."""
    if event.get("seq") is None:
        return False
    key = _event_key(event)
    for i, e in enumerate(reversed(events)):
        if i >= look_back:
            break
        if _event_key(e) == key:
            return True
    return False


def _insert_in_time_order(events: deque[JsonDict], event: JsonDict) -> None:
    """Append, or put a late arrival (a backlog sent after newer messages) where its time says."""
    t = event.get("t")
    if t is None or not events or (events[-1].get("t") or 0.0) <= t:
        events.append(event)
        return
    i = len(events)
    while i > 0 and (events[i - 1].get("t") or 0.0) > t and len(events) - i < 50:
        i -= 1
    events.insert(i, event)


def _trail(state: ClientState, trail_s: float, most: int) -> list[list[float | None]]:
    if state.last_t is None:
        return []
    out: list[list[float | None]] = [
        [t, v] for t, v in state.points.arousal_since(state.last_t - trail_s)
    ]
    step = max(1, -(-len(out) // most))  # every n-th point: at most `most` of them
    return out[::step] if step > 1 else out


def _dumps(message: JsonDict) -> str:
    return json.dumps(message, separators=(",", ":"), allow_nan=False)


def validate_command(role: str, cmd: Any, args: Any) -> JsonDict:
    """Checked arguments of a dashboard command for `role`; CommandError names what is wrong."""
    allowed = ROLE_COMMANDS.get(role)
    if allowed is None:
        raise CommandError(f"role {role!r} may not send commands")
    if not isinstance(cmd, str) or cmd not in allowed:
        raise CommandError(
            f"command {cmd!r} is not allowed for role {role!r} "
            f"(allowed: {', '.join(sorted(allowed))})"
        )
    if args is None:
        args = {}
    if not isinstance(args, Mapping):
        raise CommandError(f"args of {cmd!r} must be an object, got {type(args).__name__}")
    out: JsonDict = {}

    def number(key: str, lo: float, hi: float, *, integer: bool = False) -> None:
        if key not in args or args[key] is None:
            return
        value = views.num(args[key], lo, hi)
        if value is None or (integer and value != math.floor(value)):
            kind = "an integer" if integer else "a number"
            raise CommandError(
                f"{cmd}: {key} must be {kind} from {lo:g} to {hi:g}, got {args[key]!r}"
            )
        out[key] = int(value) if integer else value

    known: set[str]
    if cmd == "pause":
        known = {"note"}
        note = args.get("note")
        if note is not None:
            if not isinstance(note, str) or len(note) > 200:
                raise CommandError("pause: note must be text of at most 200 characters")
            out["note"] = note
    elif cmd == "offer_step":
        known = {"step"}
        number("step", 0, 999, integer=True)
    elif cmd == "adjust_thresholds":
        known = {"upper", "lower", "dwell_s", "recovery_s"}
        number("upper", 0, 100)
        number("lower", 0, 100)
        number("dwell_s", 0, 600)
        number("recovery_s", 0, 3600)
        if not out:
            raise CommandError(
                "adjust_thresholds: give at least one of upper, lower, dwell_s, recovery_s"
            )
        if "upper" in out and "lower" in out and not out["lower"] < out["upper"]:
            raise CommandError(
                f"adjust_thresholds: lower ({out['lower']:g}) must be below "
                f"upper ({out['upper']:g})"
            )
    elif cmd == "choose_rate":
        known = {"rate_bpm"}  # none or null: back to the measured pace
        number("rate_bpm", 3, 10)
    elif cmd == "suds":
        known = {"value"}
        if "value" not in args:
            raise CommandError("suds: value (0-100) is required")
        number("value", 0, 100, integer=True)
    elif cmd == "recalibrate":
        known = {"reason"}
        reason = args.get("reason")
        if reason is not None:
            if not isinstance(reason, str) or len(reason) > 200:
                raise CommandError("recalibrate: reason must be text of at most 200 characters")
            out["reason"] = reason
    elif cmd == "choose_grounding":
        known = {"technique"}
        technique = args.get("technique")
        choices = [t.value for t in GroundingTechnique]
        if technique not in choices:
            raise CommandError(
                f"choose_grounding: technique must be one of {choices}, got {technique!r}"
            )
        out["technique"] = technique
    else:
        known = set()
    extra = set(args) - known
    if extra:
        raise CommandError(f"{cmd}: unknown argument(s) {sorted(map(str, extra))}")
    return out


class Hub:
    """Per-client state from MQTT, fanned out to WebSocket subscribers."""

    def __init__(
        self, limits: HubLimits | None = None, *, wall: Callable[[], float] = time.time
    ) -> None:
        self.limits = limits or HubLimits()
        self._wall = wall
        self._clients: dict[str, ClientState] = {}
        self._subs: set[Subscriber] = set()
        self._by_client: dict[str | None, set[Subscriber]] = {}  # None: the overview
        self._sink: CommandSink | None = None
        # command id -> (subscriber that sent it, client id)
        self._pending: dict[str, tuple[Subscriber, str]] = {}
        self.stats = {"ingested": 0, "rejected": 0, "pushed": 0}
        self.broker_connected: bool | None = None  # None: no broker configured / not known yet
        self._batch = OverviewBatch()
        self._flush_handle: asyncio.Handle | None = None
        self._flush_urgent = False  # the scheduled flush runs at the end of this loop turn
        self._last_flush = -math.inf  # loop time of the last overview frame

    # ---- state ------------------------------------------------------------------------------

    def clients(self) -> list[str]:
        """Client ids seen, sorted."""
        return sorted(self._clients)

    def client(self, client_id: str) -> ClientState | None:
        return self._clients.get(client_id)

    def overview(self, trail_s: float = 120.0, max_trail: int = 120) -> list[JsonDict]:
        """One summary per client, each with `trail`: its arousal over the last `trail_s` seconds
        as [t, value|null] pairs (at most `max_trail`), so a freshly opened overview draws its
        sparklines at once."""
        rows = []
        for c in self.clients():
            state = self._clients[c]
            row = state.summary()
            row["trail"] = _trail(state, trail_s, max_trail)
            rows.append(row)
        return rows

    def now(self) -> float:
        """Server wall time (what `rx` stamps use)."""
        return self._wall()

    # ---- subscribers ------------------------------------------------------------------------

    @contextmanager
    def subscribe(self, role: str, client_id: str | None) -> Iterator[Subscriber]:
        """Register a subscriber for the duration of a WebSocket connection."""
        if client_id is None and role != "therapist":
            raise CommandError("only a therapist may watch the overview of all clients")
        sub = Subscriber(role, client_id, self.limits.queue_size)
        self._subs.add(sub)
        self._by_client.setdefault(client_id, set()).add(sub)
        try:
            yield sub
        finally:
            self._subs.discard(sub)
            watchers = self._by_client.get(client_id)
            if watchers is not None:
                watchers.discard(sub)
                if not watchers:
                    del self._by_client[client_id]
            for cid in [k for k, (s, _) in self._pending.items() if s is sub]:
                del self._pending[cid]

    @property
    def subscriber_count(self) -> int:
        return len(self._subs)

    def _fan_out(
        self,
        client_id: str,
        message: JsonDict,
        state: ClientState,
        summary_changed: bool,
        *,
        therapist_only: bool = False,
        sample: bool = False,
    ) -> None:
        # serialise only for someone: with nobody watching a message costs no JSON encoding
        watchers = self._by_client.get(client_id)
        if watchers and therapist_only:
            # the strap's raw data and breathing events are never sent to the client's screen
            watchers = {sub for sub in watchers if sub.role == "therapist"}
        if watchers:
            detail = _dumps(message)
            for sub in list(watchers):
                sub.push(detail)
            self.stats["pushed"] += len(watchers)
        if summary_changed and self._by_client.get(None):
            if sample:
                self._batch.mark(client_id)
            else:
                self._batch.add(client_id, state.summary())
            self._schedule_flush(urgent=not sample)

    def _schedule_flush(self, *, urgent: bool) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush_overview()  # called outside a loop (a script, a sync test): at once
            return
        handle = self._flush_handle
        if handle is not None:
            if self._flush_urgent or not urgent:
                return
            handle.cancel()  # a pause does not wait for the samples' timer
        delay = 0.0 if urgent else self._last_flush + self.limits.overview_every_s - loop.time()
        self._flush_urgent = delay <= 0.0
        self._flush_handle = (
            loop.call_soon(self.flush_overview)
            if delay <= 0.0
            else loop.call_later(delay, self.flush_overview)
        )

    def flush_overview(self) -> None:
        """Send the waiting overview rows as one `summaries` frame to every overview watcher.

        Runs at the end of the loop turn in which a state changed, and for live samples at most
        every `HubLimits.overview_every_s`, so with hundreds of clients one frame (one encoding,
        one send per watcher) carries many rows.
        """
        if self._flush_handle is not None:
            self._flush_handle.cancel()  # when called directly
        self._flush_handle = None
        self._flush_urgent = False
        with contextlib.suppress(RuntimeError):
            self._last_flush = asyncio.get_running_loop().time()

        def build(client_id: str) -> JsonDict | None:
            state = self._clients.get(client_id)
            return None if state is None else state.summary()

        rows = self._batch.take(build)
        overview = self._by_client.get(None)
        if not rows or not overview:
            return
        line = _dumps({"type": "summaries", "summaries": rows, "srv": self.now()})
        for sub in list(overview):
            sub.push(line)
        self.stats["pushed"] += len(overview)

    # ---- data in ----------------------------------------------------------------------------

    def ingest(self, topic_name: str, payload: bytes | str) -> bool:
        """Take one MQTT message; False (and a log line) when it is not usable."""
        parsed = parse_topic(topic_name)
        if parsed is None:
            return self._reject(topic_name, "topic is not in the biofeedback/v1 tree")
        client_id, kind = parsed
        if kind is Topic.CMD:
            return False  # our own commands echoing back
        try:
            data = json.loads(payload)
        except (ValueError, UnicodeDecodeError) as exc:
            return self._reject(topic_name, f"payload is not JSON ({exc})")
        if not isinstance(data, dict):
            return self._reject(
                topic_name, f"payload is a JSON {type(data).__name__}, not an object"
            )
        version = data.get("v", data.get("schema_version", SCHEMA_VERSION))
        if version != SCHEMA_VERSION:
            return self._reject(
                topic_name, f"schema version {version!r}, this dashboard reads {SCHEMA_VERSION}"
            )
        t = views.payload_time(data)
        if kind is Topic.REPLY:
            self.stats["ingested"] += 1
            self._route_reply(client_id, views.reply_view(data))
            return True
        if t is None:
            return self._reject(topic_name, f"{kind} payload has no time stamp 't'")
        state = self._clients.get(client_id)
        if state is None:
            if len(self._clients) >= self.limits.max_clients:
                return self._reject(topic_name, f"more than {self.limits.max_clients} clients")
            state = self._clients[client_id] = ClientState(client_id)
        self.stats["ingested"] += 1
        rx = self.now()
        state.observe_time(t, rx, live=kind in (Topic.METRICS, Topic.AROUSAL, Topic.BEAT))
        message: JsonDict = {"type": "update", "client": client_id, "kind": str(kind), "srv": rx}
        summary_changed = True
        if kind is Topic.METRICS:
            point = views.metrics_point(data)
            if point is None:
                return self._reject(topic_name, "metrics payload has no time stamp")
            state.metrics = point
            self._add_point(state, point)
            message["point"] = point
        elif kind is Topic.AROUSAL:
            point = views.arousal_point(data)
            if point is None:
                return self._reject(topic_name, "arousal payload has no time stamp")
            state.arousal = point
            # the history keeps what the chart draws; confidence and reason ride on the update
            self._add_point(state, {"t": point["t"], "arousal": point["arousal"]})
            state.update_trend(point["t"], point["arousal"])
            message["point"] = point
        elif kind is Topic.BEAT:
            point = views.beat_point(data)
            summary_changed = False
            if point is None:
                return self._reject(topic_name, "beat payload has no time stamp")
            message["point"] = point
        elif kind is Topic.STATUS:
            state.status = views.status_view(data)
            if state.status["speed"] is not None:
                state.clock_speed = state.status["speed"]
                state.speed_given = True
            if state.status["online"] is False and state.last_t is not None:
                # nothing arrives while offline: a null point makes the charts show a gap. A last
                # will is stamped when the service connected, so the gap starts at the newest data.
                gap_t = max(t, state.last_t)
                gap = {"t": gap_t, "hr": None, "rmssd": None, "arousal": None}
                self._add_point(state, gap)
                message["point"] = gap
            message["view"] = state.status
            state.update_problem()
            message["problem"] = state.problem  # the client's page says what the hub worked out
        elif kind is Topic.SESSION:
            before = (state.session or {}).get("state")
            state.session = views.session_view(data)
            speed = views.num(data.get("clock_speed"), 0.001, 10_000.0)
            if speed is not None:
                state.clock_speed = speed
                state.speed_given = True
            if state.session["state"] != before and state.session["t"] is not None:
                self._add_span(
                    state, state.session["t"], state.session["state"], state.session["pause_reason"]
                )
            message["view"] = state.session
        elif kind is Topic.GUIDANCE:
            state.guidance = views.guidance_view(data)
            message["view"] = state.guidance
            summary_changed = False
        elif kind is Topic.ASSESSMENT:
            state.assessment = assessment_view(data)
            message["view"] = state.assessment
            summary_changed = False
        elif kind is Topic.EVENT:
            event = views.event_view(data)
            if _same_event_known(state.events, event):
                # a QoS 1 redelivery (a bridge or a link that dropped mid-acknowledgement): the
                # timeline has it already
                return True
            _insert_in_time_order(state.events, event)
            while len(state.events) > self.limits.max_events:
                state.events.popleft()
            message["view"] = event
            # a problem may begin (a next line), end (the strap back) or be overtaken
            back = event["kind"] in next_action.STRAP_BACK
            if event["next"] is not None or back or state.problem:
                state.update_problem()
            message["problem"] = state.problem
            if (
                event["to_state"]
                and event["t"] is not None
                and event["to_state"] != event["from_state"]
            ):
                self._add_span(state, event["t"], event["to_state"], event["reason"])
            if event["kind"] in {"signal_lost", "device_signal_lost"} and event["t"] is not None:
                gap = {"t": event["t"], "hr": None, "rmssd": None, "arousal": None}
                self._add_point(state, gap)
                message["point"] = gap
        elif kind is Topic.CHECKIN:
            checkin = views.checkin_view(data)
            state.checkin = checkin
            state.checkins.append(checkin)
            while len(state.checkins) > self.limits.max_checkins:
                state.checkins.popleft()
            message["view"] = checkin
            summary_changed = False
        elif kind.value in chest_views.VIEWS:
            # ecg, breathing, movement: for the therapist's detail page only (web/chest_views.py)
            message["view"] = chest_views.VIEWS[kind.value](data)
            message["clock"] = state.clock()
            self._fan_out(client_id, message, state, False, therapist_only=True)
            return True
        message["clock"] = state.clock()
        self._fan_out(
            client_id,
            message,
            state,
            summary_changed,
            sample=kind is Topic.METRICS or kind is Topic.AROUSAL,
        )
        return True

    def _reject(self, topic_name: str, why: str) -> bool:
        self.stats["rejected"] += 1
        log.warning("dashboard ignored a message on %r: %s", topic_name[:200], why)
        return False

    def _add_point(self, state: ClientState, point: JsonDict) -> None:
        points = state.points
        points.append(point)
        horizon = point["t"] - self.limits.history_s
        while points and (points.first_t() < horizon or len(points) > self.limits.max_points):
            points.popleft()

    def _add_span(
        self, state: ClientState, t: float, new_state: str | None, reason: str | None
    ) -> None:
        if state.spans and state.spans[-1]["state"] == new_state:
            return
        state.spans.append({"t": t, "state": new_state, "reason": reason})
        horizon = t - self.limits.history_s
        # keep the one span that was running at the start of the window
        while len(state.spans) > 1 and state.spans[1]["t"] < horizon:
            state.spans.popleft()
        while len(state.spans) > 200:
            state.spans.popleft()

    # ---- commands ---------------------------------------------------------------------------

    def set_broker_connected(self, connected: bool) -> None:
        """Tell every page when the dashboard's own MQTT connection drops or returns."""
        if connected == self.broker_connected:
            return
        self.broker_connected = connected
        if not connected:
            log.warning("dashboard lost its MQTT connection; pages are told data has stopped")
        line = _dumps({"type": "broker", "connected": connected, "srv": self.now()})
        for sub in list(self._subs):
            sub.push(line)

    def set_sink(self, sink: CommandSink | None) -> None:
        """Where commands are published (None: commands are refused with a clear message)."""
        self._sink = sink

    async def send_command(self, sub: Subscriber, client_id: str, cmd: Any, args: Any) -> str:
        """Validate, stamp and publish one command for `client_id`; returns the command id.

        The role is the subscriber's (decided by how it authenticated), never taken from the
        browser's message.
        """
        if sub.role == "client" and sub.client_id != client_id:
            raise CommandError("a client link can only send commands for its own client")
        checked = validate_command(sub.role, cmd, args)
        now = self.now()
        times = sub.command_times
        while times and times[0] < now - 10.0:
            times.popleft()
        # a pause is never refused: it is the safe direction, whatever came before it
        if cmd != "pause" and len(times) >= self.limits.commands_per_10s:
            raise CommandError(
                f"more than {self.limits.commands_per_10s} commands in 10 s from this page; "
                "wait a moment"
            )
        times.append(now)
        if self._sink is None:
            raise CommandError(
                "the dashboard is not connected to the MQTT broker; command not sent"
            )
        if not self._sink.connected and cmd not in QUEUE_WHILE_OFFLINE:
            raise CommandError(
                "the dashboard has lost its connection to the MQTT broker; "
                f"{cmd} was not sent (try again when the connection is back)"
            )
        command_id = f"web-{secrets.token_hex(8)}"
        body = {
            "v": SCHEMA_VERSION,
            "id": command_id,
            "t": self.now(),
            "role": sub.role,
            "cmd": cmd,
            "args": checked,
        }
        self._pending[command_id] = (sub, client_id)
        try:
            await self._sink.send_command(client_id, _dumps(body).encode())
        except BaseException:
            self._pending.pop(command_id, None)
            raise
        log.info("dashboard sent %s for %s as %s (id %s)", cmd, client_id, sub.role, command_id)
        return command_id

    def forget_command(self, command_id: str) -> bool:
        """Stop waiting for a reply; True when it was still pending (i.e. timed out)."""
        return self._pending.pop(command_id, None) is not None

    def _route_reply(self, client_id: str, reply: JsonDict) -> None:
        command_id = reply.get("id")
        pending = self._pending.pop(command_id, None) if command_id else None
        message = _dumps({"type": "reply", "client": client_id, "reply": reply, "srv": self.now()})
        if pending is not None:
            pending[0].push(message)
            return
        # a reply to someone else's command (another dashboard, a script): therapists may see it
        for sub in list(self._subs):
            if sub.client_id == client_id and sub.role == "therapist":
                sub.push(message)
