"""Griffe extension: the `>>>` examples of keras-style docstrings render as code.

An "Example:" section in keras-hub's form is not indented under its title, so the
Google parser leaves its `>>>` lines as prose, where `x[0]` reads as a link. This
wraps each run of `>>>` / `...` lines and their output in a ```python fence.
"""

import griffe


def fence_doctests(text):
    lines, out, inside = text.splitlines(), [], False
    for line in lines:
        stripped = line.lstrip()
        if not inside and stripped.startswith(">>>"):
            indent = line[: len(line) - len(stripped)]
            out.append(f"{indent}```python")
            inside = True
        elif inside and not stripped:
            out.append(f"{indent}```")
            inside = False
        out.append(line)
    if inside:
        out.append(f"{indent}```")
    return "\n".join(out)


class DoctestFences(griffe.Extension):
    def on_instance(self, *, obj, **kwargs):
        if obj.docstring is not None and ">>>" in obj.docstring.value:
            obj.docstring.value = fence_doctests(obj.docstring.value)
