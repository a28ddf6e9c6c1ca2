"""`import keras_miam` is light; the rest loads on first use (fresh processes)."""

import json
import os
import subprocess
import sys

import keras
import pytest

BACKEND = keras.backend.backend()

# Run in a fresh process: what `import keras_miam` loaded, what stderr got,
# and whether every registered class is there before anything else loads.
LOADED = """
import importlib, json, pkgutil, sys
import keras, keras_miam
def registered():
    return sorted(k for k in keras.saving.get_custom_objects() if "keras_miam>" in k)
first = registered()
loaded = sorted(m for m in sys.modules if m.startswith("keras_miam."))
heavy = sorted(
    m for m in ("tensorflow", "keras_hub", "tifffile", "imagecodecs") if m in sys.modules
)
for info in pkgutil.walk_packages(keras_miam.__path__, "keras_miam."):
    if not info.name.endswith("__main__"):
        importlib.import_module(info.name)
print(json.dumps({"loaded": loaded, "heavy": heavy, "first": first,
                  "all": registered()}))
"""

# With the optional packages absent: the core imports and works, the rest
# names its extra when first used.
BLOCKED = """
import sys
BLOCKED = {"matplotlib", "PIL", "tifffile", "imagecodecs", "keras_hub"}
if sys.argv[1] != "tensorflow":
    BLOCKED.add("tensorflow")
sys.modules.update(dict.fromkeys(BLOCKED))  # None: "not installed"
import keras_miam as km
x, y, _ = km.datasets.make_synthetic_ecology(8, seed=0)
assert y.shape[0] == 8
assert km.datasets.split_dataset.__name__ == "split_dataset"
for extra, use in [("plot", "km.plotting.plot_shapley"),
                   ("geoplant", "km.datasets.load_geoplant"),
                   ("satbird", "km.datasets.load_satbird")]:
    try:
        eval(use)
    except ModuleNotFoundError as error:
        assert f'pip install "keras-miam[{extra}]"' in str(error), error
    else:
        raise AssertionError(f"{use} loaded without its extra")
"""


def run(code, *args):
    env = {**os.environ, "KERAS_BACKEND": BACKEND}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # TensorFlow's log lines must show
    result = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_import_is_light_and_registers_every_class():
    result = run(LOADED)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    lazy = ("datasets", "experiments", "explain", "plotting")
    assert not [m for m in report["loaded"] if m.split(".")[1] in lazy]
    assert report["heavy"] == (["tensorflow"] if BACKEND == "tensorflow" else [])
    if BACKEND != "tensorflow":
        assert "tensorflow" not in result.stderr.lower(), result.stderr
        assert "cuda" not in result.stderr.lower(), result.stderr
    # `keras.saving.load_model` finds every registered class after the import.
    assert report["first"] == report["all"]
    assert "keras_miam>MultimodalTransformer" in report["first"]
    assert "keras_miam>TabularTokenizer" in report["first"]


def test_optional_packages_load_on_first_use_and_name_their_extra():
    run(BLOCKED, BACKEND)


@pytest.mark.parametrize("name", ["datasets", "plotting", "experiments", "explain"])
def test_lazy_subpackages_export_their_names(name):
    import keras_miam as km

    package = getattr(km, name)
    assert package.__name__ == f"keras_miam.{name}"
    for export in package.__all__:
        assert getattr(package, export) is not None
    assert set(package.__all__) <= set(dir(package))
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        package.nothing  # noqa: B018
