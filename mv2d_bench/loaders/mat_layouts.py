"""Which variables of a multi-view ``.mat`` file hold the views and the labels.

Four layouts are published (variable names are case-sensitive, as in MATLAB):

* **cell**: a cell ``X`` (or ``data``/``fea``) of per-view matrices and labels ``Y``/``y``/``gt``
  (MvNNcor, the Caltech/NUS/Reuters files of Li et al.);
* **per-view variables**: one matrix per view, ``x1, x2, ...`` (``HMDB51_HOG_MBH.mat`` of the
  trusted multi-view classification data), ``X1, X2, ...`` (NoisyMNIST, MNIST-USPS, Caltech_2v
  of the incomplete multi-view repositories) or ``view_<name>``, with labels ``Y``/``y``/``gt``;
* **per-view variables with a predefined split**: ``x1_train, x1_test, ..., xV_train, xV_test``
  with labels ``gt_train``/``gt_test`` (TMC, ICLR 2021: ``handwritten_6views.mat`` holds
  ``x1_train`` ... ``x6_test`` and ``gt_train``/``gt_test``; ETMC and their derivatives read the
  same files), or ``Y_train``/``Y_test`` (``y_train``/``y_test``); ``X1_train`` and
  ``view_<name>_train`` likewise;
* **a cell per split**: ``X_train``/``X_test`` cells with the split labels.

Per-view numbers must run without gaps from 0 or 1 (``x1, x2, x4`` is refused, naming ``x3``);
``view_<name>`` views are ordered by number where every name is one, else by name. A file that
mixes layouts (a cell and per-view variables, split and unsplit views, split views with unsplit
labels) or holds half of one (``x2_train`` without ``x2_test``, ``gt_train`` without ``gt_test``)
is refused with the variables found; ``views_key``/``labels_key`` name the variables explicitly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CELL_KEYS = ("X", "data", "fea")
LABEL_KEYS = ("Y", "y", "gt")
SPLIT_LABEL_KEYS = ("gt", "Y", "y")
PARTS = ("train", "test")
FAMILIES = {"x": r"x(\d+)", "X": r"X(\d+)", "view_": r"view_(.+?)"}
"""Per-view variable families: prefix -> the regular expression of a name, its id captured."""

EXPECTED = (
    "a cell X/data/fea of views with labels Y/y/gt; per-view variables x1, x2, ... (or X1, ..., "
    "or view_*) with labels Y/y/gt; or a predefined split x1_train/x1_test, ... (or a cell "
    "X_train/X_test) with labels gt_train/gt_test (or Y_train/Y_test)"
)


@dataclass(frozen=True)
class MatLayout:
    """Where the views and labels are: per part (``"all"``, or ``"train"`` and ``"test"``)."""

    kind: str
    """``"cell"`` (views are the elements of one cell variable) or ``"per-view"``."""
    parts: tuple[str, ...]
    views: dict[str, str | list[str]]
    """part -> the cell variable (kind cell) or the per-view variables in view order."""
    labels: dict[str, str]
    """part -> the label variable."""
    notes: list[str] = field(default_factory=list)

    @property
    def split(self) -> bool:
        return self.parts == PARTS

    @property
    def used(self) -> set[str]:
        names = set(self.labels.values())
        for value in self.views.values():
            names |= {value} if isinstance(value, str) else set(value)
        return names

    def describe(self) -> str:
        first = self.views[self.parts[0]]
        what = f"cell {first}" if isinstance(first, str) else _span(first)
        if self.split:
            test = self.views["test"]
            what += " / " + (f"cell {test}" if isinstance(test, str) else _span(test))
            labels = f"{self.labels['train']} / {self.labels['test']}"
            return f"{self.kind} views {what}, labels {labels}, predefined train/test split"
        return f"{self.kind} views {what}, labels {self.labels['all']}"


def _span(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{names[0]}..{names[-1]}"


def _per_view(names: list[str]) -> tuple[dict[str, dict[str, str]], dict[str, dict]]:
    """(family -> {id: name}) of unsplit and (family -> {part: {id: name}}) of split variables."""
    unsplit: dict[str, dict[str, str]] = {}
    split: dict[str, dict[str, dict[str, str]]] = {}
    for name in names:
        for family, pattern in FAMILIES.items():
            m = re.fullmatch(pattern + r"_(train|test)", name)
            if m:
                split.setdefault(family, {}).setdefault(m.group(2), {})[m.group(1)] = name
                break
            m = re.fullmatch(pattern, name)
            if m:
                unsplit.setdefault(family, {})[m.group(1)] = name
                break
    return unsplit, split


def _in_view_order(family: str, by_id: dict[str, str], path: Path, suffix: str = "") -> list[str]:
    """The variables of one family in view order; a gap in the numbers is an error naming the
    missing variables."""
    ids = list(by_id)
    if not all(i.isdigit() for i in ids):
        return [by_id[i] for i in sorted(ids)]
    numbers = sorted(int(i) for i in ids)
    first = min(numbers[0], 1)
    want = list(range(first, numbers[-1] + 1))
    if numbers != want:
        missing = [f"{family}{k}{suffix}" for k in want if k not in numbers]
        found = ", ".join(f"{family}{k}{suffix}" for k in numbers)
        raise_partial(
            path,
            f"per-view variables {found}: {', '.join(missing)} missing",
            f"{family}{first}{suffix}, {family}{first + 1}{suffix}, ... without gaps",
        )
    return [by_id[i] for i in sorted(ids, key=int)]


def raise_partial(path: Path, found: str, expected: str) -> None:
    from mv2d_bench.loaders.base import DataError

    raise DataError(f"{path}: incomplete multi-view layout: {found}; expected {expected}")


def raise_mixed(path: Path, layouts: list[str]) -> None:
    from mv2d_bench.loaders.base import DataError

    raise DataError(
        f"{path}: mixed multi-view layouts: {' and '.join(layouts)}; expected one layout "
        "(views_key=NAME reads one cell and ignores the rest)"
    )


def detect_layout(
    variables: dict[str, Any],
    path: str | Path,
    views_key: str | None = None,
    labels_key: str | None = None,
) -> MatLayout:
    """The layout of a file's ``variables`` (see the module doc); DataError when there is none."""
    from mv2d_bench.loaders.base import DataError

    path = Path(path)
    holds = sorted(variables)
    if views_key is not None:  # an explicit cell, as in earlier versions
        if views_key not in variables:
            raise DataError(
                f"{path}: no variable {views_key!r} for the cell of views; the file holds {holds}"
            )
        labels = {"all": _labels(variables, path, labels_key)}
        return MatLayout("cell", ("all",), {"all": views_key}, labels)

    cells = [k for k in CELL_KEYS if k in variables]
    split_cells = {p: [f"{k}_{p}" for k in CELL_KEYS if f"{k}_{p}" in variables] for p in PARTS}
    unsplit, split = _per_view(list(variables))
    sources: list[str] = []  # every layout the names suggest, as the error message says them
    if cells:
        sources.append(f"a cell {cells[0]}")
    for by_id in unsplit.values():
        sources.append(f"per-view variables {', '.join(_sorted_names(by_id.values()))}")
    for by_part in split.values():
        found = [n for p in PARTS for n in _sorted_names(by_part.get(p, {}).values())]
        sources.append(f"predefined-split variables {', '.join(found)}")
    found_cells = [k for p in PARTS for k in split_cells[p]]
    if found_cells:
        sources.append(f"predefined-split cells {', '.join(found_cells)}")
    if len(sources) > 1:
        raise_mixed(path, sources)
    if not sources:
        raise DataError(
            f"{path}: no cell of views found; expected one of the keys {list(CELL_KEYS)} (a cell "
            "of views), per-view variables x1, x2, ... (or X1, ..., or view_*), or a predefined "
            "split (x1_train/x1_test, ... with gt_train/gt_test or Y_train/Y_test); the file "
            f"holds {holds}"
        )
    split_labels = _split_labels(variables, path)
    if not (split or found_cells):
        if split_labels is not None:
            labels = f"split labels {split_labels['train']}, {split_labels['test']}"
            raise_mixed(path, [sources[0], labels])
        labels = {"all": _labels(variables, path, labels_key)}
        if cells:
            return MatLayout("cell", ("all",), {"all": cells[0]}, labels)
        ((family, by_id),) = unsplit.items()
        return MatLayout("per-view", ("all",), {"all": _in_view_order(family, by_id, path)}, labels)

    # a predefined split
    if labels_key is not None:
        raise DataError(
            f"{path}: labels_key={labels_key!r} names one label vector, but the file holds a "
            "predefined split (train and test labels); leave labels_key unset"
        )
    if split_labels is None:
        unsplit_labels = [k for k in LABEL_KEYS if k in variables]
        if unsplit_labels:
            raise_mixed(path, [sources[0], f"unsplit labels {unsplit_labels[0]}"])
        raise DataError(
            f"{path}: {sources[0]} but no split labels; expected gt_train/gt_test (or "
            f"Y_train/Y_test, y_train/y_test); the file holds {holds}"
        )
    if found_cells:
        for p in PARTS:
            if not split_cells[p]:
                (other,) = found_cells
                raise_partial(path, f"a cell {other} without {_sibling(other)}", "both")
        return MatLayout("cell", PARTS, {p: split_cells[p][0] for p in PARTS}, split_labels)
    ((family, by_part),) = split.items()
    train, test = by_part.get("train", {}), by_part.get("test", {})
    lone = [f"{n} without {_sibling(n)}" for i, n in train.items() if i not in test]
    lone += [f"{n} without {_sibling(n)}" for i, n in test.items() if i not in train]
    if lone:
        raise_partial(path, "; ".join(lone), "every view as both <view>_train and <view>_test")
    views = {
        "train": _in_view_order(family, train, path, "_train"),
        "test": _in_view_order(family, test, path, "_test"),
    }
    return MatLayout("per-view", PARTS, views, split_labels)


