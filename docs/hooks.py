"""MkDocs hook: the figures of benchmarks/results/ go into the site as results/*.png.

They are committed once, next to the tables that describe them; the guide pages link
`results/<name>.png` instead of keeping copies under docs/.
"""

from pathlib import Path

from mkdocs.structure.files import File

RESULTS = Path(__file__).resolve().parent.parent / "benchmarks" / "results"


def on_files(files, config):
    for path in sorted(RESULTS.glob("*.png")):
        files.append(
            File.generated(config, f"results/{path.name}", abs_src_path=str(path))
        )
    return files
