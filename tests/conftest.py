"""Shared test fixtures. Tests run once per backend (KERAS_BACKEND)."""

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# The tests' models are tiny: XLA's compile time, not run time, dominates them on
# JAX. LLVM's optimisation level 0 compiles them in about 60% of the CPU time.
os.environ.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

if keras.backend.backend() == "jax":
    # Tests build many models of the same shapes: JAX's persistent compilation cache,
    # fresh for each run and shared by the pytest-xdist workers, compiles each once
    # (about a third less CPU time on tests/test_experiments.py).
    import tempfile

    import jax

    run = os.environ.get("PYTEST_XDIST_TESTRUNUID", str(os.getpid()))
    jax.config.update(
        "jax_compilation_cache_dir",
        os.path.join(tempfile.gettempdir(), f"keras_miam_tests_jax_cache_{run}"),
    )
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def pytest_report_header(config):
    return f"keras {keras.__version__}, backend {keras.backend.backend()}"


@pytest.fixture(autouse=True)
def _float32_policy():
    """Every test starts and ends under the float32 policy."""
    keras.mixed_precision.set_global_policy("float32")
    yield
    keras.mixed_precision.set_global_policy("float32")


# The real-format GeoPlant samples (never copied into the repo): tests that
# read them skip with a clear reason when the folder is absent.
REAL_SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "real-samples"


@pytest.fixture(scope="session")
def real_samples_dir():
    if not REAL_SAMPLES.is_dir():
        pytest.skip(f"real GeoPlant samples not found at {REAL_SAMPLES}")
    return REAL_SAMPLES


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def to_numpy(x):
    return keras.ops.convert_to_numpy(x)


# XLA on TensorFlow and JAX; eager on torch, where `jit_compile=True` means
# torch.compile (minutes per model on a CPU). The torch.compile path has its
# own test (tests/test_torch_compile.py).
JIT = "auto"
