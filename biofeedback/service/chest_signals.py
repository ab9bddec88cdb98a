"""A strap's raw ECG and chest acceleration, live: beats judged by the ECG, movement, breathing.

Beside `pmd_feed.py` (which records the raw data and publishes the `ecg` topic), this module
runs the streaming signal stages on the same readings, for one client:

- ECG samples -> `EcgPeakDetector` -> `BeatClassifier` -> `RrReconciler`, which also gets every
  strap beat exactly as the RR pipeline gets it. Each interval the reconciler can answer becomes
  an `EcgVerdictReport` input to the session core, so the artifact stage never corrects an
  interval the ECG shows is normal-to-normal and always corrects one that spans a premature beat
  (`SignalPipeline.set_ecg_verdict`; docs/ecg.md).
- ACC samples -> `MovementMeter` (one `MovementReport` input a second: arousal carries the reason
  "movement" while the client moves, `SignalPipeline.set_movement`) and `ChestBreathing`
  (the `breathing` topic: rate, breaths, the chest trace, and during paced-breathing guidance the
  pacer adherence; breath-hold and rapid-shallow events for the therapist only).

Verdicts and movement reach the core as inputs through the runner's `process`, so they are in the
recording's input log and `replay` reproduces the session (they change which beats are corrected
and the arousal's reason). The stages are streaming and cheap (bench/bench_chest_signals.py:
microseconds per sample; docs/benchmarks.md), so they run on the loop as readings arrive; no
neurokit2 here. Anything failing in them is logged and that stage is switched off for the
strap: raw data is an addition to the beats, never a way to lose them.

A strap without PMD never produces a raw reading: nothing here runs, nothing changes.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol, Self

import numpy as np

from biofeedback.devices.pmd_readings import AccSamples, EcgSamples, PmdGap, PmdReading, PmdStream
from biofeedback.devices.readings import (
    Device,
    DeviceEvent,
    DeviceEventKind,
    DeviceReading,
    Notification,
)
from biofeedback.exposure.messages import (
    EcgVerdictReport,
    GroundingTechnique,
    Guidance,
    MovementReport,
)
from biofeedback.service import payloads
from biofeedback.service.topics import Topic
from biofeedback.signal.chest_breathing import (
    RATE_HZ,
    Breath,
    BreathingEvent,
    BreathingUpdate,
    ChestBreathing,
)
from biofeedback.signal.ecg import EcgPeakDetector
from biofeedback.signal.ecg_beats import BeatClassifier
from biofeedback.signal.ecg_reconcile import EcgVerdict, RrReconciler
from biofeedback.signal.movement import MovementMeter, MovementSample

__all__ = ["ChestSignals", "ChestSignalsDevice", "acc_rate_hz", "with_chest_signals"]

log = logging.getLogger(__name__)

MIN_INTERVAL_S = 1.0  # at most one `breathing` and one `movement` message a second of session time
TRACE_S = 30.0  # seconds of the chest breathing trace in each `breathing` message
TRACE_HZ = 5.0  # its sample rate (the breathing signal is at 10 Hz; 5 Hz draws it as well)
_H10_ACC_RATES = (25.0, 50.0, 100.0, 200.0)


class _Publisher(Protocol):
    def publish_kind(self, client_id: str, kind: Topic, payload: dict[str, Any]) -> None: ...


Submit = Callable[[EcgVerdictReport | MovementReport], object]


def acc_rate_hz(t: tuple[float, ...]) -> float | None:
    """The ACC stream's nominal rate from one frame's sample times (snapped to the H10's rates
    when within 15 %), or None when the frame cannot tell (fewer than 2 samples, no time)."""
    if len(t) < 2 or not t[-1] > t[0]:
        return None
    fs = (len(t) - 1) / (t[-1] - t[0])
    if not (math.isfinite(fs) and 10.0 <= fs <= 1000.0):
        return None
    near = min(_H10_ACC_RATES, key=lambda r: abs(r - fs))
    return near if abs(near - fs) <= 0.15 * near else fs


def pacer_phase(guidance: Guidance | None, t: np.ndarray) -> np.ndarray | None:
    """The paced-breathing pacer's phase in cycles (0 = start of an inhalation, counting on) at
    times `t`, or None when no paced breathing is guided."""
    if (
        guidance is None
        or guidance.technique is not GroundingTechnique.PACED_BREATHING
        or guidance.breathing is None
    ):
        return None
    period = guidance.breathing.period_s
    if not (period > 0 and math.isfinite(period)):
        return None
    phase: np.ndarray = (t - guidance.start_t) / period
    return phase


class ChestSignals:
    """One strap's ECG and ACC stages (pure: times come with the samples; see the module doc).

    `submit` takes the session inputs (the runner's `process`), `publisher` the `breathing` and
    `movement` payloads, `guidance` says what the session guides now (for pacer adherence).
    """

    def __init__(
        self,
        client_id: str,
        *,
        submit: Submit,
        publisher: _Publisher | None,
        guidance: Callable[[], Guidance | None] = lambda: None,
        ecg_fs: float = 130.0,
    ) -> None:
        self.client_id = client_id
        self.submit = submit
        self.publisher = publisher
        self.guidance = guidance
        self.detector = EcgPeakDetector(ecg_fs)
        self.classifier = BeatClassifier(ecg_fs)
        self.reconciler = RrReconciler()
        self.movement: MovementMeter | None = None
        self.breathing: ChestBreathing | None = None
        self.device = ""
        self.ecg_on = True
        self.acc_on = True
        kinds = ("checks", "verdicts", "movement", "breathing", "breath_events")
        self.counts = dict.fromkeys(kinds, 0)
        self._last_movement: MovementSample | None = None
        # the stages report once per second of data, but restart their count after a gap:
        # the topics' rate bound is kept here, by the samples' own times
        self._sent_t: dict[Topic, float] = {}
        self._held_breaths: list[Breath] = []
        self._held_events: list[BreathingEvent] = []

    # ---- strap beats (exactly as the RR pipeline gets them) --------------------------------

    def strap_beat(self, t: float, rr_ms: float) -> None:
        """One strap RR interval ending at `t`, as pushed to the RR pipeline."""
        if self.ecg_on:
            self.reconciler.push_strap(t, rr_ms)

    def strap_gap(self) -> None:
        """The strap's link or contact was lost: the two streams align afresh."""
        self.reconciler.reset()

    # ---- raw readings ------------------------------------------------------------------------

    def __call__(self, r: PmdReading) -> None:
        """Take one raw reading (the pmd feed's sink)."""
        if isinstance(r, EcgSamples) and self.ecg_on:
            self._guard("ECG", self._ecg, r)
        elif isinstance(r, AccSamples) and self.acc_on:
            self._guard("ACC", self._acc, r)
        elif isinstance(r, PmdGap):
            if r.stream is PmdStream.ECG:
                self.detector.mark_gap()
                self.classifier.reset()
                self.reconciler.reset()
            elif r.stream is PmdStream.ACC:
                for stage in (self.movement, self.breathing):
                    if stage is not None:
                        stage.reset()

    def _guard(self, what: str, fn: Callable[[Any], None], r: Any) -> None:
        try:
            fn(r)
        except Exception as exc:  # a stage's bug must never end the strap or the session
            log.error(
                "client %s: %s stage failed and is off for this strap (%s); beats go on",
                self.client_id,
                what,
                exc,
                exc_info=True,
            )
            if what == "ECG":
                self.ecg_on = False
                self.reconciler.reset()
            else:
                self.acc_on = False

    def _ecg(self, r: EcgSamples) -> None:
        self.device = r.device
        beats = self.detector.push(r.t, r.uv)
        classified = []
        for b in beats:
            classified += self.classifier.push(b)
        if classified:
            self.reconciler.push_ecg(classified)
        # the newest detected beat waits for its pause to be classified: every beat before it
        # is in the reconciler (tests/ecg/test_ecg_h10.py feeds the record the same way)
        pending = self.classifier.pending_t
        horizon = pending - 1e-6 if pending is not None else None
        for check in self.reconciler.resolve(horizon):
            self.counts["checks"] += 1
            if check.verdict is EcgVerdict.UNKNOWN:
                continue  # the RR detector decides alone: nothing to tell the pipeline
            self.counts["verdicts"] += 1
            self.submit(EcgVerdictReport(r.received_t, check.t, check.verdict.value))

    def _acc(self, r: AccSamples) -> None:
        self.device = r.device
        if self.movement is None or self.breathing is None:
            fs = acc_rate_hz(r.t)
            if fs is None:
                return
            self.movement = MovementMeter(fs)
            self.breathing = ChestBreathing(fs)
        samples = np.asarray(r.mg, dtype=np.float64).reshape(-1, 3)
        moves = self.movement.push(r.t, samples)
        if moves:
            m = moves[-1]  # at most one a second of data; a burst keeps the newest
            self._last_movement = m
            self.counts["movement"] += 1
            self.submit(MovementReport(m.t, m.moving, round(m.index_mg, 2)))
            if self._due(Topic.MOVEMENT, m.t):
                self._publish(Topic.MOVEMENT, payloads.movement(self.client_id, self.device, m))
        updates = self.breathing.push(r.t, samples)
        if updates:
            self._breathing(updates)

    def _breathing(self, updates: list[BreathingUpdate]) -> None:
        assert self.breathing is not None
        newest = updates[-1]
        self._held_breaths += [b for u in updates for b in u.breaths]
        self._held_events += [e for u in updates for e in u.events]
        if not self._due(Topic.BREATHING, newest.t):
            return  # what became final goes with the next message
        breaths, events = tuple(self._held_breaths), tuple(self._held_events)
        self._held_breaths, self._held_events = [], []
        t, y = self.breathing.signal()
        adherence = None
        pacer_bpm = None
        guidance = self.guidance()
        if t.size:
            phase = pacer_phase(guidance, t)
            if phase is not None and guidance is not None and guidance.breathing is not None:
                pacer_bpm = guidance.breathing.rate_bpm
                adherence = self.breathing.adherence(t, phase)
        moving = self._last_movement is not None and self._last_movement.moving
        step = max(1, round(RATE_HZ / TRACE_HZ))
        keep = t >= t[-1] - TRACE_S if t.size else np.zeros(0, dtype=bool)
        tt, yy = t[keep][::step], y[keep][::step] if y.size == t.size else np.zeros(0)
        self.counts["breathing"] += 1
        self.counts["breath_events"] += len(events)
        for e in events:
            log.info("client %s: breathing event %s: %s", self.client_id, e.kind, e.detail)
        self._publish(
            Topic.BREATHING,
            payloads.breathing(
                self.client_id,
                self.device,
                newest,
                breaths=breaths,
                events=events,
                moving=moving,
                adherence=adherence,
                pacer_bpm=pacer_bpm,
                trace_t=tt.tolist() if yy.size else [],
                trace_mg=yy.tolist(),
            ),
        )

    def _due(self, kind: Topic, t: float) -> bool:
        """True (and noted) when a `kind` message stamped `t` keeps the rate bound."""
        last = self._sent_t.get(kind)
        # 1 ms of slack: sample times a second apart can round to a hair under it
        if last is not None and last <= t < last + MIN_INTERVAL_S - 1e-3:
            return False
        self._sent_t[kind] = t
        return True

    def _publish(self, kind: Topic, payload: dict[str, Any]) -> None:
        if self.publisher is None:
            return
        try:
            self.publisher.publish_kind(self.client_id, kind, payload)
        except Exception as exc:  # the link keeps its own queue; never end the strap
            log.debug("client %s: %s not published: %s", self.client_id, kind, exc)


class ChestSignalsDevice:
    """A `Device` whose beats are also given to `chest` (its raw readings reach `chest` through
    the pmd feed's sink); everything else passes through."""

    def __init__(self, inner: Device, chest: ChestSignals) -> None:
        self.inner = inner
        self.name = inner.name
        self.chest = chest

    async def __aenter__(self) -> Self:
        await self.inner.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.inner.__aexit__(*exc)

    async def readings(self) -> AsyncIterator[DeviceReading]:
        chest = self.chest
        async for reading in self.inner.readings():
            # given before the runner pushes the beats: the ECG always trails them
            if isinstance(reading, Notification):
                for beat in reading.beats:
                    chest.strap_beat(beat.t, beat.rr_ms)
            elif isinstance(reading, DeviceEvent) and reading.kind in (
                DeviceEventKind.SIGNAL_LOST,
                DeviceEventKind.CONTACT_LOST,
            ):
                chest.strap_gap()
            yield reading

    def __getattr__(self, name: str) -> Any:
        # set_stimulus (the demo's simulated person), emulator, ... belong to the inner device
        return getattr(self.inner, name)


def with_chest_signals(
    device: Device,
    client_id: str,
    publisher: _Publisher | None,
    recorder: object | None,
    *,
    submit: Submit,
    guidance: Callable[[], Guidance | None] = lambda: None,
) -> Device:
    """`device` with its raw data recorded and published (pmd_feed.py) and, when it streams any,
    run through the live ECG, movement and breathing stages for `client_id`."""
    from biofeedback.service.pmd_feed import PmdFeedDevice, PmdSink

    chest = ChestSignals(client_id, submit=submit, publisher=publisher, guidance=guidance)
    record = PmdSink(client_id, publisher, recorder)

    def sink(r: PmdReading) -> None:
        record(r)
        chest(r)

    return ChestSignalsDevice(PmdFeedDevice(device, sink), chest)
