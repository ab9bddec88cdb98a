"""The 0x2A37 parser: every flag combination, real captured payloads, bumble as an independent
encoder, and hypothesis (random bytes only ever raise ParseError; encode -> parse round-trips)."""

from __future__ import annotations

import csv
import itertools
import struct
from pathlib import Path

import pytest
from bumble.profiles.heart_rate_service import HeartRateService
from hypothesis import given, settings
from hypothesis import strategies as st

from biofeedback.devices.hrm import encode_heart_rate_measurement, parse_heart_rate_measurement
from biofeedback.devices.readings import HeartRateMeasurement
from biofeedback.errors import ParseError

BumbleHRM = HeartRateService.HeartRateMeasurement

# -- hand-built bytes -------------------------------------------------------------------------


def _hand_built(
    *, hr: int, wide: bool, supported: bool, detected: bool, energy: int | None, rr: list[int]
) -> bytes:
    """Bytes written straight from the spec, without our encoder."""
    flags = (
        (0x01 if wide else 0)
        | (0x02 if detected else 0)
        | (0x04 if supported else 0)
        | (0x08 if energy is not None else 0)
        | (0x10 if rr else 0)
    )
    out = bytes([flags]) + (struct.pack("<H", hr) if wide else bytes([hr]))
    if energy is not None:
        out += struct.pack("<H", energy)
    return out + b"".join(struct.pack("<H", v) for v in rr)


_RR_SETS = [[], [800], [700, 1023], [512, 65535, 1]]


@pytest.mark.parametrize(
    ("wide", "supported", "detected", "with_energy", "rr"),
    list(itertools.product([False, True], [False, True], [False, True], [False, True], _RR_SETS)),
)
def test_every_flag_combination(
    wide: bool, supported: bool, detected: bool, with_energy: bool, rr: list[int]
) -> None:
    hr = 300 if wide else 72
    energy = 1234 if with_energy else None
    payload = _hand_built(
        hr=hr, wide=wide, supported=supported, detected=detected, energy=energy, rr=rr
    )
    m = parse_heart_rate_measurement(payload)
    assert m.hr_bpm == hr
    assert m.contact_supported is supported
    # "detected" means nothing unless the strap says it supports contact sensing
    assert m.contact_detected is (supported and detected)
    assert m.contact == (detected if supported else None)
    assert m.energy_expended_kj == energy
    assert m.rr_1024 == tuple(rr)
    assert m.rr_ms == tuple(v * 1000.0 / 1024.0 for v in rr)
    # our encoder writes the same bytes (except a detected bit without the supported bit,
    # which carries no information and is not re-emitted)
    if supported or not detected:
        assert encode_heart_rate_measurement(m, force_uint16=wide) == payload


def test_16_bit_hr_below_256_and_8_bit_extremes() -> None:
    assert parse_heart_rate_measurement(b"\x01\x48\x00").hr_bpm == 72
    assert parse_heart_rate_measurement(b"\x00\x00").hr_bpm == 0
    assert parse_heart_rate_measurement(b"\x00\xff").hr_bpm == 255
    assert parse_heart_rate_measurement(b"\x01\xff\xff").hr_bpm == 65535


def test_reserved_flag_bits_are_ignored() -> None:
    m = parse_heart_rate_measurement(b"\xf0\x4e\xd2\x02")
    assert (m.hr_bpm, m.rr_1024, m.energy_expended_kj) == (78, (722,), None)


def test_rr_flag_with_no_rr_bytes_is_zero_rr() -> None:
    # bumble (and some straps) set the RR flag with an empty list
    assert parse_heart_rate_measurement(b"\x10\x40").rr_1024 == ()


def test_rr_values_are_not_judged_here() -> None:
    # a 0 or 64 s RR is implausible but decodable; signal quality is decided downstream
    m = parse_heart_rate_measurement(b"\x10\x40\x00\x00\xff\xff")
    assert m.rr_1024 == (0, 65535)


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        (b"", "empty"),
        (b"\x00", "no heart rate"),
        (b"\x01", "16-bit heart rate"),
        (b"\x01\x48", "16-bit heart rate"),
        (b"\x08\x48", "energy expended"),
        (b"\x08\x48\x01", "energy expended"),
        (b"\x09\x48\x00\x01", "energy expended"),
        (b"\x10\x48\x01", "odd length"),
        (b"\x10\x48\x01\x02\x03", "odd length"),
        (b"\x18\x48\x01\x02\x03", "odd length"),
        (b"\x00\x48\x00", "trailing"),
        (b"\x08\x48\x01\x02\x03\x04", "trailing"),
    ],
)
def test_truncated_or_inconsistent_payloads_name_the_problem(payload: bytes, fragment: str) -> None:
    with pytest.raises(ParseError, match=fragment):
        parse_heart_rate_measurement(payload)


