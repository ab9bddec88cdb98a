"""Heart Rate Measurement (GATT characteristic 0x2A37): the one place a strap's bytes are decoded.

Layout (Bluetooth SIG Heart Rate Service 1.0, little-endian):

    byte 0       flags
                   bit 0     HR value format: 0 = uint8, 1 = uint16
                   bit 1     sensor contact detected (meaningful only if bit 2 is set)
                   bit 2     sensor contact feature supported
                   bit 3     energy expended field present (uint16, kilojoules)
                   bit 4     RR-interval fields present
                   bits 5-7  reserved for future use (ignored)
    byte 1..     HR value: uint8, or uint16 when bit 0 is set (bpm)
    then         energy expended: uint16 kJ, when bit 3 is set
    then         zero or more RR intervals: uint16 each, 1/1024 s, oldest first, when bit 4 is set

A payload shorter than its flags require, or with an odd number of trailing RR bytes, raises
`ParseError` naming the problem. Values are decoded as sent; physiological plausibility (an RR of
0 or 60 s) is judged later, in `biofeedback.signal`, so one odd RR never costs the notification's
HR.

An odd-length RR field is refused as a whole, although its complete pairs could be read: over a
real link it means the newest RR was cut short, and keeping the others would silently lose that
beat and shift the reconstructed times of the rest (`timing.BeatTimer` counts back from the
newest). The payload is kept in the error `Notification`, so nothing received is lost. (Captures
printed from fixed-size buffers show such a stale trailing byte; our tests use them for this case.)
Bytes after the HR/energy fields with the RR flag clear are refused for the same reason.
"""

from __future__ import annotations

import struct

from biofeedback.devices.readings import HeartRateMeasurement
from biofeedback.errors import ParseError

FLAG_HR_UINT16 = 0x01
FLAG_CONTACT_DETECTED = 0x02
FLAG_CONTACT_SUPPORTED = 0x04
FLAG_ENERGY_PRESENT = 0x08
FLAG_RR_PRESENT = 0x10


def parse_heart_rate_measurement(payload: bytes | bytearray | memoryview) -> HeartRateMeasurement:
    """Decode one 0x2A37 payload; raise `ParseError` when it is truncated or inconsistent."""
    data = bytes(payload)
    if not data:
        raise ParseError("empty Heart Rate Measurement payload (need at least flags and HR)")
    flags = data[0]
    pos = 1
    if flags & FLAG_HR_UINT16:
        if len(data) < pos + 2:
            raise ParseError(
                f"payload of {len(data)} bytes too short for a 16-bit heart rate "
                f"(flags 0x{flags:02x})"
            )
        (hr,) = struct.unpack_from("<H", data, pos)
        pos += 2
    else:
        if len(data) < pos + 1:
            raise ParseError(f"payload of {len(data)} bytes has flags but no heart rate value")
        hr = data[pos]
        pos += 1
    energy: int | None = None
    if flags & FLAG_ENERGY_PRESENT:
        if len(data) < pos + 2:
            raise ParseError(
                f"payload of {len(data)} bytes too short for the energy expended field "
                f"(flags 0x{flags:02x})"
            )
        (energy,) = struct.unpack_from("<H", data, pos)
        pos += 2
    rr: tuple[int, ...] = ()
    rest = len(data) - pos
    if flags & FLAG_RR_PRESENT:
        if rest % 2:
            raise ParseError(
                f"RR-interval field has an odd length ({rest} bytes after offset {pos}); "
                "payload truncated or corrupt"
            )
        rr = struct.unpack_from(f"<{rest // 2}H", data, pos)
    elif rest:
        raise ParseError(
            f"{rest} unexpected trailing byte(s) after offset {pos} with the RR flag clear"
        )
    supported = bool(flags & FLAG_CONTACT_SUPPORTED)
    return HeartRateMeasurement(
        hr_bpm=hr,
        contact_supported=supported,
        contact_detected=supported and bool(flags & FLAG_CONTACT_DETECTED),
        energy_expended_kj=energy,
        rr_1024=tuple(rr),
    )


def _check_fits(what: str, value: int) -> None:
    if not 0 <= value <= 0xFFFF:
        raise ParseError(f"{what} {value} does not fit a 0x2A37 uint16 field (0..65535)")


def encode_heart_rate_measurement(m: HeartRateMeasurement, *, force_uint16: bool = False) -> bytes:
    """Build the 0x2A37 bytes a strap would send for `m` (used by the simulated strap and tests).

    The RR flag is set only when there are RR values; the contact-detected bit only when contact
    is supported. Raises `ParseError` when a value does not fit its uint8/uint16 field.
    """
    _check_fits("heart rate", m.hr_bpm)
    if m.energy_expended_kj is not None:
        _check_fits("energy expended", m.energy_expended_kj)
    for v in m.rr_1024:
        _check_fits("RR interval (1/1024 s)", v)
    flags = 0
    wide = force_uint16 or m.hr_bpm > 0xFF
    if wide:
        flags |= FLAG_HR_UINT16
    if m.contact_supported:
        flags |= FLAG_CONTACT_SUPPORTED
        if m.contact_detected:
            flags |= FLAG_CONTACT_DETECTED
    if m.energy_expended_kj is not None:
        flags |= FLAG_ENERGY_PRESENT
    if m.rr_1024:
        flags |= FLAG_RR_PRESENT
    out = bytearray([flags])
    out += struct.pack("<H", m.hr_bpm) if wide else struct.pack("<B", m.hr_bpm)
    if m.energy_expended_kj is not None:
        out += struct.pack("<H", m.energy_expended_kj)
    for v in m.rr_1024:
        out += struct.pack("<H", v)
    return bytes(out)
