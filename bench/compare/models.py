"""Build the benchmark models (random or small weights, no downloads) and load them for scoring.

Every non-kbt contender scores through ``load_scorer``: the framework's own predict call on a
decoded mini-batch, with the same preprocessing the kbt job spec asks the runner for.
"""

from __future__ import annotations

import io
import os
import shutil
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd
from bench.compare.task import Task

from kbt.datasets import dataset_root

REPO = Path(__file__).resolve().parents[2]
HEART_EXAMPLE = REPO / "examples" / "heart-classifier"
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
SUMMARY_TOKENS = 24  # every summary is exactly this long (min = max new tokens), whatever the weights
TEXT_MAX_TOKENS = 256  # BART input truncation
GENERATION: dict[str, int | bool] = {
    "max_new_tokens": SUMMARY_TOKENS,
    "min_new_tokens": SUMMARY_TOKENS,
    "num_beams": 1,
    "do_sample": False,
}

# MLflow refuses to unpickle models unless told; these are ours (built here).
os.environ.setdefault("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")


@dataclass(frozen=True)
class ImagePrep:
    """Mirror of kbt's ImagePreprocessing, applied by the non-kbt contenders."""

    color_mode: str
    size: tuple[int, int] | None
    scale: float
    mean: list[float] | None
    std: list[float] | None
    layout: str  # NCHW or flat

    def decode(self, data: bytes) -> np.ndarray:
        """One encoded image to its resized uint8 pixels (H, W) or (H, W, C)."""
        from PIL import Image

        with Image.open(io.BytesIO(data)) as image:
            converted = image.convert(self.color_mode)
            if self.size is not None and converted.size != self.size:
                converted = converted.resize(self.size, Image.Resampling.BILINEAR)
            return np.asarray(converted)

    def tensor(self, pixels: np.ndarray) -> np.ndarray:
        """A stack of decoded images (N, H, W[, C]) to the float32 model input."""
        batch: np.ndarray = pixels.astype(np.float32) * np.float32(self.scale)
        if self.mean is not None and self.std is not None:
            batch = (batch - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        if self.layout == "flat":
            return batch.reshape(len(batch), -1)
        return np.ascontiguousarray(batch.transpose(0, 3, 1, 2))

    def stack(self, images: Sequence[np.ndarray]) -> np.ndarray:
        return self.tensor(np.stack(images))


IMAGE_PREP = {
    "mnist": ImagePrep("L", (28, 28), 1.0, None, None, "flat"),
    "resnet50": ImagePrep("RGB", (224, 224), 1 / 255, IMAGENET_MEAN, IMAGENET_STD, "NCHW"),
}


# ---------------------------------------------------------------------------------------------
# Building
# ---------------------------------------------------------------------------------------------


def dataset(name: str) -> Path:
    """The folder of one example dataset (``kbt.datasets``: $KBT_DATASETS, then ../shared/datasets);
    raises ``kbt.datasets.DatasetNotFoundError`` with a one-line message when it is missing."""
    return dataset_root(name) / name


def heart_training_frame() -> pd.DataFrame:
    """The heart training rows whose `thal` is a known category (features and `target`)."""
    frame = pd.read_csv(dataset("heart") / "train" / "heart.csv", dtype={"thal": str})
    return frame[frame["thal"].isin(("fixed", "normal", "reversible"))].reset_index(drop=True)


def build_heart(model_dir: Path) -> None:
    """The heart-classifier example's MLflow model (sklearn + XGBoost pipeline), trained here."""
    sys.path.insert(0, str(HEART_EXAMPLE))
    import prepare  # type: ignore[import-not-found]  # examples/heart-classifier/prepare.py

    features, labels = prepare.load_training(dataset("heart") / "train" / "heart.csv")
    pipeline, _ = prepare.train(features, labels)
    prepare.save_model(pipeline, features, model_dir)


def build_mnist(model_dir: Path) -> None:
    """The trained MNIST MLP state_dict plus the module that defines its class."""
    model_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(dataset("mnist") / "torch-model" / "model.pt", model_dir / "model.pt")
    shutil.copy(Path(__file__).with_name("torch_nets.py"), model_dir / "torch_nets.py")


def build_resnet50(model_dir: Path) -> None:
    """A randomly initialised ResNet-50 state_dict (seed 0) plus its module."""
    import torch
    from bench.compare.torch_nets import ResNet50

    model_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    torch.save(ResNet50().eval().state_dict(), model_dir / "model.pt")
    shutil.copy(Path(__file__).with_name("torch_nets.py"), model_dir / "torch_nets.py")


def build_bart(model_dir: Path, texts: list[str]) -> None:
    """A small random-weight BART and a byte-level BPE tokenizer trained on the given texts."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import BartConfig, BartForConditionalGeneration, PreTrainedTokenizerFast

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=4096, special_tokens=specials))
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    fast = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=tokenizer,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        mask_token="<mask>",
        model_max_length=TEXT_MAX_TOKENS,
    )
    config = BartConfig(
        vocab_size=fast.vocab_size,
        d_model=128,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=256,
        decoder_ffn_dim=256,
        max_position_embeddings=TEXT_MAX_TOKENS,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        decoder_start_token_id=2,
    )
    torch.manual_seed(0)
    model = BartForConditionalGeneration(config).eval()  # type: ignore[no-untyped-call]
    model.generation_config.max_length = None
    model.save_pretrained(model_dir)
    fast.save_pretrained(model_dir)


# ---------------------------------------------------------------------------------------------
# Loading for scoring
# ---------------------------------------------------------------------------------------------

Scorer = Callable[[Any], list[Any]]


def load_scorer(workload: str, model_dir: Path) -> Scorer:
    """A function from one decoded mini-batch (frame, tensor or texts) to one output per record."""
    if workload == "heart":
        import mlflow.pyfunc

        model = mlflow.pyfunc.load_model(str(model_dir))
        return lambda frame: list(np.asarray(model.predict(frame)).tolist())
    if workload in ("mnist", "resnet50"):
        return _torch_scorer(workload, model_dir)
    if workload == "bart":
        return _summarizer(model_dir)
    raise ValueError(f"unknown workload {workload!r}")


def _torch_scorer(workload: str, model_dir: Path) -> Scorer:
    import torch
    from bench.compare import torch_nets

    net = torch_nets.MnistDigits() if workload == "mnist" else torch_nets.ResNet50Classes()
    net.load_state_dict(torch.load(model_dir / "model.pt", map_location="cpu"))
    net.eval()

    def score(tensor: np.ndarray) -> list[Any]:
        with torch.inference_mode():
            labels = net(torch.from_numpy(tensor))
        return list(labels.tolist())

    return score


def _summarizer(model_dir: Path) -> Scorer:
    import torch
    from transformers import AutoTokenizer, BartForConditionalGeneration

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = BartForConditionalGeneration.from_pretrained(model_dir).eval()  # type: ignore[no-untyped-call]

    def score(texts: list[str]) -> list[Any]:
        encoded = tokenizer(
            texts, truncation=True, max_length=TEXT_MAX_TOKENS, padding=True, return_tensors="pt"
        )
        with torch.inference_mode():
            generated = model.generate(**encoded, **GENERATION)
        return list(tokenizer.batch_decode(generated, skip_special_tokens=True))

    return score


def decode_table(data: bytes, task: Task) -> pd.DataFrame:
    dtypes = {"thal": str} if task.workload == "heart" else None
    return pd.read_csv(io.BytesIO(data), dtype=dtypes)


def decode_chunks(data: BinaryIO, task: Task, rows: int) -> Iterator[pd.DataFrame]:
    """A CSV file (tabular or text) as frames of at most `rows` records, read in chunks."""
    dtypes = {"thal": str} if task.workload == "heart" else None
    yield from pd.read_csv(data, dtype=dtypes, chunksize=rows)


def batch_input(task: Task, items: Any) -> Any:
    """Turn a list of decoded records (images) or a frame slice into the scorer's input."""
    if task.kind == "image":
        return IMAGE_PREP[task.workload].stack(items)
    if task.kind == "text":
        return list(items[task.text_column]) if isinstance(items, pd.DataFrame) else list(items)
    return items