def test_accepts_bytearray_and_memoryview() -> None:
    raw = bytearray(b"\x10\x4e\xd2\x02\xc8\x02")
    assert parse_heart_rate_measurement(raw) == parse_heart_rate_measurement(memoryview(raw))


# -- real captured payloads -------------------------------------------------------------------


def _captured_rows(shared_data: Path) -> list[dict[str, str]]:
    path = shared_data / "ble-hrm-payloads" / "hrm_0x2a37_payloads.csv"
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _spec(row: dict[str, str]) -> HeartRateMeasurement:
    supported = row["spec_contact_supported"] == "True"
    rr = tuple(int(v) for v in row["spec_rr_1024ths"].split(";") if v)
    return HeartRateMeasurement(
        hr_bpm=int(row["spec_hr_bpm"]),
        contact_supported=supported,
        contact_detected=supported and row["spec_contact_detected"] == "True",
        energy_expended_kj=int(row["spec_energy_kJ"]) if row["spec_energy_kJ"] else None,
        rr_1024=rr,
    )


@pytest.mark.data
def test_captured_payloads_decode_to_the_spec_columns(shared_data: Path) -> None:
    rows = _captured_rows(shared_data)
    exact = [r for r in rows if r["length_certain"] == "yes"]
    assert len(exact) >= 15
    for row in exact:
        payload = bytes.fromhex(row["payload_hex"])
        assert len(payload) == int(row["n_bytes"])
        assert int(row["spec_trailing_bytes"]) == 0
        m = parse_heart_rate_measurement(payload)
        assert m == _spec(row), row["payload_hex"]
        assert payload[0] == int(row["spec_flags_hex"], 16)
        want_ms = [float(v) for v in row["spec_rr_ms"].split(";") if v]
        assert list(m.rr_ms) == pytest.approx(want_ms, abs=1e-6)
        # our encoder reproduces the strap's bytes exactly
        assert encode_heart_rate_measurement(m) == payload


@pytest.mark.data
def test_captured_payloads_with_stale_trailing_bytes_are_refused(shared_data: Path) -> None:
    """Rows with length_certain=NO were printed from a fixed-size buffer: one stale byte follows
    the real value. We refuse such a payload (ParseError naming the odd RR length) rather than
    guess: over a real link an odd RR field means a truncated newest RR, and silently accepting
    the whole pairs would drop that beat and shift the reconstructed times of the others. The
    payload without the trailing bytes decodes to the spec values."""
    rows = [r for r in _captured_rows(shared_data) if r["length_certain"] == "NO"]
    assert len(rows) >= 5
    for row in rows:
        payload = bytes.fromhex(row["payload_hex"])
        with pytest.raises(ParseError, match="odd length"):
            parse_heart_rate_measurement(payload)
        trimmed = payload[: len(payload) - int(row["spec_trailing_bytes"])]
        assert parse_heart_rate_measurement(trimmed) == _spec(row)


# -- bumble as an independent encoder/decoder -------------------------------------------------


def _to_bumble(m: HeartRateMeasurement) -> BumbleHRM:
    return BumbleHRM(
        heart_rate=m.hr_bpm,
        sensor_contact_detected=m.contact,
        energy_expended=m.energy_expended_kj,
        rr_intervals=[v / 1024 for v in m.rr_1024] if m.rr_1024 else None,
    )


def test_bumble_examples() -> None:
    b = BumbleHRM(heart_rate=78, rr_intervals=[722 / 1024, 712 / 1024])
    assert bytes(b) == bytes.fromhex("104ed202c802")
    m = parse_heart_rate_measurement(bytes(b))
    assert (m.hr_bpm, m.rr_1024, m.contact) == (78, (722, 712), None)
    wide = parse_heart_rate_measurement(
        bytes(BumbleHRM(heart_rate=300, sensor_contact_detected=False, energy_expended=7))
    )
    assert (wide.hr_bpm, wide.contact, wide.energy_expended_kj) == (300, False, 7)


