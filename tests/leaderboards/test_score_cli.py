"""mv2d-bench score: known predictions give the known accuracy; --help documents the npz keys of
every installed protocol (read from the registry)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mv2d_bench.cli import main
from mv2d_bench.registry import registry


def test_known_predictions_json(tmp_path, capsys):
    label = np.repeat(np.arange(6), 10)  # 60 items
    pred = label.copy()
    pred[:4] = (pred[:4] + 1) % 6  # 4 wrong
    f = tmp_path / "preds.npz"
    np.savez(f, pred=pred, label=label)
    assert main(["score", "mvc/accuracy@1", "--predictions", str(f), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["protocol"] == "mvc/accuracy@1"
    assert out["metrics"]["accuracy"] == pytest.approx(100.0 * 56 / 60)
    assert out["per_trial"] == [{"accuracy": out["metrics"]["accuracy"]}]


def test_logits_and_text_output(tmp_path, capsys):
    logits = np.eye(4)[[0, 1, 2, 3, 0]] * 5.0
    f = tmp_path / "logits.npz"
    np.savez(f, pred=logits, label=np.array([0, 1, 2, 3, 1]))
    assert main(["score", "mvc/accuracy@1", "--predictions", str(f)]) == 0
    assert "accuracy     80.0000 %" in capsys.readouterr().out


def test_help_documents_the_npz_keys_of_every_installed_protocol(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["score", "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    entries = registry("protocols").entries()
    assert entries, "no protocol installed"
    for entry in entries:
        assert f"  {entry.name}  (" in text
        cls = entry.try_load()
        if cls is None:
            assert "broken" in text
            continue
        for key in cls.npz_keys:
            assert f"    {key} " in text, (entry.name, key)
    assert "    pred " in text and "    label " in text


def test_bad_predictions_file_names_file_and_keys(tmp_path, capsys):
    f = tmp_path / "wrong.npz"
    np.savez(f, predictions=np.zeros(3), label=np.zeros(3, dtype=int))
    assert main(["score", "mvc/accuracy@1", "--predictions", str(f)]) == 2
    err = capsys.readouterr().err
    assert "wrong.npz: missing key(s) pred" in err and "expected: pred, label" in err
    assert main(["score", "mvc/acuracy@1", "--predictions", str(f)]) == 2
    assert "did you mean 'mvc/accuracy@1'" in capsys.readouterr().err
    assert main(["score", "mvc/accuracy@1", "--predictions", str(tmp_path / "none.npz")]) == 2
    assert "none.npz" in capsys.readouterr().err
