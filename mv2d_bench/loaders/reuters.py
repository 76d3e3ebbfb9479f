"""Reuters multilingual documents: the paper's full set and the reduced Reuters-1200.

``reuters``: 18,758 documents of 6 classes, each in five languages (the RCV1/RCV2 multilingual
collection of Amini et al.); bag-of-words views English 21531, French 24892, German 34251,
Italian 15506, Spanish 11547, usually stored sparse (they stay sparse until batching).
``reuters1200``: the 1200-document (6 x 200) reduction common in multi-view papers, five dense
2000-dimensional views; its file does not name the languages, so they are lang1..lang5.
"""

from __future__ import annotations

from mv2d_bench.loaders.base import DataCard
from mv2d_bench.loaders.matfile import MatBenchmark

CITATION = (
    "M.-R. Amini, N. Usunier, C. Goutte, Learning from multiple partially observed views - an "
    "application to multilingual text categorization, NIPS 2009"
)


class Reuters(MatBenchmark):
    name = "reuters"
    views = ("english", "french", "german", "italian", "spanish")
    view_dims = (21531, 24892, 34251, 15506, 11547)
    n_samples = 18758
    num_classes = 6
    file_names = ("Reuters.mat", "reuters.mat")
    card = DataCard(
        citation=CITATION,
        license="CC BY 4.0 (UCI Machine Learning Repository)",
        url="https://archive.ics.uci.edu/dataset/259/reuters+rcv1+rcv2+multilingual+multiview"
        "+text+categorization+test+collection (as a .mat: the Li et al. AAAI 2015 release that "
        "MvNNcor's dataset/ReutersDataset.py reads)",
        layout="Reuters.mat with X (1x5 cell of sparse 18758x21531, x24892, x34251, x15506, "
        "x11547) and Y (18758x1, 6 classes)",
        notes="18,758 documents, 6 classes, dims 21531/24892/34251/15506/11547 as listed by "
        "multi-view loaders (e.g. 'reuters: dims = [21531, 24892, 34251, 15506, 11547], "
        "data_size = 18758, class_num = 6'); language order English, French, German, Italian, "
        "Spanish by vocabulary size as in Amini et al. No published checksum is known.",
        split_seeds=(600, 601, 602, 603, 604),  # MvNNcor's ReutersDataset.py: random.seed(600)
    )


class Reuters1200(MatBenchmark):
    name = "reuters1200"
    views = ("lang1", "lang2", "lang3", "lang4", "lang5")
    view_dims = (2000, 2000, 2000, 2000, 2000)
    n_samples = 1200
    num_classes = 6
    samples_per_class = 200
    file_names = ("Reuters-1200.mat", "Reuters1200.mat")
    card = DataCard(
        citation=CITATION + " (1200-document reduction)",
        license="CC BY 4.0 (derived from the UCI collection)",
        url="https://github.com/ChuanbinZhang/Multi-view-datasets (Reuters-1200.mat @ 03ead31e)",
        layout="Reuters-1200.mat with X (5x1 cell of dense 1200x2000) and y (1200x1, 1..6)",
        checksums={
            "Reuters-1200.mat": "cf549b72a66d7418a639a940899993c052bab9ec868fd493451cf85cd0d81d14"
        },
        notes="NOT the 18,758-document set of the paper's Table 6 (that is 'reuters'). "
        "Checksum: ../shared/data/SHA256SUMS.",
    )
