"""`python -m keras_miam.datasets.geoplant prepare ROOT CACHE_DIR [options]`."""

import argparse

from keras_miam.datasets.geoplant.cache import prepare_geoplant
from keras_miam.datasets.geoplant.sources import GEOPLANT_MODALITIES
from keras_miam.datasets.geoplant.sources import SERIES_SOURCES


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m keras_miam.datasets.geoplant")
    commands = parser.add_subparsers(dest="command", required=True)
    prepare = commands.add_parser("prepare", help="read a release into a cache")
    prepare.add_argument("root", help="folder of the release")
    prepare.add_argument("cache_dir", help="folder of the cache (created)")
    prepare.add_argument("--modalities", nargs="+", choices=GEOPLANT_MODALITIES)
    prepare.add_argument("--splits", nargs="+", help="default: all")
    prepare.add_argument("--series-source", choices=SERIES_SOURCES, default="auto")
    prepare.add_argument("--image-size", type=int, help="default: the first's")
    prepare.add_argument("--chunk-size", type=int, default=512)
    prepare.add_argument("--overwrite", action="store_true")
    args = vars(parser.parse_args(argv))
    args.pop("command")
    try:
        prepare_geoplant(**args)
    except (FileNotFoundError, ValueError) as error:  # GeoPlantCacheError too
        raise SystemExit(f"error: {error}") from error


if __name__ == "__main__":
    main()
