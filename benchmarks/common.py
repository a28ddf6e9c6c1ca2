"""Shared helpers of the benchmark scripts: run per backend, time steps, write results."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
BACKENDS = ("tensorflow", "jax", "torch")


def run_worker(script, backend, args=(), env=None):
    """Runs `script --worker ARGS` with KERAS_BACKEND=backend; returns its JSON."""
    env = dict(
        os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3", **(env or {})
    )
    proc = subprocess.run(
        [sys.executable, script, "--worker", *args],
        env=env,
        capture_output=True,
        text=True,
    )
    lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        print(proc.stdout[-2000:], proc.stderr[-4000:], file=sys.stderr)
        raise RuntimeError(f"{script} failed on {backend}")
    return json.loads(lines[-1][len("RESULT ") :])


def run_per_backend(script, backends, args=()):
    """Runs `script --worker` once per backend in a subprocess; returns their JSON."""
    results = {}
    for backend in backends:
        results[backend] = run_worker(script, backend, args)
        print(f"  {backend}: {results[backend]}", flush=True)
    return results


def emit(result):
    """Worker side: prints the JSON line `run_per_backend` reads."""
    print("RESULT " + json.dumps(result), flush=True)


class StepTimer:
    """A Keras callback recording wall time between consecutive batch ends."""

    def __new__(cls):
        import keras

        class _Timer(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.times = []

            def on_train_batch_end(self, batch, logs=None):
                self.times.append(time.perf_counter())

        return _Timer()


def median_step_seconds(model, x, y, batch_size, steps, warmup_steps=3, repeats=3):
    """Median train-step time of `model.fit` (after compile and warm-up)."""
    model.fit(
        x, y, batch_size=batch_size, epochs=1, verbose=0, steps_per_epoch=warmup_steps
    )
    medians = []
    for _ in range(repeats):
        timer = StepTimer()
        model.fit(
            x,
            y,
            batch_size=batch_size,
            epochs=1,
            verbose=0,
            callbacks=[timer],
            steps_per_epoch=steps,
        )
        medians.append(float(np.median(np.diff(timer.times))))
    return float(np.median(medians))


def write_markdown(name, title, lines, folder=RESULTS):
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.md"
    path.write_text(f"# {title}\n\n" + "\n".join(lines) + "\n")
    print(f"wrote {path}")
    return path


def machine_line():
    import platform

    return (
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, "
        f"Python {platform.python_version()}; date {time.strftime('%Y-%m-%d')}."
    )
