"""Import time of the API, of the run workflow and of `loopline --help`, each in a fresh
interpreter, for this tree and (with --baseline REF) for an earlier commit checked out
beside it, interleaved in one run so that both see the same machine.

  python -m bench.imports --repeats 5 --baseline 7619003

Prints the median seconds, the modules loaded and which heavy packages came with them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HEAVY = ("openai", "anthropic", "sqlalchemy", "mcp", "cryptography", "alembic")
PROBE = """
import json, sys, time
started = time.perf_counter()
import {module}
seconds = time.perf_counter() - started
heavy = [name for name in {heavy!r} if name in sys.modules]
print(json.dumps({{"seconds": seconds, "modules": len(sys.modules), "heavy": heavy}}))
"""
TARGETS = ("api.app", "workflows.run")


def probe(tree: Path, module: str) -> dict[str, object]:
    code = PROBE.format(module=module, heavy=HEAVY)
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tree, capture_output=True, text=True, check=True
    )
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def cli_seconds(tree: Path) -> float:
    code = (
        "import sys, time; sys.argv = ['loopline', '--help']; started = time.perf_counter()\n"
        "from workers.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(time.perf_counter() - started, file=sys.stderr)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tree, capture_output=True, text=True, check=True
    )
    return float(done.stderr.strip().splitlines()[-1])


def measure(trees: dict[str, Path], repeats: int) -> None:
    timings: dict[tuple[str, str], list[float]] = {}
    facts: dict[tuple[str, str], dict[str, object]] = {}
    for _ in range(repeats):
        for label, tree in trees.items():
            for module in TARGETS:
                result = probe(tree, module)
                timings.setdefault((label, module), []).append(float(str(result["seconds"])))
                facts[(label, module)] = result
            timings.setdefault((label, "loopline --help"), []).append(cli_seconds(tree))
    print(f"{'tree':<10} {'import':<16} {'median s':>9} {'modules':>8}  heavy packages loaded")
    for (label, target), seconds in timings.items():
        fact = facts.get((label, target), {})
        loaded = fact.get("heavy") or []
        heavy = ", ".join(str(name) for name in loaded) if isinstance(loaded, list) else "-"
        modules = fact.get("modules", "")
        print(
            f"{label:<10} {target:<16} {statistics.median(seconds):>9.3f} {modules!s:>8}  {heavy}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--baseline", help="a commit to compare with, e.g. 7619003")
    args = parser.parse_args()
    here = Path(__file__).resolve().parent.parent
    trees = {"this": here}
    with tempfile.TemporaryDirectory() as folder:
        if args.baseline:
            baseline = Path(folder) / "baseline"
            subprocess.run(
                [
                    "git",
                    "-C",
                    str(here),
                    "worktree",
                    "add",
                    "--detach",
                    str(baseline),
                    args.baseline,
                ],
                check=True,
                capture_output=True,
            )
            trees["baseline"] = baseline
        try:
            measure(trees, args.repeats)
        finally:
            if args.baseline:
                subprocess.run(
                    [
                        "git",
                        "-C",
                        str(here),
                        "worktree",
                        "remove",
                        "--force",
                        str(trees["baseline"]),
                    ],
                    check=True,
                )


if __name__ == "__main__":
    main()
