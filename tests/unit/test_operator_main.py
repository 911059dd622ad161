"""`python -m kbt_operator` answers --help and, without a cluster, stops with one clear line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def _operator(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kbt_operator", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _no_cluster_env(home: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("KUBERNETES_", "KBT_"))}
    env.pop("KUBECONFIG", None)
    return {**env, "HOME": str(home)}


def test_help_describes_the_operator_and_its_settings(tmp_path: Path) -> None:
    result = _operator("--help", env=_no_cluster_env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: python -m kbt_operator")
    for variable in ("KBT_NAMESPACES", "KBT_RUNNER_IMAGE", "KBT_HEALTH_PORT"):
        assert variable in result.stdout


def test_without_credentials_it_stops_with_one_line(tmp_path: Path) -> None:
    result = _operator(env=_no_cluster_env(tmp_path))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "kbt operator: no in-cluster service account and no usable kubeconfig: "
        "Invalid kube-config file. No configuration found."
    ]


def test_a_missing_kubeconfig_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "config"
    result = _operator(env={**_no_cluster_env(tmp_path), "KUBECONFIG": str(missing)})
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("kbt operator: no in-cluster service account and no usable kubeconfig")
