"""``mvmat``: any multi-view ``.mat`` file a user points at (``--root FILE``).

The common ways multi-view data is shared, MATLAB v5 or v7.3: a cell ``X`` (or ``data``/``fea``)
of per-view matrices and labels ``Y``/``y``/``gt``; per-view variables ``x1, x2, ...`` (``X1``...,
``view_*``); or a predefined split ``x1_train``/``x1_test``... with ``gt_train``/``gt_test``
(``Y_train``/``Y_test``), the layout of the trusted multi-view classification repositories (TMC,
ETMC). A predefined split is the run's split: the test part as given, validation carved from the
given training part per class (``split_id`` ``predefined-mat/train-test/val-from-train-70-20/
seed-N``). Nothing is assumed about views, dimensions or classes; views are named view1..viewV
(``views=view1,view3`` selects a subset).
"""

from __future__ import annotations

from pathlib import Path

from mv2d_bench.loaders.base import DataCard, DataError
from mv2d_bench.loaders.matfile import MatBenchmark
from mv2d_bench.loaders.mvc import MvcData


class MvMat(MatBenchmark):
    name = "mvmat"
    card = DataCard(
        citation="(the file's own)",
        license="(the file's own)",
        url="any multi-view .mat file; pass it with --root FILE",
        layout="one .mat (v5 or v7.3) with a cell X/data/fea of views (1xV or Vx1) and labels "
        "Y/y/gt, per-view variables x1, x2, ... (X1..., view_*) with Y/y/gt, or a predefined "
        "split x1_train/x1_test, ... (or cells X_train/X_test) with gt_train/gt_test or "
        "Y_train/Y_test",
    )

    def mat_path(self) -> Path:
        root = Path(self.root)
        if not root.is_file():
            raise DataError(f"{root}: mvmat needs --root to be a .mat file, not a folder")
        return root

    def selected_views(self) -> list[str] | None:
        from mv2d_bench.loaders.mvc import parse_view_list

        return parse_view_list(self.options.get("views"))

    def read(self) -> MvcData:
        data = super().read()
        data.info["named"] = True  # view1..viewV, nothing to check against
        return data
