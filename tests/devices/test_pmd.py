"""PMD protocol: control-point bytes of a real H10, ECG frames from a real H10 recording, ACC frames
(raw and delta-compressed, including public Verity Sense captures), and every byte string either
decoding or raising ParseError."""

from __future__ import annotations

import contextlib
import math
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from biofeedback.devices import pmd
from biofeedback.devices.pmd import ControlStatus, MeasurementType, SettingType
from biofeedback.errors import DeviceError, ParseError
from tests.devices.pmd_frames import (
    H10_ECG_SETTINGS,
    H10_FEATURES,
    H10_START_ACCEPTED,
    H10_START_REFUSED,
    H10_START_REFUSED_MTU,
    VERITY_ACC_331_CUT,
    VERITY_ACC_443_CUT,
    h10_ecg_frames,
    h10_ecg_record,
)

# ---------------------------------------------------------------------- control point


def test_h10_feature_read_offers_ecg_and_acc_only() -> None:
    f = pmd.parse_features(H10_FEATURES)
    assert f.has(MeasurementType.ECG)
    assert f.has(MeasurementType.ACC)
    assert f.available == {0, 2}


@pytest.mark.parametrize("raw", [b"", b"\x0f", bytes.fromhex("f005")])
def test_feature_read_that_is_not_one_is_refused(raw: bytes) -> None:
    with pytest.raises(ParseError, match="feature read"):
        pmd.parse_features(raw)


def test_h10_ecg_settings_response_is_130_hz_14_bit() -> None:
    r = pmd.parse_control_response(H10_ECG_SETTINGS)
    assert (r.op, r.measurement, r.status, r.more) == (
        pmd.ControlOp.GET_SETTINGS,
        MeasurementType.ECG,
        0,
        False,
    )
    assert pmd.parse_settings(r.parameters) == {
        SettingType.SAMPLE_RATE: (130,),
        SettingType.RESOLUTION: (14,),
    }


def test_h10_start_refusals_and_acceptance() -> None:
    refused = pmd.parse_control_response(H10_START_REFUSED)
    assert (refused.op, refused.measurement, refused.status) == (2, 0, 5)
    assert refused.describe() == "START ECG: INVALID_PARAMETER"
    mtu = pmd.parse_control_response(H10_START_REFUSED_MTU)
    # The capture's MTU refusal does not carry the start op code in byte 1 (see docs/straps.md);
    # only its status is trusted.
    assert mtu.status == ControlStatus.INVALID_MTU
    assert not mtu.ok
    ok = pmd.parse_control_response(H10_START_ACCEPTED)
    assert ok.ok
    assert ok.parameters == b""
    assert pmd.start_factor(ok) == 1.0


def test_start_response_with_a_factor() -> None:
    raw = bytes.fromhex("f0 02 02 00 00 05 01") + struct.pack("<f", 0.5)
    assert pmd.start_factor(pmd.parse_control_response(raw)) == 0.5


def test_refusal_error_names_the_code_and_the_fix() -> None:
    err = pmd.PmdRefusedError("start ECG", ControlStatus.DEVICE_IN_CHARGER)
    assert isinstance(err, DeviceError)
    assert "DEVICE_IN_CHARGER (code 13)" in str(err)
    assert "charger" in err.hint
    assert "unknown 0x63" in str(pmd.PmdRefusedError("start ECG", 99))


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"", "0 byte"),
        (bytes.fromhex("f0 02 00"), "need at least 4"),
        (bytes.fromhex("0f 02 00 00"), "starts with 0x0f"),
    ],
)
def test_control_response_that_is_not_one_is_refused(raw: bytes, why: str) -> None:
    with pytest.raises(ParseError, match=why):
        pmd.parse_control_response(raw)


@pytest.mark.parametrize(
    ("params", "why"),
    [
        (bytes.fromhex("00"), "cut after the setting type"),
        (bytes.fromhex("00 02 82 00"), "SAMPLE_RATE lists 2"),
        (bytes.fromhex("07 01 00"), "unknown setting type 0x07"),
    ],
)
def test_bad_settings_lists_are_refused(params: bytes, why: str) -> None:
    with pytest.raises(ParseError, match=why):
        pmd.parse_settings(params)


