"""Transformers flavor on tiny randomly initialised BERT/BART models with a locally trained tokenizer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from kbt.api.models import ModelSpec
from kbt.flavors import InputSchemaError, ModelLoadError, RecordsRejected, load_predictor
from kbt.flavors.base import LoadContext, ModelInput, Predictor, Record

SENTENCES = [
    "the senate passed the bill on tuesday",
    "a short one",
    "the house of representatives voted against the amendment to the appropriations act",
    "funding for schools and roads",
    "this act may be cited as the clean water act",
    "taxes",
]
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    core.train_from_iterator(SENTENCES, trainers.WordLevelTrainer(special_tokens=SPECIALS))
    core.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        bos_token="[CLS]",
        eos_token="[SEP]",
        model_max_length=64,
    )


def save(model: Any, tokenizer: Any, folder: Path) -> Path:
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def bert_config(tokenizer: Any, **extra: Any) -> Any:
    from transformers import BertConfig

    return BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
        pad_token_id=0,
        **extra,
    )


def load(folder: Path, task: str, **generation: Any) -> Predictor:
    spec = ModelSpec(uri=str(folder), flavor="transformers", task=task, generation=generation)
    return load_predictor(LoadContext(spec, folder, folder.parent))


def text_batch(texts: list[str]) -> ModelInput:
    return ModelInput(records=[Record("bills.txt", i, t.encode()) for i, t in enumerate(texts)], texts=texts)


def test_text_classification_restores_input_order(tmp_path: Path, tokenizer: Any) -> None:
    from transformers import BertForSequenceClassification, pipeline

    torch.manual_seed(0)
    config = bert_config(tokenizer, num_labels=3, id2label={0: "low", 1: "mid", 2: "high"})
    folder = save(BertForSequenceClassification(config), tokenizer, tmp_path / "clf")
    predictor = load(folder, "text-classification", batch_size=2)
    output = predictor.predict(text_batch(SENTENCES))
    assert isinstance(output, pd.DataFrame) and list(output.columns) == ["label", "score"]
    reference = pipeline("text-classification", model=str(folder), device="cpu")
    for row, text in zip(output.itertuples(), SENTENCES, strict=True):
        alone = reference(text)[0]
        assert row.label == alone["label"]
        assert row.score == pytest.approx(alone["score"], abs=1e-5)
    assert predictor.device == "cpu"


def test_token_classification_gives_entities_per_record(tmp_path: Path, tokenizer: Any) -> None:
    from transformers import BertForTokenClassification

    torch.manual_seed(1)
    config = bert_config(tokenizer, num_labels=3, id2label={0: "O", 1: "B-ORG", 2: "I-ORG"})
    folder = save(BertForTokenClassification(config), tokenizer, tmp_path / "ner")
    frame = pd.DataFrame({"id": [1, 2, 3], "text": SENTENCES[:3]})
    output = load(folder, "token-classification").predict(
        ModelInput(records=[Record("a.csv", i, b"") for i in range(3)], frame=frame)
    )
    assert isinstance(output, pd.DataFrame) and list(output.columns) == ["entities"]
    for entities, text in zip(output["entities"], SENTENCES[:3], strict=True):
        assert all(entity["word"] in text.split() for entity in entities)
        assert all(isinstance(entity["score"], float) for entity in entities)  # JSON-ready
    assert len(output["entities"][2]) >= len(output["entities"][1])  # more words, at least as many tags


def test_feature_extraction_pools_without_padding_effects(tmp_path: Path, tokenizer: Any) -> None:
    from transformers import BertModel

    torch.manual_seed(2)
    model = BertModel(bert_config(tokenizer)).eval()
    folder = save(model, tokenizer, tmp_path / "emb")
    embeddings = np.asarray(load(folder, "feature-extraction", batch_size=3).predict(text_batch(SENTENCES)))
    assert embeddings.shape == (len(SENTENCES), 16)
    for row, text in zip(embeddings, SENTENCES, strict=True):
        with torch.no_grad():
            alone = model(**tokenizer(text, return_tensors="pt")).last_hidden_state[0].mean(dim=0)
        np.testing.assert_allclose(row, alone.numpy(), atol=1e-5)
    cls = np.asarray(load(folder, "feature-extraction", pooling="cls").predict(text_batch(SENTENCES[:1])))
    with torch.no_grad():
        first = model(**tokenizer(SENTENCES[0], return_tensors="pt")).last_hidden_state[0, 0]
    np.testing.assert_allclose(cls[0], first.numpy(), atol=1e-5)
    with pytest.raises(ModelLoadError, match="pooling must be one of"):
        load(folder, "feature-extraction", pooling="max")


def test_summarization_generates_like_the_model_alone(tmp_path: Path, tokenizer: Any) -> None:
    from transformers import BartConfig, BartForConditionalGeneration

    torch.manual_seed(3)
    config = BartConfig(
        vocab_size=len(tokenizer),
        d_model=16,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_position_embeddings=64,
        pad_token_id=0,
        bos_token_id=2,
        eos_token_id=3,
        decoder_start_token_id=3,
        forced_eos_token_id=None,
    )
    model = BartForConditionalGeneration(config).eval()
    folder = save(model, tokenizer, tmp_path / "bart")
    output = load(folder, "summarization", max_new_tokens=4, num_beams=1, batch_size=4).predict(
        text_batch(SENTENCES)
    )
    assert isinstance(output, pd.DataFrame) and list(output.columns) == ["summary_text"]
    for summary, text in zip(output["summary_text"], SENTENCES, strict=True):
        with torch.no_grad():
            ids = model.generate(**tokenizer(text, return_tensors="pt"), max_new_tokens=4, num_beams=1)
        assert summary == tokenizer.decode(ids[0], skip_special_tokens=True)


def test_text_input_errors(tmp_path: Path, tokenizer: Any) -> None:
    from transformers import BertModel

    folder = save(BertModel(bert_config(tokenizer)), tokenizer, tmp_path / "m")
    predictor = load(folder, "feature-extraction")
    two_columns = pd.DataFrame({"title": ["a"], "body": ["b"]})
    with pytest.raises(InputSchemaError, match=r"needs a 'text' or 'inputs' column.*title, body"):
        predictor.predict(ModelInput(records=[Record("a.csv", 0, b"")], frame=two_columns))
    with_gap = pd.DataFrame({"text": ["fine", None, "also fine"]})
    with pytest.raises(RecordsRejected) as rejected:
        predictor.predict(ModelInput(records=[Record("a.csv", i, b"") for i in range(3)], frame=with_gap))
    assert list(rejected.value.problems) == [1]
    assert "a.csv record 1: no text" in str(rejected.value)
    with pytest.raises(ModelLoadError, match=r"no config\.json"):
        load(tmp_path, "text-classification")
