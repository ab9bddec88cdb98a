"""The session core: one client's inputs in, in order; beats, metrics, arousal and decisions out.

Synchronous and deterministic: given the same sequence of inputs (device readings, commands,
ticks), it produces the same outputs. The live runner feeds it from a strap, MQTT and a timer;
replay feeds it the recorded input log and must reproduce the recorded session exactly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import TypeVar, cast, get_args

from biofeedback.devices.readings import DeviceEvent, DeviceEventKind, Notification
from biofeedback.errors import CalibrationError, CommandError, ConfigError
from biofeedback.exposure import ExposureProtocol, ExposureSession, SessionSnapshot
from biofeedback.exposure.assessment import AssessmentEvent
from biofeedback.exposure.messages import (
    ArousalSample,
    AssessmentCommand,
    CalibrationDone,
    Command,
    EcgVerdictReport,
    EndSession,
    GroundingTechnique,
    MovementReport,
    OfferStep,
    Pause,
    Recalibrate,
    SessionEvent,
    SessionInput,
    SignalLost,
    SignalObservation,
    SignalRestored,
    Tick,
)
from biofeedback.service.assessment_host import AssessmentHost
from biofeedback.signal import Baseline, BeatUpdate, SignalConfig, SignalPipeline
from biofeedback.signal.arousal import MOVEMENT_REASON
from biofeedback.signal.ecg_reconcile import EcgVerdict

log = logging.getLogger(__name__)
_I = TypeVar("_I", bound=SessionInput)

# Below this many clean beats no baseline is trusted, however short the calibration.
MIN_CALIBRATION_BEATS = 20

# Anything the session takes: device readings, commands, ticks, and (from tests or tools) the
# session's own observation inputs.
SessionItem = Notification | DeviceEvent | SessionInput | SignalObservation
_COMMAND_TYPES: tuple[type, ...] = get_args(Command)
_ASSESSMENT_TYPES: tuple[type, ...] = get_args(AssessmentCommand)

# The strap link and skin contact are lost (and restored) independently; monitoring is OK only
# when neither is lost. Each loss kind: (source, what the therapist is told).
_LOSS = {
    DeviceEventKind.SIGNAL_LOST: ("link", "strap connection lost"),
    DeviceEventKind.CONTACT_LOST: ("contact", "sensor contact lost"),
    DeviceEventKind.ENDED: ("link", "device stopped sending"),
}
_RESTORE = {DeviceEventKind.SIGNAL_RESTORED: "link", DeviceEventKind.CONTACT_RESTORED: "contact"}


@dataclass(frozen=True, slots=True)
class CommandResult:
    """The outcome of one command, for its reply."""

    command_id: str
    ok: bool
    error: str | None = None


@dataclass(frozen=True, slots=True)
class CoreOutput:
    """What one input produced."""

    seq: int
    t: float
    updates: tuple[BeatUpdate, ...] = ()
    events: tuple[SessionEvent, ...] = ()
    command: CommandResult | None = None
    baseline: Baseline | None = None  # set when a calibration just produced a new baseline
    # the resonance assessment hosted beside the session (service/assessment_host.py)
    assessment_events: tuple[AssessmentEvent, ...] = ()


class SessionCore:
    """One client's live session: signal pipeline plus exposure state machine."""

    def __init__(
        self,
        *,
        client_id: str,
        protocol: ExposureProtocol,
        signal_config: SignalConfig,
        start_t: float,
        baseline: Baseline | None = None,
        calibration_s: float | None = None,
    ) -> None:
        self.client_id = client_id
        # The protocol is the session's agreed agenda, so its calibration length governs.
        self.calibration_s = (
            calibration_s if calibration_s is not None else float(protocol.calibration_s)
        )
        if baseline is None and self.calibration_s < signal_config.long_window_s:
            raise ConfigError(
                f"protocol {protocol.source}: calibration_s = {self.calibration_s:g} s is shorter "
                f"than the {signal_config.long_window_s:g} s window the resting HRV is measured "
                "over ([signal].long_window_s); no baseline could ever pass"
            )
        # The clean-beat minimum is a rate (default 60 in 120 s, i.e. 30 bpm); keep the rate when
        # the protocol asks for a shorter or longer calibration.
        min_beats = max(
            MIN_CALIBRATION_BEATS,
            round(
                signal_config.calibration_min_beats
                * self.calibration_s
                / signal_config.calibration_s
            ),
        )
        self.pipeline = SignalPipeline(
            replace(
                signal_config,
                calibration_s=self.calibration_s,
                calibration_min_beats=min_beats,
            ),
            baseline,
        )
        self.session = ExposureSession(
            protocol, t=start_t, client_id=client_id, needs_calibration=baseline is None
        )
        # Calibration starts with the first beat, not at start-up: connecting to a strap takes
        # seconds that must not count as rest.
        self._needs_calibration = baseline is None
        self._calibrating_since: float | None = None
        # The session's request for a fresh calibration (the therapist's Recalibrate) last seen.
        self._recal_request: float | None = None
        self._lost: set[str] = set()  # loss sources active now ("link", "contact")
        self._guided_hz: float | None = None
        self.assessment = AssessmentHost(client_id, start_t)
        self.seq = 0
        self.last_t = start_t

    @property
    def snapshot(self) -> SessionSnapshot:
        """The session's snapshot with the calibration as it really runs here: it begins at the
        strap's first beat (or a recalibration's request) and lasts `calibration_s`."""
        snap = self.session.snapshot()
        return replace(
            snap,
            calibration_s=self.calibration_s,
            calibration_started_t=self._calibrating_since,
            # the pacer the client sees: the assessment's block, else the session's at the
            # client's chosen rate (docs/resonance.md, "Running it live")
            guidance=self.assessment.guidance() or self.assessment.with_chosen_rate(snap.guidance),
        )

    def feed(self, item: SessionItem) -> CoreOutput:
        """Process one input; never raises for bad data (it is reported in the output)."""
        self.seq += 1
        # Inputs from different sources can be stamped a hair out of order; the session's own
        # timeline must not run backwards, so it sees the later of the two.
        t = max(float(item.t), self.last_t)
        self.last_t = t
        updates: list[BeatUpdate] = []
        events: list[SessionEvent] = []
        command: CommandResult | None = None
        assessment: list[AssessmentEvent] = []
        if isinstance(item, Notification):
            self._notification(item, t, updates, events)
            assessment += self.assessment.beats(updates, t)
        elif isinstance(item, DeviceEvent):
            self._device_event(item, t, events)
        elif isinstance(item, EcgVerdictReport | MovementReport):
            self._observation(item, t)
        elif isinstance(item, _ASSESSMENT_TYPES):
            command = self._assessment_command(cast(AssessmentCommand, item), t, assessment)
        elif isinstance(item, _COMMAND_TYPES):
            command = self._command(cast(Command, item), t, events)
            if isinstance(item, Pause):  # a pause also stops the assessment (never refused)
                assessment += self.assessment.pause(item, t)
            elif isinstance(item, EndSession) and command is not None and command.ok:
                assessment += self.assessment.end(item.role, t)  # ending the session stops it
        else:
            events += self.session.handle(_retime(item, t))
            if isinstance(item, Tick):
                assessment += self.assessment.tick(t)
        self._follow_recalibration(t)
        baseline = self._maybe_finish_calibration(t, events)
        if events or assessment or command is not None:
            self._follow_guidance()
        return CoreOutput(
            seq=self.seq,
            t=t,
            updates=tuple(updates),
            events=tuple(events),
            command=command,
            baseline=baseline,
            assessment_events=tuple(assessment),
        )

    def _assessment_command(
        self, cmd: AssessmentCommand, t: float, out: list[AssessmentEvent]
    ) -> CommandResult:
        try:
            out += self.assessment.command(_retime(cmd, t), t, self.session.state)
        except CommandError as exc:
            log.info("command %s from %s refused: %s", type(cmd).__name__, cmd.role, exc)
            return CommandResult(cmd.command_id, False, str(exc))
        return CommandResult(cmd.command_id, True)

    def _notification(
        self, n: Notification, t: float, updates: list[BeatUpdate], events: list[SessionEvent]
    ) -> None:
        m = n.measurement
        if m is None:
            return  # malformed: recorded as it came, nothing to compute
        if self._needs_calibration and self._calibrating_since is None:
            self._calibrating_since = n.t
            self.pipeline.start_calibration(n.t)
        if n.beats:
            for beat in n.beats:
                u = self.pipeline.push_rr(beat.t, beat.rr_ms, beat.contact)
                updates.append(u)
                events += self._arousal(u, max(beat.t, self.last_t))
        else:
            u = self.pipeline.push_hr(n.t, float(m.hr_bpm), m.contact)
            updates.append(u)
            events += self._arousal(u, t)

    def _observation(self, item: EcgVerdictReport | MovementReport, t: float) -> None:
        """The strap's ECG or chest accelerometer about the beats (service/chest_signals.py)."""
        if isinstance(item, MovementReport):
            if isinstance(item.moving, bool):
                self.pipeline.set_movement(t, item.moving)
            return
        try:
            verdict = EcgVerdict(item.verdict)
        except ValueError:
            log.warning("ECG verdict %r ignored: not one of %s", item.verdict, list(EcgVerdict))
            return
        if isinstance(item.beat_t, int | float):
            self.pipeline.set_ecg_verdict(float(item.beat_t), verdict)

    def _follow_guidance(self) -> None:
        """Tell the signal pipeline when paced breathing is guided, and at what rate."""
        g = self.assessment.guidance() or self.assessment.with_chosen_rate(self.session.guidance)
        hz = (
            g.breathing.rate_bpm / 60.0
            if g is not None
            and g.technique is GroundingTechnique.PACED_BREATHING
            and g.breathing is not None
            else None
        )
        if hz != self._guided_hz:
            self._guided_hz = hz
            self.pipeline.set_paced_breathing(hz)

    def _arousal(self, u: BeatUpdate, t: float) -> list[SessionEvent]:
        a = u.arousal
        moving = a.reason is not None and a.reason.startswith(MOVEMENT_REASON)
        return self.session.handle(ArousalSample(t, a.value, a.confidence, moving))

    def _device_event(self, e: DeviceEvent, t: float, events: list[SessionEvent]) -> None:
        was_ok = not self._lost
        if e.kind in _LOSS:
            source, told = _LOSS[e.kind]
            self._lost.add(source)
            self.pipeline.mark_gap(t)
            if was_ok:
                events += self.session.handle(SignalLost(t, e.detail or told))
        elif e.kind in _RESTORE:
            self._lost.discard(_RESTORE[e.kind])
            if not was_ok and not self._lost:
                events += self.session.handle(SignalRestored(t, e.gap_s))

    def _command(self, cmd: Command, t: float, events: list[SessionEvent]) -> CommandResult:
        if isinstance(cmd, OfferStep | Recalibrate) and self.assessment.active:
            what = "no exposure step" if isinstance(cmd, OfferStep) else "no recalibration"
            return CommandResult(
                cmd.command_id,
                False,
                f"{what} while the breathing-rate assessment is "
                f"{self.assessment.session.state.value}: stop it first (what it measured is kept)",
            )
        try:
            events += self.session.handle(_retime(cmd, t))
        except CommandError as exc:
            log.info("command %s from %s refused: %s", type(cmd).__name__, cmd.role, exc)
            return CommandResult(cmd.command_id, False, str(exc))
        return CommandResult(cmd.command_id, True)

    def _follow_recalibration(self, t: float) -> None:
        """Start, restart or drop the pipeline's calibration as the session asks."""
        req = self.session.calibration_request_t
        if req == self._recal_request:
            return
        self._recal_request = req
        if req is not None:
            # The first calibration starts with the first beat; a restart before it changes nothing.
            if not self._needs_calibration or self._calibrating_since is not None:
                self._calibrating_since = t
                self.pipeline.start_calibration(t)
        elif not self._needs_calibration and self._calibrating_since is not None:
            self._calibrating_since = None  # cancelled: the baseline in use stays
            self.pipeline.cancel_calibration()

    def _maybe_finish_calibration(self, t: float, events: list[SessionEvent]) -> Baseline | None:
        since = self._calibrating_since
        if since is None or t - since < self.calibration_s:
            return None
        try:
            baseline = self.pipeline.finish_calibration(t, self.client_id)
        except CalibrationError as exc:
            log.warning("calibration failed for %s: %s", self.client_id, exc)
            events += self.session.handle(CalibrationDone(t, False, str(exc)))
            if self._needs_calibration:
                # No baseline yet: keep the session safe (still calibrating) and try again.
                self._calibrating_since = t
                self.pipeline.start_calibration(t)
            else:
                # A fresh calibration with a baseline in use: that one stays; the therapist
                # decides whether to try again.
                self._calibrating_since = None
            self._recal_request = self.session.calibration_request_t
            return None
        self._calibrating_since = None
        self._needs_calibration = False
        notes = self.pipeline.calibration_notes
        events += self.session.handle(CalibrationDone(t, True, "baseline ready", notes))
        self._recal_request = self.session.calibration_request_t
        return baseline


def _retime(item: _I, t: float) -> _I:
    return item if item.t == t else replace(item, t=t)
