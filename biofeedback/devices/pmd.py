"""Polar Measurement Data (PMD): the bytes of a Polar strap's raw-data service, pure (no I/O).

The PMD service (UUID FB005C80-02E7-F387-1CAD-8ACD2D8DF0C8) has two characteristics:

- the **control point** (FB005C81, read / write / indicate). Reading it gives the feature bits
  (`0f <bits>`: bit n set = measurement type n available; a Polar H10 answers `0f 05 ...`, ECG and
  ACC). Writing a request gets a response indication:

      request:   <op> <measurement type> [<setting type> <count=1> <value LE>]...
                 op 01 = get settings, 02 = start, 03 = stop
      response:  f0 <op> <measurement type> <status> [<more>] [<parameters>...]
                 status 00 = success, else the error code (`ControlStatus`)

  A settings response lists, per setting type, `<type> <count> <count x value>`; values are u16
  LE except CHANNELS (u8), RANGE_MILLIUNIT (u32) and FACTOR (float32 LE). A start response may
  carry a FACTOR (the scale of compressed samples); a lone trailing byte (the H10's
  `f0 02 00 00 00 00`) carries nothing.

- the **data** characteristic (FB005C82, notify). Every notification is one frame:

      byte 0      measurement type (00 ECG, 02 ACC, ...)
      bytes 1-8   sensor time of the frame's LAST sample, ns, u64 LE
      byte 9      frame type: bit 7 = compressed (delta) frame, bits 0-6 = the type
      bytes 10..  samples

  ECG type 0: signed 24-bit LE microvolts, one per sample (73 samples in a 229-byte H10 frame).
  ACC raw types 0/1/2: x, y, z as signed 8/16/24-bit LE milli-g. ACC compressed types 0x80/0x81
  (delta frames): a reference sample (3 channels x 16-bit signed LE), then blocks of
  `<delta bit width> <sample count>` followed by count x 3 deltas of that width, packed
  least-significant bit first, each a two's-complement number added to the previous sample.
  Compressed type 1 samples are multiplied by the stream's FACTOR (1.0 when none was given) to give
  milli-g; compressed type 0 is in g and multiplied by FACTOR x 1000.

  This follows Polar's own decoder (polar-ble-sdk, Android `BlePMDClient.parseDeltaFramesAll`).
  Which ACC frame type a strap sends depends on the device and firmware: the H10 is documented
  (and decoded by bleakheart) as raw type 1; the Verity Sense sends compressed type 1. Both decode.

Every malformed input raises `ParseError` (a cut frame, a frame whose length does not fit its
type, an unknown measurement or frame type, a control response that is not one); nothing here
returns a partial result silently.
"""

from __future__ import annotations

import enum
import itertools
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from biofeedback.errors import DeviceError, ParseError

__all__ = [
    "PMD_CONTROL_UUID",
    "PMD_DATA_UUID",
    "PMD_SERVICE_UUID",
    "AccFrame",
    "ControlOp",
    "ControlResponse",
    "ControlStatus",
    "EcgFrame",
    "Features",
    "MeasurementType",
    "PmdRefusedError",
    "SettingType",
    "decode_acc",
    "decode_ecg",
    "decode_frame",
    "encode_acc_raw",
    "encode_ecg",
    "parse_control_response",
    "parse_features",
    "parse_settings",
    "request_settings",
    "request_start",
    "request_stop",
]

PMD_SERVICE_UUID = "fb005c80-02e7-f387-1cad-8acd2d8df0c8"
PMD_CONTROL_UUID = "fb005c81-02e7-f387-1cad-8acd2d8df0c8"
PMD_DATA_UUID = "fb005c82-02e7-f387-1cad-8acd2d8df0c8"

FEATURE_READ_CODE = 0x0F
CONTROL_RESPONSE_CODE = 0xF0
HEADER_LEN = 10  # type + u64 time + frame type
COMPRESSED_BIT = 0x80
ECG_SAMPLE_BYTES = 3
ACC_CHANNELS = 3
ACC_REFERENCE_BITS = 16  # resolution of a compressed ACC frame's reference sample


class MeasurementType(enum.IntEnum):
    ECG = 0
    PPG = 1
    ACC = 2
    PPI = 3
    GYRO = 5
    MAG = 6
    SDK_MODE = 9


class ControlOp(enum.IntEnum):
    GET_SETTINGS = 0x01
    START = 0x02
    STOP = 0x03


