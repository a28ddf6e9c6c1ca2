"""Every example script's --help shows the default of every option that has one.

(`examples/geoplant.py` is checked in tests/test_examples.py.)
"""

import argparse
import importlib.util
import pathlib
import sys

import pytest

EXAMPLES = pathlib.Path(__file__).parents[1] / "examples"


class _Parsed(Exception):
    def __init__(self, parser):
        self.parser = parser


def example_parser(name, monkeypatch):
    """The example's argparse parser, captured when it parses."""
    spec = importlib.util.spec_from_file_location(f"help_{name}", EXAMPLES / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    def capture(self, args=None, namespace=None):
        raise _Parsed(self)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", capture)
    monkeypatch.setattr(sys, "argv", [name])
    with pytest.raises(_Parsed) as parsed:
        module.parse_args()
    return parsed.value.parser


@pytest.mark.parametrize(
    "name", ["existing_model.py", "synthetic_ecology.py", "taxabench.py"]
)
def test_help_shows_every_default(name, monkeypatch):
    parser = example_parser(name, monkeypatch)
    formatter = parser.formatter_class(prog=name)
    checked = 0
    for action in parser._actions:
        if not action.option_strings or action.default in (None, False):
            continue
        if action.default is argparse.SUPPRESS:
            continue
        # argparse prints no help line at all (so no default) without help=.
        assert action.help, (name, action.option_strings, "has no help text")
        shown = formatter._get_help_string(action)
        assert "%(default)" in shown, (name, action.option_strings, shown)
        checked += 1
    assert checked >= 5
    text = parser.format_help()
    assert text.count("(default:") >= checked
