"""Reading recordings written in an older format: each version's sidecar is brought up to the
current one on read; the files on disk are never changed.

Version history (`FormatVersion` in session.json):

* 1: the first format (a sidecar without `FormatVersion` is read as version 1). No gaps.tsv, no
  `Pipeline` object.
* 2: adds gaps.tsv (rows the recorder dropped while the disk was full) and the sidecar's
  `Pipeline` (a fingerprint of the code that computed the numbers, for replay).
* 3: adds pmd.tsv and ecg.tsv (a strap's raw ECG / ACC notifications and the ECG samples); an
  older recording has none (its strap's raw data was not recorded): read as empty.

A recording from a newer version than this software knows is refused: a reader cannot know what
it would misread.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from biofeedback.errors import RecordingError
from biofeedback.recording.schema import ECG, FORMAT_VERSION, GAPS, PMD

OLDEST_VERSION = 1

# Tables that a recording of an older version does not have: read as empty.
TABLE_SINCE: dict[str, int] = {GAPS.name: 2, PMD.name: 3, ECG.name: 3}


def _v1_to_v2(sidecar: dict[str, Any]) -> dict[str, Any]:
    # Version 1 recorded no pipeline fingerprint: the replay cannot tell whether the pipeline
    # changed since, and says so.
    return {**sidecar, "FormatVersion": 2, "Pipeline": None}


def _v2_to_v3(sidecar: dict[str, Any]) -> dict[str, Any]:
    # Version 3 only added tables (read as empty when absent); the sidecar is otherwise the same.
    return {**sidecar, "FormatVersion": 3}


MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _v1_to_v2, 2: _v2_to_v3}


@dataclass(frozen=True, slots=True)
class Migrated:
    """A sidecar brought to the current format, and the version it was written in."""

    sidecar: dict[str, Any]
    written_version: int

    @property
    def migrated(self) -> bool:
        return self.written_version != FORMAT_VERSION


def format_version(sidecar: dict[str, Any], path: Path) -> int:
    """The sidecar's format version (1 when absent); RecordingError when it cannot be read."""
    if "FormatVersion" not in sidecar:
        return 1
    version = sidecar["FormatVersion"]
    if isinstance(version, bool) or not isinstance(version, int) or version < OLDEST_VERSION:
        raise RecordingError(
            f"{path}: format version {version!r} is not a version this software knows "
            f"(expected a whole number from {OLDEST_VERSION} to {FORMAT_VERSION})"
        )
    if version > FORMAT_VERSION:
        raise RecordingError(
            f"{path}: format version {version} is newer than this software reads "
            f"(versions {OLDEST_VERSION} to {FORMAT_VERSION}); read it with a newer biofeedback"
        )
    return version


def migrate_sidecar(sidecar: dict[str, Any], path: Path) -> Migrated:
    """`sidecar` as the current format describes it; the files are left as they are."""
    written = format_version(sidecar, path)
    out = sidecar
    for version in range(written, FORMAT_VERSION):
        out = MIGRATIONS[version](out)
    return Migrated(out, written)


def table_optional(table: str, written_version: int) -> bool:
    """A recording written in `written_version` may lack `table` (it is read as empty)."""
    return written_version < TABLE_SINCE.get(table, OLDEST_VERSION)