def test_request_builders_match_the_documented_commands() -> None:
    assert pmd.request_settings(MeasurementType.ECG) == bytes.fromhex("01 00")
    assert pmd.request_stop(MeasurementType.ACC) == bytes.fromhex("03 02")
    ecg = {SettingType.SAMPLE_RATE: 130, SettingType.RESOLUTION: 14}
    assert pmd.request_start(MeasurementType.ECG, ecg) == bytes.fromhex(
        "02 00 00 01 82 00 01 01 0e 00"
    )
    acc = {SettingType.RANGE: 8, SettingType.SAMPLE_RATE: 200, SettingType.RESOLUTION: 16}
    assert pmd.request_start(MeasurementType.ACC, acc) == bytes.fromhex(
        "02 02 00 01 c8 00 01 01 10 00 02 01 08 00"
    )
    with pytest.raises(ParseError, match="does not fit"):
        pmd.request_start(MeasurementType.ACC, {SettingType.SAMPLE_RATE: 70_000})
    with pytest.raises(ParseError, match="FACTOR"):
        pmd.request_start(MeasurementType.ACC, {SettingType.FACTOR: 1})


# ---------------------------------------------------------------------- ECG


def test_real_h10_ecg_frames_decode_to_the_recorded_microvolts(shared_data: Path) -> None:
    record = h10_ecg_record(shared_data)
    frames = h10_ecg_frames(shared_data, count=20)
    assert all(len(f) == 229 for f in frames)
    decoded = [pmd.decode_ecg(f) for f in frames]
    assert [s for d in decoded for s in d.samples_uv] == [uv for _, uv in record[: 20 * 73]]
    assert decoded[0].sensor_time_ns == record[72][0]
    # Nominal-rate sample times land within a fraction of a sample of the recorded ones.
    times = decoded[1].sensor_times_ns(130.0)
    recorded = [t for t, _ in record[73:146]]
    assert times[-1] == recorded[-1]
    assert max(abs(a - b) for a, b in zip(times, recorded, strict=True)) < 1e9 / 130 / 2


def test_ecg_sign_extension_and_limits() -> None:
    raw = pmd.encode_ecg(5, [-(1 << 23), -1, 0, 1, (1 << 23) - 1])
    assert pmd.decode_ecg(raw).samples_uv == (-(1 << 23), -1, 0, 1, (1 << 23) - 1)
    with pytest.raises(ParseError, match="does not fit 24 bits"):
        pmd.encode_ecg(0, [1 << 23])


def test_every_cut_of_a_real_ecg_frame_is_an_error(shared_data: Path) -> None:
    frame = h10_ecg_frames(shared_data, count=1)[0]
    for n in range(len(frame)):
        cut = frame[:n]
        if n >= 13 and (n - 10) % 3 == 0:
            # Whole samples: indistinguishable from a shorter frame, decodes to fewer samples.
            assert len(pmd.decode_ecg(cut).samples_uv) == (n - 10) // 3
        else:
            with pytest.raises(ParseError):
                pmd.decode_ecg(cut)


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (bytes(10), "not a positive multiple"),
        (bytes(9), "shorter than the 10-byte header"),
        (bytes([0]) + bytes(8) + bytes([1]) + bytes(3), "ECG frame type 0x01"),
        (bytes([2]) + bytes(12), "not an ECG frame"),
    ],
)
def test_malformed_ecg_frames(raw: bytes, why: str) -> None:
    with pytest.raises(ParseError, match=why):
        pmd.decode_ecg(raw)


# ---------------------------------------------------------------------- ACC


def test_raw_acc_types_0_1_2() -> None:
    samples = [(1, -2, 1000), (-1000, 0, 3)]
    assert pmd.decode_acc(pmd.encode_acc_raw(7, samples)).samples_mg == tuple(samples)
    t0 = bytes([2]) + bytes(8) + bytes([0]) + bytes([0xFF, 0x01, 0x7F])
    assert pmd.decode_acc(t0).samples_mg == ((-1, 1, 127),)
    t2 = bytes([2]) + bytes(8) + bytes([2]) + (-5).to_bytes(3, "little", signed=True) * 3
    assert pmd.decode_acc(t2).samples_mg == ((-5, -5, -5),)
    with pytest.raises(ParseError, match="not a positive multiple of 6"):
        pmd.decode_acc(pmd.encode_acc_raw(7, samples)[:-1])
    with pytest.raises(ParseError, match="raw ACC frame type 0x03"):
        pmd.decode_acc(bytes([2]) + bytes(8) + bytes([3]) + bytes(12))


def _norms(frame: pmd.AccFrame) -> list[float]:
    return [math.dist((0, 0, 0), s) for s in frame.samples_mg]


