"""docs/crd-reference.md is generated from the API models and must not drift from them."""

from __future__ import annotations

from pathlib import Path

from kbt.api.docs import main, render_reference
from kbt.api.models import BatchTransformJobSpec, ModelSpec

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO / "docs" / "crd-reference.md"


def test_committed_reference_matches_the_models() -> None:
    assert REFERENCE.read_text() == render_reference(), "docs/crd-reference.md drifted: run `make docs`"


def test_reference_documents_every_spec_field() -> None:
    text = render_reference()
    for model in (BatchTransformJobSpec, ModelSpec):
        for name in model.model_fields:
            assert f"| `{name}` |" in text, f"{model.__name__}.{name} missing from the reference"
    assert (
        "| `retrySettings` | [RetrySettings](#retrysettings) |  "
        '| `{"maxRetries": 3, "timeoutSeconds": 300}` |' in text
    )
    assert "give exactly one of modelName or model" in text


def test_check_mode_reports_drift(tmp_path: Path) -> None:
    stale = tmp_path / "ref.md"
    stale.write_text("old\n")
    assert main([str(stale), "--check"]) == 1
    assert main([str(stale)]) == 0 and main([str(stale), "--check"]) == 0
    assert main([]) == 2