class ControlStatus(enum.IntEnum):
    SUCCESS = 0
    INVALID_OP_CODE = 1
    INVALID_MEASUREMENT_TYPE = 2
    NOT_SUPPORTED = 3
    INVALID_LENGTH = 4
    INVALID_PARAMETER = 5
    ALREADY_IN_STATE = 6
    INVALID_RESOLUTION = 7
    INVALID_SAMPLE_RATE = 8
    INVALID_RANGE = 9
    INVALID_MTU = 10
    INVALID_NUMBER_OF_CHANNELS = 11
    INVALID_STATE = 12
    DEVICE_IN_CHARGER = 13
    DISK_FULL = 14


# What a person can do about each refusal (shown with the error).
_STATUS_HINTS: dict[int, str] = {
    ControlStatus.INVALID_MTU: "the Bluetooth link's MTU is too small for this stream; retried "
    "after the MTU exchange",
    ControlStatus.ALREADY_IN_STATE: "the stream was already running (another app may hold it)",
    ControlStatus.DEVICE_IN_CHARGER: "take the strap's sensor off its charger",
    ControlStatus.INVALID_STATE: "the strap is busy; disconnect other apps and try again",
}


class SettingType(enum.IntEnum):
    SAMPLE_RATE = 0  # Hz
    RESOLUTION = 1  # bits
    RANGE = 2  # g (ACC)
    RANGE_MILLIUNIT = 3
    CHANNELS = 4
    FACTOR = 5  # float32: scale of compressed samples


_SETTING_SIZE: dict[int, int] = {
    SettingType.SAMPLE_RATE: 2,
    SettingType.RESOLUTION: 2,
    SettingType.RANGE: 2,
    SettingType.RANGE_MILLIUNIT: 4,
    SettingType.CHANNELS: 1,
    SettingType.FACTOR: 4,
}


def _name(enum_type: type[enum.IntEnum], value: int) -> str:
    try:
        return enum_type(value).name
    except ValueError:
        return f"unknown 0x{value:02x}"


class PmdRefusedError(DeviceError):
    """The strap's control point refused a request (status says which error code)."""

    def __init__(self, what: str, status: int) -> None:
        super().__init__(
            f"strap refused to {what}: {_name(ControlStatus, status)} (code {status})",
            _STATUS_HINTS.get(status, ""),
        )
        self.status = status


# ---------------------------------------------------------------------- control point


@dataclass(frozen=True, slots=True)
class Features:
    """The measurement types a strap offers (control point read)."""

    available: frozenset[int]  # measurement type codes whose bit is set
    raw: bytes

    def has(self, measurement: MeasurementType) -> bool:
        return int(measurement) in self.available


def parse_features(data: bytes | bytearray) -> Features:
    """Decode a control-point read (`0f <bits> ...`); bits of byte 1 are types 0-7, byte 2 8-15."""
    raw = bytes(data)
    if len(raw) < 2:
        raise ParseError(f"PMD feature read of {len(raw)} byte(s): need at least 2")
    if raw[0] != FEATURE_READ_CODE:
        raise ParseError(
            f"PMD feature read starts with 0x{raw[0]:02x}, expected 0x{FEATURE_READ_CODE:02x}"
        )
    bits = int.from_bytes(raw[1:3], "little")
    return Features(frozenset(i for i in range(16) if bits >> i & 1), raw)


@dataclass(frozen=True, slots=True)
class ControlResponse:
    """One control-point response indication."""

    op: int
    measurement: int
    status: int
    more: bool  # further response frames follow (long settings lists)
    parameters: bytes  # settings (GET) or FACTOR (START); empty when none
    raw: bytes

    @property
    def ok(self) -> bool:
        return self.status == ControlStatus.SUCCESS

    def describe(self) -> str:
        return (
            f"{_name(ControlOp, self.op)} {_name(MeasurementType, self.measurement)}: "
            f"{_name(ControlStatus, self.status)}"
        )


def parse_control_response(data: bytes | bytearray) -> ControlResponse:
    """Decode `f0 <op> <type> <status> [<more>] [<params>]`; raise `ParseError` when it is not one.

    Parameters are read only from a successful response (a refusal carries none); a single byte
    after `more` is padding, as the H10 sends on start (`f0 02 00 00 00 00`).
    """
    raw = bytes(data)
    if len(raw) < 4:
        raise ParseError(
            f"PMD control response of {len(raw)} byte(s) ({raw.hex(' ') or 'empty'}): need at "
            "least 4 (f0, op, type, status)"
        )
    if raw[0] != CONTROL_RESPONSE_CODE:
        raise ParseError(
            f"PMD control response starts with 0x{raw[0]:02x}, "
            f"expected 0x{CONTROL_RESPONSE_CODE:02x}"
        )
    status = raw[3]
    more = False
    params = b""
    if status == ControlStatus.SUCCESS:
        more = len(raw) > 4 and raw[4] != 0
        if len(raw) > 6:
            params = raw[5:]
    return ControlResponse(raw[1], raw[2], status, more, params, raw)


