"""mvc/accuracy@1: accuracy of known predictions, npz scoring, registry wiring, record fields."""

from __future__ import annotations

import numpy as np
import pytest

from mv2d_bench.leaderboards.protocols import get
from mv2d_bench.leaderboards.protocols.base import Score
from mv2d_bench.leaderboards.protocols.mvc_accuracy import MvcAccuracy


def test_registered_with_its_contract():
    p = get("mvc/accuracy@1")
    assert isinstance(p, MvcAccuracy)
    assert (p.version, p.family_id) == (1, "mvc/accuracy")
    d = p.describe()
    assert d["required_seeds"] == 5 and d["trials"] == 1 and d["trial_scope"] == "run"
    assert d["primary"] == "accuracy" and d["direction"] == "max"
    assert set(p.npz_keys) == {"pred", "label"}


def test_known_predictions_give_known_accuracy():
    label = np.repeat(np.arange(10), 20)  # 200 test items
    pred = label.copy()
    pred[[3, 50, 199]] = (pred[[3, 50, 199]] + 1) % 10  # 3 wrong
    score = get("mvc/accuracy@1").score(pred=pred, label=label)
    assert score.metrics == {"accuracy": 100.0 * 197 / 200}  # 98.5
    assert score.per_trial == [{"accuracy": 98.5}]


def test_logits_are_argmaxed():
    logits = np.array([[0.1, 2.0, -1.0], [3.0, 0.0, 0.0], [0.0, 0.0, 5.0], [1.0, 0.0, 0.0]])
    label = np.array([1, 0, 2, 2])  # last one wrong
    assert get("mvc/accuracy@1").score(pred=logits, label=label).metrics["accuracy"] == 75.0


def test_whole_number_float_labels_are_accepted_fractions_are_not():
    p = get("mvc/accuracy@1")
    assert p.score(pred=[0, 1], label=np.array([0.0, 0.0])).metrics["accuracy"] == 50.0
    with pytest.raises(ValueError, match="label: expected integer class indices"):
        p.score(pred=[0, 1], label=np.array([0.5, 1.0]))


@pytest.mark.parametrize(
    ("pred", "label", "match"),
    [
        ([0, 1, 2], [0, 1], "pred has 3 items but label has 2"),
        ([[np.nan, 1.0]], [0], "NaN or inf"),
        ([], [], "no test items"),
        ([[[0]]], [0], "pred: expected a 1-D array"),
    ],
)
def test_bad_inputs_name_the_key(pred, label, match):
    with pytest.raises(ValueError, match=match):
        get("mvc/accuracy@1").score(pred=np.asarray(pred), label=np.asarray(label))


def test_score_npz_reads_the_documented_keys(tmp_path):
    label = np.arange(8) % 4
    pred = label.copy()
    pred[0] = 3
    f = tmp_path / "preds.npz"
    np.savez(f, pred=pred, label=label)
    assert get("mvc/accuracy@1").score_npz(str(f)).metrics["accuracy"] == 87.5
    bad = tmp_path / "bad.npz"
    np.savez(bad, predictions=pred, label=label)
    with pytest.raises(ValueError, match=r"bad\.npz: missing key\(s\) pred"):
        get("mvc/accuracy@1").score_npz(str(bad))


def test_best_epoch_is_the_earliest_maximum():
    assert MvcAccuracy.best_epoch([90.0, 97.5, 96.0, 97.5]) == 1
    with pytest.raises(ValueError, match="non-empty"):
        MvcAccuracy.best_epoch([])


def test_score_record_fields_for_both_trial_kinds():
    s = Score({"a": 2.0}, [{"a": 1.0}, {"a": 3.0}])
    assert s.record_fields() == {
        "metrics": {"a": 2.0},
        "per_trial": [{"trial": 1, "metrics": {"a": 1.0}}, {"trial": 2, "metrics": {"a": 3.0}}],
    }
    one = Score({"a": 5.0}, [{"a": 5.0}])
    assert one.record_fields(trial=7)["per_trial"] == [{"trial": 7, "metrics": {"a": 5.0}}]
    with pytest.raises(ValueError, match="exactly one per-trial score"):
        s.record_fields(trial=3)


def test_metric_problems_report_range_and_missing():
    p = get("mvc/accuracy@1")
    assert p.metric_problems({"accuracy": 99.0}) == []
    (name, msg), *_ = p.metric_problems({"accuracy": 100.5})
    assert name == "accuracy" and "[0, 100]" in msg
    assert p.metric_problems({"accuracy": True})[0][0] == "accuracy"
    assert "missing" in p.metric_problems({})[0][1]
