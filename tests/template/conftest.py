"""The SAM template as CloudFormation deploys it, translated once for every template test."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def translated() -> dict[str, Any]:
    # aws-sam-translator lives with checkov in .venv-checkov (its pins fight the project's).
    result = subprocess.run(
        [str(ROOT / "tools" / "checkov.sh"), "translate", "--template", str(ROOT / "template.yaml")],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    translated: dict[str, Any] = json.loads(result.stdout)
    return translated