def parse_settings(parameters: bytes) -> dict[SettingType, tuple[float, ...]]:
    """Decode a settings list (`<type> <count> <values>`...) into {setting: values}.

    Raises `ParseError` on an unknown setting type or a list cut short.
    """
    out: dict[SettingType, tuple[float, ...]] = {}
    pos = 0
    n = len(parameters)
    while pos < n:
        if pos + 2 > n:
            raise ParseError(f"PMD settings cut after the setting type at offset {pos}")
        code, count = parameters[pos], parameters[pos + 1]
        pos += 2
        if code not in _SETTING_SIZE:
            raise ParseError(f"PMD settings: unknown setting type 0x{code:02x} at offset {pos - 2}")
        kind = SettingType(code)
        size = _SETTING_SIZE[code]
        if pos + size * count > n:
            raise ParseError(
                f"PMD settings: {kind.name} lists {count} value(s) of {size} byte(s) but only "
                f"{n - pos} byte(s) remain"
            )
        values: list[float] = []
        for _ in range(count):
            chunk = parameters[pos : pos + size]
            if kind is SettingType.FACTOR:
                values.append(struct.unpack("<f", chunk)[0])
            else:
                values.append(int.from_bytes(chunk, "little"))
            pos += size
        out[kind] = out.get(kind, ()) + tuple(values)
    return out


def request_settings(measurement: MeasurementType) -> bytes:
    """The control-point write that asks for a measurement's settings."""
    return bytes((ControlOp.GET_SETTINGS, measurement))


def request_start(measurement: MeasurementType, settings: Mapping[SettingType, int]) -> bytes:
    """The control-point write that starts a stream with one chosen value per setting."""
    out = bytearray((ControlOp.START, measurement))
    for kind, value in sorted(settings.items()):
        if kind is SettingType.FACTOR:
            raise ParseError("FACTOR is chosen by the strap, not requested")
        size = _SETTING_SIZE[kind]
        if not 0 <= value < 1 << (8 * size):
            raise ParseError(f"{kind.name} {value} does not fit {size} byte(s)")
        out += bytes((kind, 1)) + int(value).to_bytes(size, "little")
    return bytes(out)


def request_stop(measurement: MeasurementType) -> bytes:
    """The control-point write that stops a stream."""
    return bytes((ControlOp.STOP, measurement))


def start_factor(response: ControlResponse) -> float:
    """The FACTOR a start response carries, else 1.0 (raises `ParseError` if its list is bad)."""
    if not response.parameters:
        return 1.0
    factors = parse_settings(response.parameters).get(SettingType.FACTOR, ())
    return float(factors[0]) if factors else 1.0


# ---------------------------------------------------------------------- data frames


@dataclass(frozen=True, slots=True)
class EcgFrame:
    """One ECG notification: microvolt samples, the last taken at `sensor_time_ns`."""

    sensor_time_ns: int
    samples_uv: tuple[int, ...]

    def sensor_times_ns(self, sample_rate_hz: float) -> tuple[int, ...]:
        """Sensor time of each sample at the nominal rate, counting back from the last."""
        return _times_back(self.sensor_time_ns, len(self.samples_uv), sample_rate_hz)


@dataclass(frozen=True, slots=True)
class AccFrame:
    """One ACC notification: (x, y, z) milli-g samples, the last taken at `sensor_time_ns`."""

    sensor_time_ns: int
    samples_mg: tuple[tuple[int, int, int], ...]
    frame_type: int  # the raw byte 9 (bit 7 set = compressed)

    def sensor_times_ns(self, sample_rate_hz: float) -> tuple[int, ...]:
        """Sensor time of each sample at the nominal rate, counting back from the last."""
        return _times_back(self.sensor_time_ns, len(self.samples_mg), sample_rate_hz)


def _times_back(last_ns: int, n: int, rate_hz: float) -> tuple[int, ...]:
    if not rate_hz > 0:
        raise ParseError(f"sample rate must be > 0 Hz, got {rate_hz!r}")
    period = 1e9 / rate_hz
    return tuple(last_ns - round(period * (n - 1 - i)) for i in range(n))


_U64 = struct.Struct("<Q")


