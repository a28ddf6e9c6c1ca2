"""Shared test fixtures. Tests run once per backend (KERAS_BACKEND)."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


def pytest_report_header(config):
    return f"keras {keras.__version__}, backend {keras.backend.backend()}"


@pytest.fixture(autouse=True)
def _float32_policy():
    """Every test starts and ends under the float32 policy."""
    keras.mixed_precision.set_global_policy("float32")
    yield
    keras.mixed_precision.set_global_policy("float32")


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def to_numpy(x):
    return keras.ops.convert_to_numpy(x)


# XLA on TensorFlow and JAX; eager on torch, where `jit_compile=True` means
# torch.compile (minutes per model on a CPU). The torch.compile path has its
# own test (tests/test_torch_compile.py).
JIT = "auto"
