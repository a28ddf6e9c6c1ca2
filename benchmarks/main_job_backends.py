"""Wall time of the main job (`examples/synthetic_ecology.py`) on each backend.

Runs the README's main job, unchanged (its default scenario, strategies,
epochs, Shapley values and figures), once per backend and `--repeats` times,
the backends taking turns, each in a fresh process with `KERAS_BACKEND` set;
records each run's wall time and the test averages it printed. Writes
benchmarks/results/main_job_backends.md: which backend a user of this
machine should choose for the main job.

    taskset -c 0 python benchmarks/main_job_backends.py --repeats 1
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common
import numpy as np

MAIN_JOB = Path(__file__).resolve().parents[1] / "examples" / "synthetic_ecology.py"
AVERAGE = re.compile(r"^\[(\w+) seed \d+\] average ([0-9.]+)", re.M)


def run(backend, output):
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(MAIN_JOB), "--output", str(output)],
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        print(proc.stdout[-2000:], proc.stderr[-4000:], file=sys.stderr)
        raise RuntimeError(f"the main job failed on {backend}")
    return seconds, dict(AVERAGE.findall(proc.stdout))


def main():
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--backends", nargs="+", default=list(common.BACKENDS))
    parser.add_argument("--repeats", type=int, default=1, help="runs per backend")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    load_before = os.getloadavg()[0]
    times = {b: [] for b in args.backends}
    averages = {}
    with tempfile.TemporaryDirectory(prefix="main_job_") as tmp:
        for repeat in range(args.repeats):
            for backend in args.backends:
                seconds, printed = run(backend, Path(tmp) / f"{backend}_{repeat}")
                times[backend].append(seconds)
                averages.setdefault(backend, printed)
                print(f"  {backend} run {repeat + 1}: {seconds:.0f} s {printed}")
    fastest = min(args.backends, key=lambda b: np.median(times[b]))
    strategies = sorted({s for printed in averages.values() for s in printed})
    lines = [
        common.machine_line(),
        f"CPU cores this run may use: {len(os.sched_getaffinity(0))}. Load average "
        f"before: {load_before:.1f}, after: {os.getloadavg()[0]:.1f}.",
        "",
        f"Command: `KERAS_BACKEND=<backend> python examples/synthetic_ecology.py` "
        f"(defaults), {args.repeats} run(s) per backend, taking turns. Wall time "
        "of the whole process (imports, data, training, subsets, Shapley values, "
        "figures). The test averages differ between backends because each draws "
        "its own random numbers (weights, masks) from the same seed.",
        "",
        "| backend | wall time (s) | relative to the fastest | "
        + " | ".join(f"{s} average" for s in strategies)
        + " |",
        "|---|---|---|" + "---|" * len(strategies),
    ]
    for backend in args.backends:
        median = float(np.median(times[backend]))
        cells = [averages[backend].get(s, "-") for s in strategies]
        lines.append(
            f"| {backend} | {median:.0f} | "
            f"{median / np.median(times[fastest]):.2f}x | " + " | ".join(cells) + " |"
        )
    lines += ["", f"Fastest for the main job on this machine: {fastest}."]
    print("\n".join(lines))
    common.write_markdown(
        "main_job_backends", "The main job's wall time per backend", lines
    )


if __name__ == "__main__":
    main()
