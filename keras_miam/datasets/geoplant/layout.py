"""Finds the files of a GeoPlant / GeoLifeCLEF 2024-2025 PA release."""

import os
from pathlib import Path

import pandas as pd

from keras_miam.datasets.geoplant.readers import CUBE_RE
from keras_miam.datasets.geoplant.readers import DIGIT_DIR_RE
from keras_miam.datasets.geoplant.readers import LANDSAT_BANDS
from keras_miam.datasets.geoplant.readers import SPLIT_RE
from keras_miam.datasets.geoplant.readers import VERSION_RE
from keras_miam.datasets.geoplant.readers import is_presence_only
from keras_miam.datasets.geoplant.readers import normalise
from keras_miam.datasets.geoplant.readers import read_csv
from keras_miam.datasets.geoplant.readers import split_family

_ROOT_HELP = (
    "a GeoPlant / GeoLifeCLEF 2024-2025 presence-absence release: a "
    "metadata CSV (e.g. PresenceAbsenceSurveys/PA_metadata_train.csv, "
    "GLC24-PA-metadata-train.csv, or a metadata.csv with a 'subset' column) "
    "next to EnvironmentalValues/ (or EnvironmentalRasters/), the bioclimatic "
    "and Landsat time series (CSVs or *_cube.pt files) and the Sentinel-2 "
    "patches ({CD}/{AB}/{surveyId}.tiff or .jpeg)"
)


