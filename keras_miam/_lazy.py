"""Lazy exports (PEP 562): a package's names load their module on first use."""

import importlib
import sys

# What each extra of `pip install "keras-miam[extra]"` brings (import names).
EXTRAS = {
    "plot": ("matplotlib",),
    "geoplant": ("PIL", "tifffile", "imagecodecs"),
    "satbird": ("tifffile", "imagecodecs"),
}


def require(extra):
    """Imports the packages of `extra`, or raises an error that names it."""
    for name in EXTRAS[extra]:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as error:
            raise ModuleNotFoundError(
                f"This part of keras_miam needs `{name}`, which is not "
                f'installed. Install it with `pip install "keras-miam[{extra}]"`.',
                name=error.name,
            ) from error


def lazy_exports(package, names=None, submodules=(), extras=None):
    """Returns the `(__getattr__, __dir__)` of a package with lazy exports.

    Args:
        package: str, the package's `__name__`.
        names: dict `{name: module}`: each exported name and the module,
            relative to the package, that defines it.
        submodules: names of the package's modules loaded on first access.
        extras: dict `{module: extra}`: the modules that need an extra.
    """
    names, extras = names or {}, extras or {}

    def __getattr__(name):
        if name in submodules:
            module = "." + name
        elif name in names:
            module = names[name]
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        if module in extras:
            require(extras[module])
        value = importlib.import_module(module, package)
        if name not in submodules:
            value = getattr(value, name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__():
        return sorted({*vars(sys.modules[package]), *names, *submodules})

    return __getattr__, __dir__
