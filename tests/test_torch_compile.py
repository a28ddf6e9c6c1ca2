"""The compiled (jit_compile=True) train step on torch: torch.compile.

The rest of the suite runs torch eagerly (`jit_compile="auto"`), because
torch.compile costs minutes per model on a CPU; this file checks once that
masking and dynamics updates work under torch.compile. On TensorFlow and
JAX every test already runs compiled (XLA).
"""

import keras
import numpy as np
import pytest

from tests.test_miam_masking import COUNTS
from tests.test_miam_masking import UpdateAt
from tests.test_miam_masking import fit_data
from tests.test_miam_masking import keep_rate_model

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "torch", reason="torch.compile is torch-only"
)


def test_update_dynamics_reaches_the_torch_compiled_step():
    model, layer = keep_rate_model(jit_compile=True)
    x, y = fit_data(1024)
    history = model.fit(
        x,
        y,
        epochs=2,
        batch_size=256,
        verbose=0,
        callbacks=[UpdateAt([0.95, 0.3, 0.5], [0.001, 0.2, 0.05], epoch=1)],
    )
    mask_rate = {m: 1 - np.array(history.history[f"keep_{m}_rate"]) for m in COUNTS}
    assert abs(mask_rate["a"][0] - mask_rate["b"][0]) < 0.06
    assert mask_rate["a"][1] > mask_rate["b"][1] + 0.2
