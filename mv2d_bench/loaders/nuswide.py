"""NUS-WIDE-OBJ (the object subset of NUS-WIDE) as five low-level feature views.

Views in file order: colour histogram (CH) 64, block-wise colour moments (CM) 225, colour
correlogram (CORR) 144, edge direction histogram (EDH) 73, wavelet texture (WT) 128.
30,000 images of 31 object classes; published as ``NUSWIDEOBJ.mat`` (``X`` 1x5 cell, ``Y``).
"""

from __future__ import annotations

from mv2d_bench.loaders.base import DataCard
from mv2d_bench.loaders.matfile import MatBenchmark


class NusWideObj(MatBenchmark):
    name = "nuswideobj"
    views = ("ch", "cm", "corr", "edh", "wt")
    view_dims = (64, 225, 144, 73, 128)
    n_samples = 30000
    num_classes = 31
    file_names = ("NUSWIDEOBJ.mat", "NUS-WIDE-OBJ.mat", "NUSWIDE.mat")
    card = DataCard(
        citation="T.-S. Chua, J. Tang, R. Hong, H. Li, Z. Luo, Y. Zheng, NUS-WIDE: a real-world "
        "web image database from National University of Singapore, CIVR 2009; multi-view file: "
        "Y. Li et al., AAAI 2015 (as read by MvNNcor's dataset/NUSWIDEDataset.py)",
        license="NUS-WIDE: for research use (see the NUS-WIDE page)",
        url="https://lms.comp.nus.edu.sg/wp-content/uploads/2019/research/nuswide/NUS-WIDE.html",
        layout="NUSWIDEOBJ.mat with X (1x5 cell: 30000x64, x225, x144, x73, x128) and Y "
        "(30000x1, 31 classes)",
        notes="Samples/classes/dims from multi-view dataset listings ('Samples: 30000; Views: 5; "
        "Features: [64, 225, 144, 73, 128]; Clusters: 31') and the view order ch, cm, corr, edh, "
        "wt of loaders reading X[0,0..4]. No published checksum is known.",
        split_seeds=(500, 501, 502, 503, 504),  # MvNNcor's NUSWIDEDataset.py: random.seed(500)
    )
