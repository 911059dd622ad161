"""deploy/helm_release.py (`make deploy` without a helm binary): values as Helm merges them, the
chart rendered through helm-python-sdk, and one line when no cluster answers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness.scripts import load_script

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "kbt"


helm_release = load_script(REPO / "deploy" / "helm_release.py")


def test_values_files_merge_and_set_wins(tmp_path: Path) -> None:
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text(
        "images: {operator: {repository: a, tag: '1'}, runner: {tag: '1'}}\nrbac: {scope: cluster}\n"
    )
    second.write_text("images: {operator: {tag: '2'}}\n")
    values = helm_release.release_values([first, second], ["images.runner.tag=v3", "rbac.scope=namespaced"])
    assert values == {
        "images": {"operator": {"repository": "a", "tag": "2"}, "runner": {"tag": "v3"}},
        "rbac": {"scope": "namespaced"},
    }


def test_dry_run_renders_the_kind_values(capsys: pytest.CaptureFixture[str]) -> None:
    code = helm_release.main(
        [
            "install",
            "kbt",
            str(CHART),
            "--namespace",
            "kbt-system",
            "--values",
            str(CHART / "ci" / "kind-values.yaml"),
            "--set",
            "images.operator.tag=probe",
            "--dry-run",
        ]
    )
    assert code == 0
    documents = [doc for doc in yaml.safe_load_all(capsys.readouterr().out) if doc]
    (deployment,) = [doc for doc in documents if doc["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "kbt/operator:probe"
    assert deployment["metadata"]["namespace"] == "kbt-system"


def test_no_cluster_is_one_line(tmp_path: Path) -> None:
    # A child process: Helm's Go runtime reads KUBECONFIG once, when the library loads.
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "deploy" / "helm_release.py"),
            "install",
            "kbt",
            str(CHART),
            "--namespace",
            "kbt-system",
        ],
        env={**os.environ, "KUBECONFIG": str(tmp_path / "missing")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("install: kubernetes cluster unreachable") and str(tmp_path / "missing") in line
