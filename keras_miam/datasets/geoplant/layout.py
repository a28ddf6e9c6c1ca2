"""Finds the files of a GeoPlant / GeoLifeCLEF 2024-2025 PA release."""

import os
import re
from pathlib import Path

import pandas as pd

from keras_miam.datasets.geoplant.readers import CUBE_RE
from keras_miam.datasets.geoplant.readers import DIGIT_DIR_RE
from keras_miam.datasets.geoplant.readers import LANDSAT_BANDS
from keras_miam.datasets.geoplant.readers import read_csv

SPLIT_RE = re.compile(r"(?<![a-z0-9])(train|test|val)(?![a-z])")
PRESENCE_ONLY_RE = re.compile(r"(?<![a-z0-9])p[o0](?![a-z0-9])")
KINDS = ("multiband", "rgb", "nir")  # of patch folders, the 4-band first
_ROOT_HELP = (
    "a GeoPlant / GeoLifeCLEF 2024-2025 presence-absence release: a metadata CSV "
    "(PA_metadata_train.csv, GLC24-PA-metadata-train.csv, or metadata.csv with a "
    "'subset' column) next to the environmental, time series and patch folders"
)


def normalise(path):  # lower case, '-' and ' ' read as '_'
    return re.sub(r"[-\s]+", "_", str(path).lower())


def split_family(path):  # 'train', 'test' or 'val': the deepest in `path`
    found = SPLIT_RE.findall(normalise(path))
    return found[-1] if found else None


class GeoPlantLayout:
    """The files of a GeoPlant release, by split family.

    A file's family is the deepest `train`/`test`/`val` word of its path;
    presence-only (`PO`) files are ignored.

    Args:
        root: path of the release folder.

    Example:

    ```python
    layout = keras_miam.datasets.GeoPlantLayout("/data/geoplant")
    layout.splits()  # e.g. ['test', 'train']
    ```
    """

    def __init__(self, root):
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise FileNotFoundError(
                f"GeoPlant root '{self.root}' does not exist or is not a folder. "
                f"Expected {_ROOT_HELP}."
            )
        po = lambda name: PRESENCE_ONLY_RE.search(normalise(name))
        self.csv_files, self.cube_dirs, self.image_roots = [], [], []
        for dirpath, dirnames, filenames in os.walk(self.root):
            rel = Path(dirpath).relative_to(self.root)
            if any(DIGIT_DIR_RE.match(d) for d in dirnames):
                self.image_roots.append(rel)
            dirnames[:] = sorted(d for d in dirnames if not DIGIT_DIR_RE.match(d))
            dirnames[:] = [d for d in dirnames if not po(d)]
            if any(CUBE_RE.search(f) for f in filenames):
                self.cube_dirs.append(rel)
            self.csv_files += [
                rel / f for f in sorted(filenames) if f.endswith(".csv") and not po(f)
            ]
        self.metadata = {}  # split word (None: a combined file) -> paths
        for rel in self.csv_files:
            name = normalise(Path(rel.name).stem)
            rest = name.split("metadata", 1)[-1].strip("_")
            if len(rel.parts) <= 3 and "metadata" in name:
                if not rest or SPLIT_RE.match(rest):
                    self.metadata.setdefault(rest or None, []).append(rel)
        glc23 = [str(p) for p in self.csv_files if "occurrences" in normalise(p)]
        if not self.metadata:
            raise FileNotFoundError(
                f"No presence-absence metadata CSV under '{self.root}'. Expected "
                f"{_ROOT_HELP}."
                + f" Found {glc23[:3]}: the GeoLifeCLEF 2023 layout is not supported."
                * bool(glc23)
            )
        self._combined = [read_csv(self.root / p) for p in self.metadata.get(None, [])]

    def splits(self):
        """The splits of the metadata (file names or a 'subset' column)."""
        names = {s for s in self.metadata if s is not None}
        for frame in self._combined:
            if "subset" in frame.columns:
                names.update(str(v) for v in frame["subset"].dropna().unique())
        return sorted(names or (["train"] if self._combined else []))

    def read_metadata(self, split):
        """The long-format metadata rows of one split, as in the release."""
        frames = [read_csv(self.root / rel) for rel in self.metadata.get(split, [])]
        for frame in self._combined:
            if "subset" in frame.columns:
                frames.append(frame[frame["subset"].astype(str) == split])
            elif split == "train" and set(self.metadata) == {None}:
                frames.append(frame)
        if not frames:
            raise ValueError(
                f"Unknown split '{split}'. The metadata under '{self.root}' has "
                f"the splits {self.splits()}."
            )
        return pd.concat(frames, ignore_index=True)

    def feature_family(self, split):
        """The split family whose feature files hold the surveys of `split`."""
        if split == "train" or (split == "val" and "val" not in self.splits()):
            return "train"
        return split_family(split) or split

    def files(self, family):
        """`{modality: (csvs, folders)}`, the feature files of a split family.

        Env: the newest `vN` folder of each group; Landsat: `{band: [paths]}`
        (all six bands, or none); image: `[(kind, folder)]`, the 4-band first.
        """
        csvs = [r for r in self.csv_files if split_family(r) == family]
        cubes = [r for r in self.cube_dirs if split_family(r) == family]
        env, bands, images = {}, {}, []
        for rel in csvs:
            norm, parts = normalise(rel), Path(normalise(rel)).parts
            band = normalise(Path(rel.name).stem).split("_")[-1]
            if "landsat" in norm and band in LANDSAT_BANDS:
                bands.setdefault(band, []).append(self.root / rel)
            elif "environmental" in norm and not re.search(
                "monthly|landsat|metadata", norm
            ):
                top = [-1] + [i for i, p in enumerate(parts[:-1]) if "environ" in p]
                version = [int(p[1:]) for p in parts if re.fullmatch(r"v\d+", p)]
                group = parts[top[-1] + 1]  # below the last Environmental* folder
                env.setdefault(group, []).append((max(version or [0]), rel))
        for rel in (r for r in self.image_roots if split_family(r) == family):
            norm = normalise(rel)
            kind = "rgb" if "rgb" in norm else "nir" if "nir" in norm else "multiband"
            images.append((kind, self.root / rel))
        newest = sorted(r for e in env.values() for v, r in e if v == max(e)[0])
        climate = [r for r in csvs if re.search("bioclim.*monthly", normalise(r.name))]
        cube = lambda key: [self.root / r for r in cubes if key in normalise(r)]
        return {
            "env": ([self.root / r for r in newest], []),
            "climate": ([self.root / r for r in climate], cube("bioclim")),
            "landsat": (
                bands if len(bands) == len(LANDSAT_BANDS) else {},
                cube("landsat"),
            ),
            "image": ([], sorted(images, key=lambda f: KINDS.index(f[0]))),
        }
