#!/usr/bin/env bash
# Mutation testing of the core rules with mutmut (configured in pyproject.toml [tool.mutmut]).
# Slow (minutes to hours): a documented command, not a CI step. See docs/testing.md.
#
#   tools/mutate.sh                                  every mutant of the four configured modules
#   tools/mutate.sh 'biofeedback.exposure.*'         only mutants whose name matches the glob(s)
#   tools/mutate.sh 'biofeedback.signal.timedomain.*'
#
#   MUTATE_CHILDREN=2 tools/mutate.sh ...            parallel workers (default 1: a shared machine)
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

.venv/bin/mutmut run --max-children "${MUTATE_CHILDREN:-1}" "$@"
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
