"""``mvmat``: any multi-view ``.mat`` file a user points at (``--root FILE``).

The common way multi-view data is shared: a cell ``X`` (or ``data``/``fea``) of per-view
matrices and labels ``Y``/``y``/``gt``, MATLAB v5 or v7.3. Nothing is assumed about views,
dimensions or classes; views are named view1..viewV (``views=view1,view3`` selects a subset).
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
        "Y/y/gt",
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
