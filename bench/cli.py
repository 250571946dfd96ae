"""``python -m bench``: which scenarios, how many runs and how big; prints the table and writes the JSON."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, replace
from pathlib import Path

from bench.report import SCENARIO_RUNS, summarise, table
from bench.scenarios import ONCE, REPEATED_INSIDE, RUNS, Figures, Sizes, run_scenario

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "latest.json"


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--scenarios",
        default=",".join(SCENARIO_RUNS),
        help=f"comma-separated, of: {', '.join(SCENARIO_RUNS)} (default: all)",
    )
    parser.add_argument("--runs", type=int, default=3, help="repetitions of each scenario (median, min, max)")
    parser.add_argument("--n", type=int, default=None, help="alerts in the burst and floor (default 2000)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one run: the smoke test of the harness")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write the figures")
    parser.add_argument("--workdir", type=Path, default=None, help="keep operator logs here (default: a temp dir)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    scenarios = [name.strip() for name in args.scenarios.split(",") if name.strip()]
    unknown = [name for name in scenarios if name not in SCENARIO_RUNS]
    if unknown:
        print(f"unknown scenario(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    sizes = Sizes.quick() if args.quick else Sizes()
    if args.n is not None:
        sizes = replace(sizes, burst=args.n)
    repetitions = 1 if args.quick else args.runs
    needed = [run for run in RUNS if any(run in SCENARIO_RUNS[name] for name in scenarios)]
    started = time.monotonic()
    runs: dict[str, list[Figures]] = {name: [] for name in needed}
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-") as temporary:
        workdir = args.workdir or Path(temporary)
        # Interleaved (burst, floor, ..., burst, floor, ...) so that a noisy moment hits every scenario alike.
        for repetition in range(repetitions):
            for name in needed:
                if repetition and (name in ONCE or name in REPEATED_INSIDE):
                    continue
                began = time.monotonic()
                inside = repetitions if name in REPEATED_INSIDE else 1
                # One failed scenario must not lose the others' figures: it is named, and the run exits 1.
                try:
                    figures = run_scenario(name, workdir / f"{name}-{repetition}", sizes, inside)
                except Exception as error:
                    traceback.print_exc()
                    failures.append(f"{name} #{repetition + 1}: {error!r}")
                    continue
                runs[name].extend(figures)
                print(f"[{name} #{repetition + 1}: {time.monotonic() - began:.0f}s] {json.dumps(figures)}", flush=True)
    summary = summarise(
        scenarios,
        runs,
        {
            "command": "python -m bench " + " ".join(sys.argv[1:] if argv is None else argv),
            "runs": repetitions,
            "sizes": asdict(sizes),
            "seconds": round(time.monotonic() - started, 1),
            "failures": failures,
        },
    )
    print(table(summary))
    print(f"total {summary['seconds']}s; figures written to {args.json}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(summary, indent=2) + "\n")
    for failure in failures:
        print(f"FAILED {failure}", file=sys.stderr)
    return 1 if failures else 0
