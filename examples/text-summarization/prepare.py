"""Build a small BART summarizer with random weights and a locally trained tokenizer.

Nothing is downloaded: a byte-level BPE tokenizer is trained on the bills' summaries, and a
``BartForConditionalGeneration`` is built from a small ``BartConfig``. Both are saved with
``save_pretrained`` to ``work/model/``, so the model directory loads exactly like a copy of
facebook/bart-large-cnn (``AutoModelForSeq2SeqLM`` / ``pipeline("summarization", model=dir)``);
swap in the real model by pointing the Model's uri at its directory. The billsum CSV files are
copied to ``work/data/`` (or uploaded, with the model, to ``s3://data/billsum/`` and
``s3://models/bart-tiny/``).

    python examples/text-summarization/prepare.py [--files 4] [--s3-endpoint URL]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from staging import copy_files, dataset, fresh_dir, run, upload_tree  # noqa: E402

WORK = HERE / "work"
SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]  # BART's ids 0..4
VOCAB_SIZE = 2000
MAX_INPUT_TOKENS = 256


def billsum_files(count: int) -> list[Path]:
    return sorted(dataset("billsum").glob("billsum-*.csv"))[:count]


def build_tokenizer(texts: list[str], model_dir: Path) -> Any:
    from tokenizers import ByteLevelBPETokenizer  # noqa: PLC0415 (heavy: only tokenizer step)
    from transformers import BartTokenizer  # noqa: PLC0415 (heavy: only tokenizer step)

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=VOCAB_SIZE, min_frequency=2, special_tokens=SPECIAL_TOKENS)
    bpe_dir = fresh_dir(model_dir / "bpe")
    bpe.save_model(str(bpe_dir))
    tokenizer = BartTokenizer(
        vocab=str(bpe_dir / "vocab.json"),
        merges=str(bpe_dir / "merges.txt"),
        model_max_length=MAX_INPUT_TOKENS,
    )
    tokenizer.save_pretrained(model_dir)
    return tokenizer


def build_model(tokenizer: Any, model_dir: Path) -> None:
    import torch  # noqa: PLC0415 (heavy: only model step)
    from transformers import BartConfig, BartForConditionalGeneration  # noqa: PLC0415 (heavy: only model step)

    torch.manual_seed(0)
    config = BartConfig(
        vocab_size=len(tokenizer),
        d_model=64,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=128,
        decoder_ffn_dim=128,
        max_position_embeddings=MAX_INPUT_TOKENS,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.eos_token_id,
    )
    BartForConditionalGeneration(config).save_pretrained(model_dir)


def prepare(work: Path = WORK, files: int = 4, s3_endpoint: str | None = None) -> None:
    sources = billsum_files(files)
    model_dir = fresh_dir(work / "model")
    summaries = [text for source in sources for text in pd.read_csv(source)["summary"].dropna()]
    build_model(build_tokenizer(summaries, model_dir), model_dir)
    copy_files(sources, work / "data")
    if s3_endpoint:
        upload_tree(work / "data", "s3://data/billsum/", s3_endpoint)
        upload_tree(model_dir, "s3://models/bart-tiny/", s3_endpoint)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=4, help="how many billsum files to stage (1-4)")
    parser.add_argument("--s3-endpoint", help="also upload inputs and model to this S3 endpoint")
    args = parser.parse_args()
    prepare(files=args.files, s3_endpoint=args.s3_endpoint)
    print(f"model: {WORK / 'model'}   inputs: {WORK / 'data'}")


if __name__ == "__main__":
    run(main)
