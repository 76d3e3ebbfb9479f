"""Caltech101 and Caltech101-20 as multi-view features (MvNNcor / Li et al. AAAI 2015 release).

Six views per image, in file order: Gabor 48, wavelet moments 40, CENTRIST 254, HOG 1984,
GIST 512, LBP 928. Caltech101: 9144 images of 102 classes (101 objects + background);
Caltech101-20: the 2386 images of 20 of those classes. Published as one ``.mat`` (``X`` a 1x6
cell of samples x features matrices, ``Y`` 1-based labels, plus ``lenSmp``/``feanames`` that
are not needed here).
"""

from __future__ import annotations

from mv2d_bench.loaders.base import DataCard
from mv2d_bench.loaders.matfile import MatBenchmark

VIEWS = ("gabor", "wavelet_moments", "centrist", "hog", "gist", "lbp")
DIMS = (48, 40, 254, 1984, 512, 928)
CITATION = (
    "L. Fei-Fei, R. Fergus, P. Perona, Learning generative visual models from few training "
    "examples, CVPR Workshops 2004; features: Y. Li, F. Nie, H. Huang, J. Huang, Large-scale "
    "multi-view spectral clustering via bipartite graph, AAAI 2015 (used by MvNNcor, Xu et al., "
    "AAAI 2020)"
)
NOTES = (
    "Facts (samples, classes, dims, view order) from MvNNcor's dataset/CaltechDataset.py "
    "(github.com/xujinglin/MvNNcor, which reads X[0] and Y) and the multi-view dataset listings "
    "that give Caltech101: 9144 x [48, 40, 254, 1984, 512, 928], 102 classes, and "
    "Caltech101-20: 2386, 20 classes (e.g. XLearning-SCU/2021-CVPR-Completer datasets.py: "
    "'48, 40, 254, 1984, 512, 928 / Gabor, wavelet, centrist, hog, gist, lbp'). No published "
    "checksum is known."
)


class Caltech101(MatBenchmark):
    name = "caltech101"
    views = VIEWS
    view_dims = DIMS
    n_samples = 9144
    num_classes = 102
    file_names = ("Caltech101-all.mat", "Caltech101.mat", "Caltech101-all_fea.mat")
    card = DataCard(
        citation=CITATION,
        license="Caltech 101 images: CC BY 4.0 (data.caltech.edu); features: as distributed "
        "by their authors for research",
        url="https://github.com/xujinglin/MvNNcor (mvdata/ReadMe.md links the feature files)",
        layout="Caltech101-all.mat with X (1x6 cell: 9144x48, x40, x254, x1984, x512, x928) "
        "and Y (9144x1, 102 classes)",
        notes=NOTES,
        split_seeds=(200, 201, 202, 203, 204),  # MvNNcor's CaltechDataset.py: random.seed(200)
    )


class Caltech20(MatBenchmark):
    name = "caltech20"
    views = VIEWS
    view_dims = DIMS
    n_samples = 2386
    num_classes = 20
    file_names = ("Caltech101-20.mat", "Caltech101_20.mat", "Caltech20.mat")
    card = DataCard(
        citation=CITATION,
        license="Caltech 101 images: CC BY 4.0 (data.caltech.edu); features: as distributed "
        "by their authors for research",
        url="https://github.com/XLearning-SCU/2021-CVPR-Completer (data/Caltech101-20.mat)",
        layout="Caltech101-20.mat with X (1x6 cell: 2386x48, x40, x254, x1984, x512, x928) "
        "and Y (2386x1, 20 classes)",
        notes=NOTES,
        split_seeds=(200, 201, 202, 203, 204),  # MvNNcor's CaltechDataset.py: random.seed(200)
    )
