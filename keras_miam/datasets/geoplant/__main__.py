"""Command line of the GeoPlant cache.

    python -m keras_miam.datasets.geoplant prepare ROOT CACHE_DIR
    python -m keras_miam.datasets.geoplant prepare ROOT CACHE_DIR \\
        --modalities env climate landsat image --splits train test --overwrite
"""

import argparse
import sys

from keras_miam.datasets.geoplant.cache import GeoPlantCacheError
from keras_miam.datasets.geoplant.cache import prepare_geoplant
from keras_miam.datasets.geoplant.loader import GEOPLANT_MODALITIES


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m keras_miam.datasets.geoplant",
        description="Tools for GeoPlant / GeoLifeCLEF 2024-2025 releases.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    prepare = commands.add_parser(
        "prepare",
        help="read a release once into a memory-mapped array cache "
        "(re-run to resume an interrupted preparation)",
    )
    prepare.add_argument("root", help="folder of the release")
    prepare.add_argument("cache_dir", help="folder of the cache (created)")
    prepare.add_argument(
        "--modalities",
        nargs="+",
        choices=GEOPLANT_MODALITIES,
        default=None,
        help="modalities to cache (default: every one the release has files for)",
    )
    prepare.add_argument(
        "--splits",
        nargs="+",
        default=None,
        help="release splits to cache (default: every split of the metadata)",
    )
    prepare.add_argument(
        "--series-source",
        choices=("auto", "csv", "cubes"),
        default="auto",
        help="read the climate and Landsat series from CSVs or cubes "
        "(auto: CSVs when present; default: %(default)s)",
    )
    prepare.add_argument(
        "--image-size",
        type=int,
        default=None,
        help="patch size (default: that of the first training patch)",
    )
    prepare.add_argument(
        "--chunk-size",
        type=int,
        default=512,
        help="surveys written per chunk (default: %(default)s)",
    )
    prepare.add_argument(
        "--overwrite",
        action="store_true",
        help="rebuild a cache made from other files or arguments",
    )
    args = parser.parse_args(argv)
    try:
        prepare_geoplant(
            args.root,
            args.cache_dir,
            modalities=args.modalities,
            splits=args.splits,
            series_source=args.series_source,
            image_size=args.image_size,
            chunk_size=args.chunk_size,
            overwrite=args.overwrite,
        )
    except (GeoPlantCacheError, FileNotFoundError, ValueError) as error:
        raise SystemExit(f"error: {error}") from error


if __name__ == "__main__":
    main(sys.argv[1:])
