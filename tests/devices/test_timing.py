"""Beat timing: several RR per notification, stale RR, monotonic times, no invented beats, reset."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from biofeedback.devices.hrm import encode_heart_rate_measurement
from biofeedback.devices.physiology import Physiology
from biofeedback.devices.readings import HeartRateMeasurement
from biofeedback.devices.timing import BeatTimer


def _m(*rr: int, hr: int = 70, contact: bool | None = True) -> HeartRateMeasurement:
    return HeartRateMeasurement(
        hr_bpm=hr,
        contact_supported=contact is not None,
        contact_detected=bool(contact),
        energy_expended_kj=None,
        rr_1024=rr,
    )


def test_several_rr_count_back_from_the_receive_time() -> None:
    timer = BeatTimer("strap")
    beats = timer.beats(100.0, _m(1024, 512, 768))
    assert [b.t for b in beats] == [100.0 - 0.75 - 0.5, 100.0 - 0.75, 100.0]
    assert [b.rr_ms for b in beats] == [1000.0, 500.0, 750.0]
    assert all(b.hr_bpm == 70 and b.contact is True and b.device == "strap" for b in beats)


def test_no_rr_means_no_beats() -> None:
    timer = BeatTimer("strap")
    assert timer.beats(5.0, _m()) == ()
    n = timer.notification(5.0, encode_heart_rate_measurement(_m(hr=61)))
    assert n.beats == ()
    assert n.measurement is not None
    assert n.measurement.hr_bpm == 61


def test_stale_rr_never_move_time_backwards() -> None:
    timer = BeatTimer("strap")
    (first,) = timer.beats(10.0, _m(820))
    # 0.4 s later a notification holds two RR worth 1.6 s: the older one is stale
    stale, fresh = timer.beats(10.4, _m(820, 820))
    assert first.t == 10.0
    assert first.t < stale.t < fresh.t
    assert stale.t == pytest.approx(10.001)  # nudged just past the previous beat
    assert fresh.t == 10.4
    assert stale.rr_ms == fresh.rr_ms == 820 * 1000.0 / 1024.0  # RR values are never altered


def test_a_crowd_of_stale_rr_stays_strictly_increasing() -> None:
    timer = BeatTimer("strap")
    timer.beats(10.0, _m(800))
    beats = timer.beats(10.1, _m(800, 800, 800, 800))
    ts = [b.t for b in beats]
    assert all(b > a for a, b in itertools.pairwise([10.0, *ts]))
    assert len(beats) == 4


def test_reset_restarts_the_chain_from_the_receive_time() -> None:
    timer = BeatTimer("strap")
    timer.beats(10.0, _m(800))
    timer.reset()
    # after a reconnect the chain restarts: times come from the receive time alone
    (b,) = timer.beats(10.2, _m(800, 800))[:1]
    assert b.t == pytest.approx(10.2 - 800 / 1024)
    # and monotonicity holds again from there on
    (c,) = timer.beats(10.3, _m(1024))
    assert c.t == pytest.approx(10.3)


def test_malformed_payload_becomes_an_error_notification_and_keeps_the_bytes() -> None:
    timer = BeatTimer("strap")
    timer.notification(10.0, encode_heart_rate_measurement(_m(800)))
    bad = timer.notification(11.0, b"\x10\x48\x01")
    assert bad.measurement is None
    assert bad.beats == ()
    assert bad.payload == b"\x10\x48\x01"
    assert bad.error is not None
    assert "odd length" in bad.error
    # the chain is untouched by the bad one
    good = timer.notification(12.0, encode_heart_rate_measurement(_m(900)))
    assert [b.t for b in good.beats] == [12.0]


def test_contact_and_hr_travel_with_each_beat() -> None:
    timer = BeatTimer("strap")
    lost = timer.beats(1.0, _m(700, hr=90, contact=False))
    unknown = timer.beats(2.0, _m(700, hr=91, contact=None))
    assert [(b.contact, b.hr_bpm) for b in lost + unknown] == [(False, 90), (None, 91)]


def test_reconstructed_times_follow_true_beats_within_the_link_latency() -> None:
    """A Polar-like stream: notifications each second, 0-150 ms late, RR truncated to 1/1024 s."""
    model = Physiology(start_t=0.0, seed=3)
    timer = BeatTimer("strap")
    true_t: list[float] = []
    got_t: list[float] = []
    for k in range(1, 301):
        sent = float(k)
        latency = 0.15 * ((k * 7919) % 13) / 12.0  # deterministic spread 0..150 ms
        beats = model.beats_until(sent)
        true_t.extend(b.t for b in beats)
        m = _m(*(int(b.rr_s * 1024) for b in beats))
        got_t.extend(b.t for b in timer.beats(sent + latency, m))
    assert len(got_t) == len(true_t)  # every beat, none invented
    errors = [g - t for g, t in zip(got_t, true_t, strict=True)]
    # counted back from a receive time that is >= the send time, each beat lands after its true
    # time, by at most the send delay (< 1 s) plus latency plus the truncation drift
    assert min(errors) >= -0.01
    assert max(errors) <= 1.0 + 0.15 + 0.01
    assert all(b > a for a, b in itertools.pairwise(got_t))


_notifications = st.lists(
    st.tuples(
        st.floats(0.0, 3.0, allow_nan=False),  # time since the previous notification
        st.lists(st.integers(0, 0xFFFF), max_size=5),
        st.booleans(),  # reset before this one
    ),
    max_size=30,
)


@given(_notifications)
def test_beats_are_never_invented_and_always_increase_between_resets(
    stream: list[tuple[float, list[int], bool]],
) -> None:
    timer = BeatTimer("strap")
    t = 1000.0
    chain: list[float] = []
    for dt, rr, reset in stream:
        t += dt
        if reset:
            timer.reset()
            chain = []
        beats = timer.beats(t, _m(*rr))
        assert len(beats) == len(rr)
        assert tuple(round(b.rr_ms * 1024 / 1000) for b in beats) == tuple(rr)
        # each beat sits at its counted-back time, or just past the previous beat when that
        # time was already taken (stale RR)
        back = [t - sum(rr[j + 1 :]) / 1024.0 for j in range(len(rr))]
        for b, want in zip(beats, back, strict=True):
            prev = chain[-1] if chain else None
            if prev is None or want > prev:
                assert b.t == pytest.approx(want, abs=1e-9)
            else:
                assert b.t == pytest.approx(prev + 1e-3, abs=1e-9)
            chain.append(b.t)
        assert all(b > a for a, b in itertools.pairwise(chain))


@given(st.lists(st.binary(max_size=12), max_size=20))
def test_any_bytes_make_a_notification_never_an_exception(payloads: list[bytes]) -> None:
    timer = BeatTimer("strap")
    last: float | None = None
    for k, p in enumerate(payloads):
        n = timer.notification(100.0 + k, p)
        assert n.payload == p
        if n.measurement is None:
            assert n.error
            assert n.beats == ()
        else:
            assert n.error is None
            assert len(n.beats) == len(n.measurement.rr_1024)
        for b in n.beats:
            assert last is None or b.t > last
            last = b.t
