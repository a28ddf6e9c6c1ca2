"""The README and the guides run: every ```python block, page by page, on each backend.

The blocks of one page run in order in one namespace (mktestdocs, `memory=True`), in
a temporary folder, so a page reads as one script. A block that cannot run in a test
(several GPUs, a download, a dataset root) opens with
```python title="Not run in the tests: <reason>"``` and the page shows that title.
"""

import importlib
import re
from pathlib import Path

import keras
import pytest
from mktestdocs import check_md_file

import keras_miam

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"^ *```python(.*)$", re.MULTILINE)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_page_blocks_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    keras.utils.set_random_seed(0)
    check_md_file(fpath=page, memory=True)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_blocks_not_run_say_why(page):
    for extra in FENCE.findall(page.read_text()):
        assert not extra.strip() or re.fullmatch(
            r' title="Not run in the tests: [^"]+"', extra
        ), f"{page.name}: a python block marked {extra!r} hides from the tests."


def test_readme_is_short():
    lines = (ROOT / "README.md").read_text().count("\n")
    assert lines <= 150, f"README.md has {lines} lines; the limit is 150."


def public_names():
    """`{dotted public name: object}` for every name of keras_miam's modules."""
    names = {}
    for module_name in keras_miam.__all__:
        if module_name.startswith("__"):
            continue
        module = getattr(keras_miam, module_name)
        for name in getattr(module, "__all__", ()):
            names[f"keras_miam.{module_name}.{name}"] = getattr(module, name)
    return names


def resolve(path):
    """The object at a dotted path such as `keras_miam.layers.fill_missing.FillMissing`."""
    module_path, name = path, []
    while True:
        try:
            obj = importlib.import_module(module_path)
            break
        except ModuleNotFoundError:
            module_path, _, last = module_path.rpartition(".")
            name.insert(0, last)
    for part in name:
        obj = getattr(obj, part)
    return obj


def test_api_reference_documents_every_public_name():
    # Each name is documented where it is defined (`::: module.Name`), so that
    # the reference is built from the source; a name counts as documented when
    # a directive resolves to the same object.
    text = (ROOT / "docs" / "api.md").read_text()
    documented = {id(resolve(p)) for p in re.findall(r"^::: (\S+)$", text, re.M)}
    missing = [p for p, obj in public_names().items() if id(obj) not in documented]
    assert not missing, f"docs/api.md lacks {missing}"
