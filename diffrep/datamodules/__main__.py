"""``python -m diffrep.datamodules``: say where Fashion-MNIST is read from (``make demo``'s first
line), or what to install (exit 2)."""

import sys

from diffrep.datamodules.base import DataError
from diffrep.datamodules.mnist import FashionMNISTDataModule


def main() -> None:
    try:
        path = FashionMNISTDataModule().locate("train-images-idx3-ubyte")
    except DataError as err:
        print(f"diffrep: error: {err}", file=sys.stderr)
        sys.exit(2)
    print(f"data: Fashion-MNIST from {path.parent} (`make setup` installs Debian's dataset-fashion-mnist there)")


if __name__ == "__main__":
    main()
