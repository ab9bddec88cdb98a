#!/usr/bin/env bash
# Mutation testing of the core rules with mutmut (configured in pyproject.toml [tool.mutmut]).
# Slow (minutes to hours): a documented command, not a CI step. See docs/testing.md.
#
#   tools/mutate.sh                                  every mutant of the four configured modules
#   tools/mutate.sh 'biofeedback.exposure.*'         only mutants whose name matches the glob(s)
#   tools/mutate.sh 'biofeedback.signal.timedomain.*'
#   MUTATE_RETEST=1 tools/mutate.sh GLOB             every matching mutant again (default: only
#                                                    the ones without a verdict, plus mutants of
#                                                    functions changed since: tools/mutate_run.py)
#
#   MUTATE_CHILDREN=2 tools/mutate.sh ...            parallel workers (default 1: a shared machine)
#   MUTATE_TESTS=artifacts tools/mutate.sh 'biofeedback.signal.artifacts.*'
#                                                    mutants tested against a named fast list
#                                                    (below) instead of every test that calls them
#   MUTATE_TESTS='tests/hrv/test_x.py -tests/hrv/test_x.py::test_slow' tools/mutate.sh ...
#                                                    or an explicit list of node-id prefixes
#                                                    ("-" drops); see tools/mutate_select.py
#
# Results stay in mutants/ (git-ignored): `.venv/bin/mutmut results` lists the survivors,
# `.venv/bin/mutmut show NAME` prints one as a diff. A second run only re-tests what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

[ -x .venv/bin/mutmut ] || { echo "error: .venv/bin/mutmut missing: ./dev setup (the lock has the dev extra)" >&2; exit 1; }

# The tests run from mutants/, so "../shared/data beside the checkout" would point into the
# checkout: name the real recordings explicitly.
BIOFEEDBACK_SHARED_DATA="${BIOFEEDBACK_SHARED_DATA:-$(cd .. && pwd)/shared/data}"
export BIOFEEDBACK_SHARED_DATA
# The stateful session test's profile for mutants: derandomised like CI, but no shrinking (a
# killed mutant needs one failure, not the smallest one).
export BIOFEEDBACK_HYPOTHESIS_PROFILE="${BIOFEEDBACK_HYPOTHESIS_PROFILE:-mutation}"

# MUTATE_TESTS: mutants run only the listed tests (tools/mutate_select.py deselects the rest,
# so mutmut's stats map each function to listed tests only). mutmut keeps that map in mutants/:
# a run with another list in the same checkout would reuse a stale map, so the list is recorded
# there and a different one refused.
case "${MUTATE_TESTS:-}" in
artifacts)
    # The detector's own tests, the fast ones (docs/testing.md, "biofeedback/signal/artifacts.py").
    # Left out: the rest of tests/hrv (the detector runs under every pipeline test: 100+ s a
    # mutant), the slow ones here (a 6000-beat series, neurokit2 on every real record, three
    # hypothesis tests), run against the survivors afterwards instead.
    # The four files after test_artifacts.py were written for the survivors of the 2 December
    # run (docs/mutation/): a later run kills those mutants directly.
    MUTATE_TESTS="tests/hrv/test_artifacts_details.py tests/hrv/test_native_artifacts.py
        tests/hrv/test_artifacts.py tests/hrv/test_premature_rhythm.py
        tests/hrv/test_artifacts_premature_rules.py tests/hrv/test_artifacts_vectorised_rules.py
        tests/hrv/test_artifacts_segments.py tests/hrv/test_artifacts_per_beat_windows.py
        -tests/hrv/test_native_artifacts.py::test_per_beat_detector_equals_the_vectorised_form
        -tests/hrv/test_native_artifacts.py::test_labels_agree_with_neurokit2_where_ectopy_is_rare
        -tests/hrv/test_native_artifacts.py::test_intake_screen_per_beat_equals_the_vectorised_form
        -tests/hrv/test_native_artifacts.py::test_long_clean_and_ectopic_series_are_equal_in_both_forms
        -tests/hrv/test_artifacts.py::test_random_inputs_with_correction_never_raise
        -tests/hrv/test_artifacts.py::test_random_plausible_beats_with_correction"
    ;;
esac
selection="$(echo ${MUTATE_TESTS:-})"
if [ -d mutants ]; then
    recorded="$(cat mutants/mutate-tests.txt 2>/dev/null || true)"
    if [ "$recorded" != "$selection" ]; then
        echo "error: mutants/ was made with MUTATE_TESTS='$recorded', not '$selection':" \
            "rm -rf mutants (or use another worktree)" >&2
        exit 1
    fi
fi
if [ -n "$selection" ]; then
    export MUTATE_TESTS="$selection"
    export PYTHONPATH="$PWD/tools${PYTHONPATH:+:$PYTHONPATH}"
    export PYTEST_ADDOPTS="-p mutate_select${PYTEST_ADDOPTS:+ $PYTEST_ADDOPTS}"
fi

mkdir -p mutants
echo "$selection" >mutants/mutate-tests.txt
if [ $# -gt 0 ] && [ "${MUTATE_RETEST:-}" != 1 ]; then
    # resume: only the matching mutants with no verdict yet (mutmut itself re-tests every
    # mutant that matches a glob); tools/mutate_run.py
    .venv/bin/python tools/mutate_run.py "${MUTATE_CHILDREN:-1}" "$@"
else
    .venv/bin/mutmut run --max-children "${MUTATE_CHILDREN:-1}" "$@"
fi
echo
echo "survivors (no line: none):"
if [ $# -eq 0 ]; then
    .venv/bin/mutmut results
else
    # mutmut results has no filter: keep the lines of the mutants this run asked for.
    .venv/bin/mutmut results | .venv/bin/python -c '
import fnmatch, sys
globs = sys.argv[1:]
for line in sys.stdin:
    name = line.strip().split(":")[0]
    if any(fnmatch.fnmatch(name, g) for g in globs):
        print(line, end="")
' "$@"
fi