class GeoPlantLayout:
    """Locates the file families of a GeoPlant presence-absence release.

    The layout is discovered once by walking `root` (without descending into
    the `{CD}/{AB}` patch folders): metadata CSVs, environmental CSVs, time
    series CSVs, folders of `*_cube.pt` files and patch folders. Each file
    or folder is assigned to a split family ('train', 'test' or 'val') by the
    deepest `train`/`test`/`val` word of its path relative to `root`
    (`PA-train`, `pa_train_patches_rgb`, `GLC24-PA-test-...`), and files of
    presence-only data (a `PO`/`P0` word in the path) are ignored.

    Args:
        root: path of the release folder.

    Example:

    ```python
    layout = GeoPlantLayout("/data/geoplant")
    layout.splits()  # e.g. ['test', 'train']
    layout.env_files("train")  # the environmental CSVs of the training split
    ```

    Reference:
        Picek et al., "GeoPlant: Spatial Plant Species Prediction Dataset",
        NeurIPS 2024 Datasets and Benchmarks.
    """

    def __init__(self, root):
        self.root = Path(root).expanduser()
        if not self.root.exists():
            raise FileNotFoundError(
                f"GeoPlant root '{self.root}' does not exist. Expected {_ROOT_HELP}."
            )
        if not self.root.is_dir():
            raise FileNotFoundError(
                f"GeoPlant root '{self.root}' is not a folder. Expected {_ROOT_HELP}."
            )
        self.csv_files = []
        self.cube_dirs = []
        self.image_roots = []
        self._walk()
        self.metadata = self._find_metadata()
        if not self.metadata:
            raise FileNotFoundError(self._missing_metadata_message())

    # ----------------------------------------------------------- discovery
    def _walk(self):
        for dirpath, dirnames, filenames in os.walk(self.root):
            rel = Path(dirpath).relative_to(self.root)
            digit_dirs = [d for d in dirnames if DIGIT_DIR_RE.match(d)]
            if digit_dirs:
                self.image_roots.append(rel)
            # Never descend into the {CD}/{AB} patch trees.
            dirnames[:] = sorted(d for d in dirnames if not DIGIT_DIR_RE.match(d))
            if any(CUBE_RE.search(f) for f in filenames):
                self.cube_dirs.append(rel)
            for f in sorted(filenames):
                if f.lower().endswith(".csv"):
                    self.csv_files.append(rel / f)

    def _find_metadata(self):
        """Maps split token -> list of (path, uses_subset_column)."""
        found = {}
        for rel in self.csv_files:
            if len(rel.parts) > 3 or is_presence_only(rel):
                continue
            name = normalise(Path(rel.name).stem)
            if "metadata" not in name:
                continue
            rest = name.split("metadata", 1)[1].strip("_")
            if not rest:
                found.setdefault(None, []).append(rel)
            elif SPLIT_RE.match(rest):
                found.setdefault(rest, []).append(rel)
        return found

    def _missing_metadata_message(self):
        glc23 = [
            p
            for p in self.csv_files
            if "presence" in normalise(p) and "occurrences" in normalise(p)
        ]
        message = (
            f"No presence-absence metadata CSV found under '{self.root}'. "
            f"Expected {_ROOT_HELP}."
        )
        if glc23:
            message += (
                f" Found {[str(p) for p in glc23[:3]]}: this looks like the "
                "GeoLifeCLEF 2023 layout (occurrences keyed by patchID / "
                "timeSerieID, ';'-separated), which is not supported."
            )
        return message

    # ------------------------------------------------------------- splits
    def combined_metadata(self):
        """The metadata CSVs without a split in their name (read once)."""
        if not hasattr(self, "_combined"):
            frames = []
            for rel in self.metadata.get(None, []):
                frames.append((rel, read_csv(self.root / rel)))
            self._combined = frames
        return self._combined

    def splits(self):
        """Splits available in the metadata (file names or 'subset' column)."""
        names = {s for s in self.metadata if s is not None}
        for _, frame in self.combined_metadata():
            if "subset" in frame.columns:
                names.update(str(v) for v in frame["subset"].dropna().unique())
        if not names and self.metadata.get(None):
            names.add("train")
        return sorted(names)

    def read_metadata(self, split):
        """Long-format metadata rows of one split (as given by the release)."""
        frames = [read_csv(self.root / rel) for rel in self.metadata.get(split, [])]
        for _, frame in self.combined_metadata():
            if "subset" in frame.columns:
                frames.append(frame[frame["subset"].astype(str) == split])
            elif split == "train" and not any(
                s for s in self.metadata if s is not None
            ):
                frames.append(frame)
        if not frames:
            raise ValueError(
                f"Unknown split '{split}'. The metadata under '{self.root}' "
                f"has the splits {self.splits()}."
            )
        frame = pd.concat(frames, ignore_index=True)
        if "surveyId" not in frame.columns:
            raise ValueError(
                f"The metadata of split '{split}' has no 'surveyId' column; "
                f"found columns {list(frame.columns)}."
            )
        return frame

    # ----------------------------------------------------- file families
    def _in_family(self, rel, family):
        return split_family(rel) == family and not is_presence_only(rel)

    def env_files(self, family):
        """Environmental CSVs (newest `vN` folder of each variable group)."""
        groups = {}
        for rel in self.csv_files:
            norm = normalise(rel)
            if (
                "environmental" not in norm
                or "monthly" in norm
                or "landsat" in norm
                or "metadata" in norm
                or not self._in_family(rel, family)
            ):
                continue
            parts = rel.parts
            # The variable group is the folder below the (last)
            # Environmental* folder: Climate, Elevation, SoilGrids, ...
            top = max(
                (i for i, p in enumerate(parts[:-1]) if "environmental" in p.lower()),
                default=-1,
            )
            group = parts[top + 1] if top + 1 < len(parts) - 1 else rel.name
            version = max(
                [int(m.group(1)) for p in parts if (m := VERSION_RE.match(p.lower()))]
                or [0]
            )
            groups.setdefault(group, []).append((version, rel))
        files = []
        for entries in groups.values():
            newest = max(v for v, _ in entries)
            files.extend(rel for v, rel in entries if v == newest)
        return [self.root / rel for rel in sorted(files)]

    def climate_csvs(self, family):
        return [
            self.root / rel
            for rel in self.csv_files
            if "bioclim" in normalise(rel.name)
            and "monthly" in normalise(rel.name)
            and self._in_family(rel, family)
        ]

    def landsat_csvs(self, family):
        """{band: [paths]} of the per-band Landsat CSVs."""
        bands = {}
        for rel in self.csv_files:
            norm = normalise(rel)
            if "landsat" not in norm or not self._in_family(rel, family):
                continue
            band = normalise(Path(rel.name).stem).split("_")[-1]
            if band in LANDSAT_BANDS:
                bands.setdefault(band, []).append(self.root / rel)
        return bands

    def cube_folders(self, kind, family):
        """Folders of `*_cube.pt` files for 'climate' or 'landsat'."""
        key = "bioclim" if kind == "climate" else "landsat"
        return [
            self.root / rel
            for rel in self.cube_dirs
            if key in normalise(rel) and self._in_family(rel, family)
        ]

    def image_folders(self, family):
        """[(kind, folder)] with kind 'multiband', 'rgb' or 'nir'."""
        folders = []
        for rel in self.image_roots:
            if not self._in_family(rel, family):
                continue
            norm = normalise(rel)
            if "rgb" in norm:
                kind = "rgb"
            elif "nir" in norm:
                kind = "nir"
            else:
                kind = "multiband"
            folders.append((kind, self.root / rel))
        return folders
