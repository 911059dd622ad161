"""Stage the MNIST example: ten PNG digits and the two seed models (PyTorch and Keras).

``work/data/`` gets the PNGs, ``work/models/torch/`` the state_dict plus ``mnist_mlp.py`` (its
model class), ``work/models/keras/`` the TensorFlow SavedModel. With ``--s3-endpoint`` they are
uploaded to ``s3://data/mnist/``, ``s3://models/mnist-torch/`` and ``s3://models/mnist-keras/``.

    python examples/mnist-classifier/prepare.py [--s3-endpoint URL]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from staging import copy_files, dataset, run, upload_tree  # noqa: E402

WORK = HERE / "work"


def prepare(work: Path = WORK, s3_endpoint: str | None = None) -> None:
    mnist = dataset("mnist")
    copy_files(sorted((mnist / "images").glob("*.png")), work / "data")
    copy_files([mnist / "torch-model" / "model.pt", HERE / "mnist_mlp.py"], work / "models" / "torch")
    shutil.rmtree(work / "models" / "keras", ignore_errors=True)
    shutil.copytree(mnist / "keras-savedmodel", work / "models" / "keras")
    if s3_endpoint:
        upload_tree(work / "data", "s3://data/mnist/", s3_endpoint)
        upload_tree(work / "models" / "torch", "s3://models/mnist-torch/", s3_endpoint)
        upload_tree(work / "models" / "keras", "s3://models/mnist-keras/", s3_endpoint)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--s3-endpoint", help="also upload inputs and models to this S3 endpoint")
    prepare(s3_endpoint=parser.parse_args().s3_endpoint)
    print(f"inputs: {WORK / 'data'}   models: {WORK / 'models'}")


if __name__ == "__main__":
    run(main)
