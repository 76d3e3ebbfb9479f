"""Scene-15 and LandUse-21 as distributed with COMPLETER (Lin et al., CVPR 2021).

Three views per image, in file order, 20, 59 and 40 dimensions. The repository does not name
them; the dimensions are those of GIST (reduced, 20), uniform LBP (59 bins) and PHOG (8 bins x
5 cells = 40), and the views are named so here. Labels ``Y`` are 1-based.
"""

from __future__ import annotations

from mv2d_bench.loaders.base import DataCard
from mv2d_bench.loaders.matfile import MatBenchmark

VIEWS = ("gist", "lbp", "phog")
DIMS = (20, 59, 40)
URL = "https://github.com/XLearning-SCU/2021-CVPR-Completer (data/, @ ad371100)"
COMPLETER = (
    "Y. Lin, Y. Gou, Z. Liu, B. Li, J. Lv, X. Peng, COMPLETER: Incomplete multi-view clustering "
    "via contrastive prediction, CVPR 2021"
)


class Scene15(MatBenchmark):
    name = "scene15"
    views = VIEWS
    view_dims = DIMS
    n_samples = 4485
    num_classes = 15
    file_names = ("Scene-15.mat", "Scene15.mat", "Scene_15.mat")
    card = DataCard(
        citation="S. Lazebnik, C. Schmid, J. Ponce, Beyond bags of features, CVPR 2006 "
        "(15 scene categories); features: " + COMPLETER,
        license="as distributed with COMPLETER (MIT-licensed repository)",
        url=URL,
        layout="Scene-15.mat with X (1x3 cell: 4485x20, 4485x59, 4485x40) and Y (4485x1, 1..15)",
        checksums={
            "Scene-15.mat": "ec33b5e1f53eea04ccacc8b7bdfc6091ed490b04214eb41fd83c05a0a173221f"
        },
        notes="Classes hold 210 to 410 images. Checksum: ../shared/data/SHA256SUMS.",
    )


class LandUse21(MatBenchmark):
    name = "landuse21"
    views = VIEWS
    view_dims = DIMS
    n_samples = 2100
    num_classes = 21
    samples_per_class = 100
    file_names = ("LandUse-21.mat", "LandUse21.mat", "LandUse_21.mat")
    card = DataCard(
        citation="Y. Yang, S. Newsam, Bag-of-visual-words and spatial extensions for land-use "
        "classification, ACM GIS 2010 (UC Merced, 21 classes x 100); features: " + COMPLETER,
        license="as distributed with COMPLETER (MIT-licensed repository)",
        url=URL,
        layout="LandUse-21.mat with X (1x3 cell: 2100x20, 2100x59, 2100x40) and Y (2100x1, 1..21)",
        checksums={
            "LandUse-21.mat": "6441fc42e84a83729e5a6436f4c1544dcc3fe115558458495b165677a732b67f"
        },
        notes="Checksum: ../shared/data/SHA256SUMS.",
    )