def _header(data: bytes, what: str) -> tuple[int, int]:
    if len(data) < HEADER_LEN:
        raise ParseError(
            f"{what} frame of {len(data)} byte(s) is shorter than the {HEADER_LEN}-byte header"
        )
    return _U64.unpack_from(data, 1)[0], data[9]


@lru_cache(maxsize=64)
def _i32(n: int) -> struct.Struct:
    return struct.Struct(f"<{n}i")


# byte -> its sign extension (0x00 for 0x00-0x7f, 0xff for 0x80-0xff)
_SIGN_BYTE = bytes(0xFF if b & 0x80 else 0 for b in range(256))


def _s24(raw: bytes, start: int, n: int) -> tuple[int, ...]:
    """n signed 24-bit LE values from `raw[start:]`.

    Each value's three bytes are copied (C-speed slice assignments) into a 32-bit word whose top
    byte is the sign extension of the third, then all words are unpacked at once: no Python-level
    loop per sample, which is what keeps an ECG frame within its 20 µs budget.
    """
    words = bytearray(4 * n)
    end = start + 3 * n
    high = raw[start + 2 : end : 3]
    words[0::4] = raw[start:end:3]
    words[1::4] = raw[start + 1 : end : 3]
    words[2::4] = high
    words[3::4] = high.translate(_SIGN_BYTE)
    return _i32(n).unpack(words)


@lru_cache(maxsize=64)
def _i16(n: int) -> struct.Struct:
    return struct.Struct(f"<{n}h")