def _sorted_names(names) -> list[str]:
    def key(name: str):
        digits = re.findall(r"\d+", name)
        return (int(digits[0]) if digits else -1, name)

    return sorted(names, key=key)


def _sibling(name: str) -> str:
    stem, _, part = name.rpartition("_")
    return f"{stem}_{'test' if part == 'train' else 'train'}"


def _labels(variables: dict[str, Any], path: Path, labels_key: str | None) -> str:
    from mv2d_bench.loaders.base import DataError

    if labels_key is not None:
        if labels_key not in variables:
            raise DataError(
                f"{path}: no variable {labels_key!r} for the labels; the file holds "
                f"{sorted(variables)}"
            )
        return labels_key
    for key in LABEL_KEYS:
        if key in variables:
            return key
    raise DataError(
        f"{path}: no labels found; expected one of the keys {list(LABEL_KEYS)}, the file holds "
        f"{sorted(variables)}"
    )


def _split_labels(variables: dict[str, Any], path: Path) -> dict[str, str] | None:
    for base in SPLIT_LABEL_KEYS:
        have = [p for p in PARTS if f"{base}_{p}" in variables]
        if len(have) == 2:
            return {p: f"{base}_{p}" for p in PARTS}
        if have:
            (p,) = have
            name = f"{base}_{p}"
            raise_partial(path, f"labels {name} without {_sibling(name)}", "both")
    return None
