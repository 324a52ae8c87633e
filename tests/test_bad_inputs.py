"""The bad-input corpus (tests/bad_inputs/<case>/): each case is the files a user might get wrong and a
case.json with the command's arguments and the expected message. The real command must exit with 2 and print
exactly one ``error:`` line naming the file and line (or the YAML field), no traceback, and write nothing."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parent / "bad_inputs"
CASES = sorted(p.name for p in CORPUS.iterdir() if (p / "case.json").is_file())
SRC = Path(__file__).resolve().parents[1] / "src" / "xstilts"


def test_corpus_size():
    assert len(CASES) >= 30


@pytest.mark.parametrize("name", CASES)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, name):
    case = json.loads((CORPUS / name / "case.json").read_text(encoding="utf-8"))
    work = tmp_path / "case"
    shutil.copytree(CORPUS / name, work)
    out = tmp_path / "out"
    args = list(case["args"])
    args += ["--output", str(out / "report.json")] if args[0] == "score" else ["--out", str(out)]
    proc = subprocess.run(
        [sys.executable, "-m", "xstilts", *args], cwd=work, check=False, capture_output=True, text=True, timeout=120
    )
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert case["expect"] in lines[0], lines[0]
    assert not out.exists() or not any(out.iterdir())
    assert not (work / "pwned").exists()  # the !!python tag case: no code ran


def test_models_never_load_remote_code():
    """No model or tokenizer is loaded with trust_remote_code: configs name weights, never code."""
    hits = [p for p in SRC.rglob("*.py") if re.search(r"trust_remote_code", p.read_text(encoding="utf-8"))]
    assert hits == []