_measurements = st.builds(
    lambda hr, contact, energy, rr: HeartRateMeasurement(
        hr_bpm=hr,
        contact_supported=contact is not None,
        contact_detected=bool(contact),
        energy_expended_kj=energy,
        rr_1024=tuple(rr),
    ),
    st.integers(0, 0xFFFF),
    st.none() | st.booleans(),
    st.none() | st.integers(0, 0xFFFF),
    st.lists(st.integers(0, 0xFFFF), max_size=9),
)


@given(_measurements)
def test_bumble_encodes_what_we_parse(m: HeartRateMeasurement) -> None:
    assert parse_heart_rate_measurement(bytes(_to_bumble(m))) == m


@given(_measurements, st.booleans())
def test_bumble_decodes_what_we_encode(m: HeartRateMeasurement, force_uint16: bool) -> None:
    b = BumbleHRM.from_bytes(encode_heart_rate_measurement(m, force_uint16=force_uint16))
    assert b.heart_rate == m.hr_bpm
    assert b.sensor_contact_detected == m.contact
    assert b.energy_expended == m.energy_expended_kj
    assert tuple(round(v * 1024) for v in b.rr_intervals or ()) == m.rr_1024


@given(st.lists(st.floats(0.0, 63.99, allow_nan=False), min_size=1, max_size=8))
def test_rr_in_seconds_truncates_to_1024ths(rr_s: list[float]) -> None:
    m = parse_heart_rate_measurement(bytes(BumbleHRM(heart_rate=60, rr_intervals=rr_s)))
    assert m.rr_1024 == tuple(int(v * 1024) for v in rr_s)
    for got_ms, s in zip(m.rr_ms, rr_s, strict=True):
        assert 0.0 <= s * 1000.0 - got_ms < 1000.0 / 1024.0


# -- hypothesis: the parser's contract --------------------------------------------------------


@settings(max_examples=500)
@given(st.binary(max_size=40))
def test_random_bytes_decode_or_raise_parse_error_only(data: bytes) -> None:
    m: HeartRateMeasurement | None = None
    try:
        m = parse_heart_rate_measurement(data)
    except ParseError as exc:
        message = str(exc)
    if m is None:
        assert message  # the message says what is wrong
        return
    assert 0 <= m.hr_bpm <= 0xFFFF
    assert all(0 <= v <= 0xFFFF for v in m.rr_1024)
    # whatever decodes re-encodes to the same bytes after the flags, and to the same meaning
    canonical = encode_heart_rate_measurement(m, force_uint16=bool(data[0] & 0x01))
    assert canonical[1:] == data[1:]
    assert parse_heart_rate_measurement(canonical) == m


@given(_measurements, st.booleans())
def test_encode_parse_round_trip(m: HeartRateMeasurement, force_uint16: bool) -> None:
    payload = encode_heart_rate_measurement(m, force_uint16=force_uint16)
    assert parse_heart_rate_measurement(payload) == m
    assert len(payload) == (
        1
        + (2 if force_uint16 or m.hr_bpm > 255 else 1)
        + (2 if m.energy_expended_kj is not None else 0)
        + 2 * len(m.rr_1024)
    )


@given(_measurements, st.data())
def test_every_truncation_of_a_valid_payload_is_refused_or_drops_whole_rr(
    m: HeartRateMeasurement, data: st.DataObject
) -> None:
    payload = encode_heart_rate_measurement(m)
    cut = data.draw(st.integers(0, len(payload) - 1))
    try:
        got = parse_heart_rate_measurement(payload[:cut])
    except ParseError:
        return
    # only a cut at an RR boundary decodes, and then it is a prefix of the RR list
    assert got.hr_bpm == m.hr_bpm
    assert m.rr_1024[: len(got.rr_1024)] == got.rr_1024


@pytest.mark.parametrize(
    "m",
    [
        HeartRateMeasurement(70, True, True, None, (70000,)),
        HeartRateMeasurement(-1, False, False, None, ()),
        HeartRateMeasurement(70000, False, False, None, ()),
        HeartRateMeasurement(70, False, False, 70000, ()),
    ],
)
def test_encoder_refuses_values_that_do_not_fit(m: HeartRateMeasurement) -> None:
    with pytest.raises(ParseError, match="does not fit"):
        encode_heart_rate_measurement(m)
