"""Real PMD byte layouts for the tests and the emulated BlueZ.

- `H10_*`: the control-point exchanges of a real Polar H10 (issue 13's public capture).
- `h10_ecg_frames`: ECG notifications built, byte for byte in the H10's layout (73 samples of
  signed 24-bit LE µV, sensor time of the last sample), from the real H10 recording in
  `shared/data/polar-h10-ecg-pvc` (its own per-sample sensor times).
- `VERITY_ACC_*`: compressed ACC frames (type 0x81) printed in public polar-ble-sdk issues
  (#443, #331); the excerpts we have are cut, which the tests use as such.
"""

from __future__ import annotations

import csv
from pathlib import Path

from biofeedback.devices.pmd import encode_ecg

H10_FEATURES = bytes.fromhex("0f05000000000000000000000000000000")
H10_ECG_SETTINGS = bytes.fromhex("f0 01 00 00 00 00 01 82 00 01 01 0e 00")
H10_START_REFUSED_MTU = bytes.fromhex("f0 00 01 0a")
H10_START_REFUSED = bytes.fromhex("f0 02 00 05 00")
H10_START_ACCEPTED = bytes.fromhex("f0 02 00 00 00 00")
H10_ECG_SAMPLES_PER_FRAME = 73

# polar-ble-sdk issue #443: a 227-byte Verity Sense ACC frame, of which the issue text we have
# keeps the first 188 bytes (its second delta block is cut).
VERITY_ACC_443_CUT = bytes.fromhex(
    "02 00 41 6F C4 12 45 93 0A 81 EE 02 1F FE 82 FF 08 0A 10 DA 20 D6 A3 0B D9 CB E7 D6 F6 C4"
    " E6 F1 E1 F3 E0 15 1A FE 28 1B F8 37 2C 25 20 13 19 11 0A 2F ED 4F C0 7E F4 E9 BB 6E 80 0D"
    " C8 2F B0 3E 14 D1 AF B0 7F 16 C4 CC 20 87 34 03 54 12 8B FF 8D 00 C1 42 FB E6 D3 DF B5 E1"
    " 91 53 2F BE F9 ED 43 B0 3E FD DB 9B 90 3D F5 03 60 5F 7B FA D9 DF AE 00 0B 24 64 70 40 12"
    " CC CF BF 04 E4 C5 33 B0 38 08 41 80 EF C2 12 EC 17 81 46 FD FE 5B B0 01 F3 D1 D7 6F 81 FF"
    " CD 7B 0F C2 01 36 60 7F 43 D3 5F 3F 3F 78 CB 06 48 4E FF 00 0E FC 82 05 51 AB 55 E3 4A 2D"
    " 1D 0C 5F BD E8 58 73 4D"
)
# polar-ble-sdk issue #331: the start of a Verity ACC frame (reference sample, then a block of
# 0x3b samples of 6-bit deltas); the issue text we have is cut inside that block.
VERITY_ACC_331_CUT = bytes.fromhex(
    "02 9c 58 29 13 84 57 73 07 81 fa ff 21 00 f4 03 06 3b 83 d0 eb c6 f1 ef 3a f2 1b fd ef 07"
    " bf 1f 00 77 0f 24 7e 30 10 41 ef 0f 3f e0 0b ff ef 0f 42 e1 03 80 00 e0 c2 50 f4 bd 0f 00"
    " 03 e0 f7 7e 40 08 42 2f 00 c0 af 17 3b a1 27 c0 b0 03 3d 30 f4 7c 6e 10 83 fe 03 bf e0 1b"
    " 43 81 f3 3e 22 00 3c 30 00 3e 20 10 7e cf ff ca ef e3 81 60 00 3f 3f 00 05 0f e8 c2 0f 0c"
    " be df 1f 80 ef 13 04 7f f7"
)


def h10_ecg_record(shared_data: Path) -> list[tuple[int, int]]:
    """(sensor time ns, µV) of every ECG sample of the real H10 recording."""
    out: list[tuple[int, int]] = []
    with (shared_data / "polar-h10-ecg-pvc" / "polar_h10.csv").open() as fh:
        for row in csv.DictReader(fh):
            out.append((int(row["time_ns"]), round(float(row["ecg_mV"]) * 1000)))
    return out


def h10_ecg_frames(shared_data: Path, count: int | None = None) -> list[bytes]:
    """The recording cut into 229-byte H10 ECG notifications (73 samples each), in order."""
    record = h10_ecg_record(shared_data)
    n = H10_ECG_SAMPLES_PER_FRAME
    frames = []
    for start in range(0, len(record) - n + 1, n):
        chunk = record[start : start + n]
        frames.append(encode_ecg(chunk[-1][0], [uv for _, uv in chunk]))
        if count is not None and len(frames) >= count:
            break
    return frames