def decode_ecg(data: bytes | bytearray) -> EcgFrame:
    """Decode an ECG frame (type 0: signed 24-bit LE µV); `ParseError` when cut or malformed."""
    raw = bytes(data)
    time_ns, frame_type = _header(raw, "ECG")
    if raw[0] != MeasurementType.ECG:
        raise ParseError(f"not an ECG frame: measurement type 0x{raw[0]:02x}")
    if frame_type != 0:
        raise ParseError(f"ECG frame type 0x{frame_type:02x} is not supported (only type 0)")
    body = len(raw) - HEADER_LEN
    if body == 0 or body % ECG_SAMPLE_BYTES:
        raise ParseError(
            f"ECG frame of {len(raw)} bytes: {body} sample byte(s) is not a positive multiple of "
            f"{ECG_SAMPLE_BYTES} (frame cut?)"
        )
    return EcgFrame(time_ns, _s24(raw, HEADER_LEN, body // ECG_SAMPLE_BYTES))


def decode_acc(data: bytes | bytearray, *, factor: float = 1.0) -> AccFrame:
    """Decode an ACC frame, raw (types 0-2) or compressed (0x80, 0x81); `ParseError` when bad.

    `factor` is the stream's FACTOR from the start response (used by compressed frames only).
    """
    raw = bytes(data)
    time_ns, frame_type = _header(raw, "ACC")
    if raw[0] != MeasurementType.ACC:
        raise ParseError(f"not an ACC frame: measurement type 0x{raw[0]:02x}")
    kind = frame_type & ~COMPRESSED_BIT
    if frame_type & COMPRESSED_BIT:
        if kind not in (0, 1):
            raise ParseError(f"compressed ACC frame type 0x{frame_type:02x} is not supported")
        scale = factor * 1000.0 if kind == 0 else factor
        values = _delta_samples(raw, HEADER_LEN, ACC_CHANNELS, ACC_REFERENCE_BITS)
        if scale != 1.0:
            values = [[int(c * scale) for c in s] for s in values]
        samples = tuple((s[0], s[1], s[2]) for s in values)
    else:
        if kind > 2:
            raise ParseError(f"raw ACC frame type 0x{frame_type:02x} is not supported")
        width = kind + 1  # bytes per axis
        step = width * ACC_CHANNELS
        body = len(raw) - HEADER_LEN
        if body == 0 or body % step:
            raise ParseError(
                f"ACC frame type {kind} of {len(raw)} bytes: {body} sample byte(s) is not a "
                f"positive multiple of {step} (frame cut?)"
            )
        count = body // width
        if width == 2:
            axes: list[int] | tuple[int, ...] = _i16(count).unpack_from(raw, HEADER_LEN)
        elif width == 3:
            axes = _s24(raw, HEADER_LEN, count)
        else:
            axes = [b - 256 if b > 127 else b for b in raw[HEADER_LEN:]]
        it = iter(axes)
        samples = tuple(zip(it, it, it, strict=True))
    return AccFrame(time_ns, samples, frame_type)


def _delta_samples(raw: bytes, pos: int, channels: int, resolution: int) -> list[list[int]]:
    """Reference sample + delta blocks (Polar's delta encoding) -> absolute samples."""
    ref_bytes = (resolution + 7) // 8
    if len(raw) < pos + channels * ref_bytes:
        raise ParseError(
            f"compressed frame of {len(raw)} bytes is cut inside its reference sample "
            f"({channels} x {ref_bytes} bytes from offset {pos})"
        )
    current = [
        int.from_bytes(raw[pos + c * ref_bytes : pos + (c + 1) * ref_bytes], "little", signed=True)
        for c in range(channels)
    ]
    pos += channels * ref_bytes
    out = [current]
    n = len(raw)
    while pos < n:
        if pos + 2 > n:
            raise ParseError(f"compressed frame cut inside a delta block header at offset {pos}")
        width, count = raw[pos], raw[pos + 1]
        if width > 32:
            raise ParseError(f"delta width of {width} bits at offset {pos} is implausible (> 32)")
        pos += 2
        nbytes = (width * count * channels + 7) // 8
        if pos + nbytes > n:
            raise ParseError(
                f"compressed frame cut: delta block at offset {pos - 2} needs {nbytes} byte(s) "
                f"({count} samples x {channels} x {width} bits), {n - pos} remain"
            )
        if width == 0:
            out.extend([list(current) for _ in range(count)])
            pos += nbytes
            continue
        bits = int.from_bytes(raw[pos : pos + nbytes], "little")  # LSB-first bit stream
        mask = (1 << width) - 1
        sign = 1 << (width - 1)
        shift = 0
        for _ in range(count):
            nxt = []
            for c in range(channels):
                d = (bits >> shift) & mask
                shift += width
                nxt.append(current[c] + (d - (1 << width) if d & sign else d))
            current = nxt
            out.append(current)
        pos += nbytes
    return out


def decode_frame(data: bytes | bytearray, *, acc_factor: float = 1.0) -> EcgFrame | AccFrame:
    """Decode any data notification this project understands (ECG or ACC)."""
    if not data:
        raise ParseError("empty PMD data notification")
    kind = data[0]
    if kind == MeasurementType.ECG:
        return decode_ecg(data)
    if kind == MeasurementType.ACC:
        return decode_acc(data, factor=acc_factor)
    raise ParseError(f"PMD measurement type {_name(MeasurementType, kind)} is not decoded")


# ---------------------------------------------------------------------- encoders (emulation)


def encode_ecg(sensor_time_ns: int, samples_uv: tuple[int, ...] | list[int]) -> bytes:
    """The ECG notification a strap sends (type 0); `ParseError` if a value does not fit."""
    out = bytearray((MeasurementType.ECG,))
    out += _U64.pack(sensor_time_ns) + b"\x00"
    for v in samples_uv:
        if not -(1 << 23) <= v < 1 << 23:
            raise ParseError(f"ECG sample {v} µV does not fit 24 bits")
        out += int(v).to_bytes(3, "little", signed=True)
    return bytes(out)


def encode_acc_raw(
    sensor_time_ns: int, samples_mg: tuple[tuple[int, int, int], ...] | list[tuple[int, int, int]]
) -> bytes:
    """The raw 16-bit ACC notification (frame type 1) a Polar H10 sends."""
    out = bytearray((MeasurementType.ACC,))
    out += _U64.pack(sensor_time_ns) + b"\x01"
    for x, y, z in samples_mg:
        out += struct.pack("<hhh", x, y, z)
    return bytes(out)


def encode_acc_delta(
    sensor_time_ns: int, samples: list[tuple[int, int, int]], *, frame_type: int = 0x81
) -> bytes:
    """A compressed ACC notification (one delta block of the narrowest width that fits).

    Used by tests and the emulation to exercise the delta decoder; a real strap may split a frame
    into several blocks, which the decoder also reads.
    """
    if not samples:
        raise ParseError("a compressed frame needs at least its reference sample")
    out = bytearray((MeasurementType.ACC,)) + _U64.pack(sensor_time_ns) + bytes((frame_type,))
    out += struct.pack("<hhh", *samples[0])
    deltas = [b[c] - a[c] for a, b in itertools.pairwise(samples) for c in range(3)]
    if len(samples) > 1:
        if len(samples) - 1 > 255:
            raise ParseError("one delta block holds at most 255 samples")
        width = max(max(d.bit_length() + 1 for d in deltas), 1)
        bits = 0
        for i, d in enumerate(deltas):
            bits |= (d & ((1 << width) - 1)) << (i * width)
        nbytes = (width * len(deltas) + 7) // 8
        out += bytes((width, len(samples) - 1)) + bits.to_bytes(nbytes, "little")
    return bytes(out)