def test_public_verity_delta_frame_8_bit_block() -> None:
    """Issue #443's frame: its first block (10 samples of 8-bit deltas) is whole; the second is cut
    in the excerpt. The whole part decodes to a strap at rest (|a| near 1 g, smooth); the cut one
    is an error, not a shorter frame."""
    with pytest.raises(ParseError, match="compressed frame cut"):
        pmd.decode_acc(VERITY_ACC_443_CUT)
    first_block = pmd.decode_acc(VERITY_ACC_443_CUT[:48])
    assert first_block.samples_mg[:2] == ((750, -481, -126), (766, -519, -94))
    assert len(first_block.samples_mg) == 11
    assert all(880 < n < 1010 for n in _norms(first_block))


def test_public_verity_delta_frame_6_bit_block_is_read_lsb_first() -> None:
    """Issue #331's frame uses 6-bit deltas, which only decode to a resting strap when read least
    significant bit first (Polar's order); read MSB first the same bits wander by ±80 mg."""
    raw = VERITY_ACC_331_CUT
    with pytest.raises(ParseError, match="59 samples x 3 x 6 bits"):
        pmd.decode_acc(raw)
    # 40 samples x 3 x 6 bits = 90 bytes are present: decode those with the count set to 40.
    whole = raw[:16] + bytes([6, 40]) + raw[18 : 18 + 90]
    frame = pmd.decode_acc(whole)
    assert frame.samples_mg[0] == (-6, 33, 1012)
    assert frame.samples_mg[1] == (-3, 35, 1009)
    assert len(frame.samples_mg) == 41
    assert all(1000 <= n <= 1022 for n in _norms(frame))


def test_delta_frame_scaling_and_zero_width_blocks() -> None:
    ref = bytes([2]) + bytes(8) + bytes([0x81]) + struct.pack("<hhh", 10, 20, 30)
    frame = pmd.decode_acc(ref + bytes([0, 3]), factor=2.0)
    assert frame.samples_mg == ((20, 40, 60),) * 4
    type0 = bytes([2]) + bytes(8) + bytes([0x80]) + struct.pack("<hhh", 1, 2, 3)
    assert pmd.decode_acc(type0, factor=0.5).samples_mg == ((500, 1000, 1500),)
    with pytest.raises(ParseError, match="implausible"):
        pmd.decode_acc(ref + bytes([40, 1]) + bytes(15))
    with pytest.raises(ParseError, match="compressed ACC frame type 0x82"):
        pmd.decode_acc(bytes([2]) + bytes(8) + bytes([0x82]) + bytes(6))
    with pytest.raises(ParseError, match="reference sample"):
        pmd.decode_acc(ref[:14])
    with pytest.raises(ParseError, match="delta block header"):
        pmd.decode_acc(ref + bytes([4]))


_axis = st.integers(-2000, 2000)


@given(st.lists(st.tuples(_axis, _axis, _axis), min_size=1, max_size=60))
def test_delta_encoding_round_trips(samples: list[tuple[int, int, int]]) -> None:
    raw = pmd.encode_acc_delta(123, samples)
    assert pmd.decode_acc(raw).samples_mg == tuple(samples)


def test_decode_frame_dispatches_and_refuses_other_types() -> None:
    assert isinstance(pmd.decode_frame(pmd.encode_ecg(1, [1])), pmd.EcgFrame)
    assert isinstance(pmd.decode_frame(pmd.encode_acc_raw(1, [(1, 2, 3)])), pmd.AccFrame)
    with pytest.raises(ParseError, match="PPG is not decoded"):
        pmd.decode_frame(bytes([1]) + bytes(12))
    with pytest.raises(ParseError, match="empty"):
        pmd.decode_frame(b"")


# ---------------------------------------------------------------------- any bytes


@settings(max_examples=400)
@given(st.binary(max_size=300), st.floats(0.01, 10))
def test_any_bytes_decode_or_raise_parse_error(raw: bytes, factor: float) -> None:
    for fn in (
        lambda: pmd.decode_frame(raw, acc_factor=factor),
        lambda: pmd.parse_control_response(raw),
        lambda: pmd.parse_features(raw),
        lambda: pmd.parse_settings(raw),
    ):
        with contextlib.suppress(ParseError):
            fn()


@settings(max_examples=300)
@given(
    st.sampled_from([0x00, 0x01, 0x02, 0x80, 0x81]),
    st.integers(0, 2**64 - 1),
    st.binary(max_size=240),
)
def test_frames_with_valid_headers_decode_or_raise_parse_error(
    frame_type: int, t: int, body: bytes
) -> None:
    for kind in (0, 2):
        raw = bytes([kind]) + t.to_bytes(8, "little") + bytes([frame_type]) + body
        try:
            frame = pmd.decode_frame(raw)
        except ParseError:
            continue
        assert frame.sensor_time_ns == t
