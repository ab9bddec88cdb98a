"""`mutmut run` for tools/mutate.sh that resumes a glob: only mutants without a verdict are run.

mutmut 3 re-tests every mutant whose name matches a glob given on its command line, even one
with a verdict from an earlier run whose function has not changed since; without a glob it
resumes, but over every configured module. This runs mutmut with no names (so it keeps the
verdicts it has) and narrows the mutants to the globs itself. MUTATE_RETEST=1 in
tools/mutate.sh gives mutmut's own behaviour (every matching mutant again).

Usage: python tools/mutate_run.py MAX_CHILDREN GLOB [GLOB ...]
"""

from __future__ import annotations

import fnmatch
import sys

import mutmut.__main__ as mm


def main(argv: list[str]) -> None:
    """Run mutmut over the mutants matching the globs that have no verdict yet."""
    max_children, globs = int(argv[0]), argv[1:]
    if not globs:
        raise SystemExit("usage: mutate_run.py MAX_CHILDREN GLOB [GLOB ...]")
    collect = mm.collect_source_file_mutation_data

    def matching(*, mutant_names: tuple[str, ...] | list[str]):  # type: ignore[no-untyped-def]
        mutants, by_path = collect(mutant_names=mutant_names)
        mine = [m for m in mutants if any(fnmatch.fnmatch(m[1], g) for g in globs)]
        if not mine:
            raise SystemExit(f"no mutant matches {globs}")
        return mine, by_path

    mm.collect_source_file_mutation_data = matching
    mm._run([], max_children)


if __name__ == "__main__":
    main(sys.argv[1:])
