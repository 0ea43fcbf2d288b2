"""`posting local demo` as `make demo` runs it, shorter: its chains, balancing legs and value-dated
postings go through the whole pipeline, and every check of its summary passes.

What each check catches is proven on the fake ledger (tests/unit/test_demo.py); here the result
events, the collector and the ledger are the real ones.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.local_stack


def test_the_demo_posts_chains_balancing_legs_and_value_dated_postings_and_checks_them(tmp_path, dynamodb_local):
    env = {
        **os.environ,
        "DYNAMODB_ENDPOINT": dynamodb_local.endpoint_url,
        "AWS_EC2_METADATA_DISABLED": "true",
        "COLUMNS": "400",  # one summary line per line of output
    }
    command = [sys.executable, "-m", "posting_cli.cli", "local", "demo", "--postings", "300", "--seed", "7"]
    command += ["--stack-name", "posting-demo-e2e", "--fresh-books"]
    completed = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output
    assert "verdict: OK" in output, output

    chains = re.search(r"chains \(posted/sent\): (.*); refused whole, naming the member: (.*)", output)
    assert chains is not None, output
    sent = {shape: int(total) for shape, total in re.findall(r"(\w+) \d+/(\d+)", chains.group(1))}
    assert sent.get("settlement", 0) > 0 and sent.get("refund", 0) >= 2, chains.group(0)

    balancing = re.search(
        r"balancing legs \(sweeps, collections\): 24 sent; (\d+) moved .*; (\d+) found nothing", output
    )
    assert balancing is not None, output
    assert int(balancing.group(1)) + int(balancing.group(2)) == 24

    dated = re.search(r"value-dated \(interest, late card payments\): (\d+) posted in (\d+) lines, dated (\S+)", output)
    assert dated is not None and int(dated.group(1)) > 0 and int(dated.group(2)) == 2 * int(dated.group(1)), output
    assert "checked by kind: chains all or nothing" in output
