"""AWA: Animals with Attributes (Lampert et al.), 30,475 images of 50 classes, six feature views.

Views (the original release's feature types, in this order): cq 2688 (colour histograms),
lss 2000 (local self-similarity), phog 252 (pyramid HOG), rgsift 2000, sift 2000, surf 2000
(bag-of-words histograms).

Two published layouts (``--root`` a file or a folder):

* one multi-view ``.mat`` (``X`` 1x6 cell, ``Y``), read like every other ``.mat``;
* the original feature release, ``AwA-features-<type>.tar.bz2`` unpacked, as MvNNcor reads it:
  ``Animals_with_Attributes/Features/<type>-hist/<class>/<image>.txt``, one text file per image
  and feature type holding that image's histogram (whitespace-separated numbers). ``--root`` may
  be ``Animals_with_Attributes``, its ``Features`` folder, or the folder above. Class order is
  ``classes.txt`` (from ``AwA-base``, lines ``<index> <name>``) when it is found beside
  ``Features``, else the sorted class folder names; inside a class the images are in sorted file
  name order, and every feature type must hold the same image files.

Reading 30,475 x 6 text files takes minutes, so ``prepare()`` (``mv2d-bench data prepare awa``)
writes an ``.npz`` cache (atomically: a temporary file renamed into place, nothing partial is
ever left) under the option ``cache_dir``, ``$MV2D_CACHE`` or ``~/.cache/mv2d-bench``; ``load()``
uses it when the folder listing (paths, sizes, modification times) is unchanged. Dense views are
float32 by default here (the six views take 1.3 GB as float32).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from mv2d_bench.loaders.base import DataCard, DataError
from mv2d_bench.loaders.matfile import MatBenchmark
from mv2d_bench.loaders.mvc import MvcData, digest_files, validate_views

VIEWS = ("cq", "lss", "phog", "rgsift", "sift", "surf")
DIMS = (2688, 2000, 252, 2000, 2000, 2000)
CACHE_VERSION = 1
ENV_CACHE = "MV2D_CACHE"


def _visible(entries) -> list[os.DirEntry]:
    return sorted((e for e in entries if not e.name.startswith(".")), key=lambda e: e.name)


def _scandir(folder: Path) -> list[os.DirEntry]:
    with os.scandir(folder) as it:
        return _visible(it)


class AWA(MatBenchmark):
    name = "awa"
    views = VIEWS
    view_dims = DIMS
    n_samples = 30475
    num_classes = 50
    file_names = ("AWA.mat", "AwA.mat")
    root_subdir = "Animals_with_Attributes"
    root_candidates = ("Animals_with_Attributes", "AwA", "AWA", "AWA.mat", "AwA.mat")
    options_doc: ClassVar[dict[str, str]] = {
        **MatBenchmark.options_doc,
        "dtype": "float32 (default here) or float64 for dense views",
        "cache_dir": "where prepare() writes and load() finds the folder layout's .npz cache "
        "(default $MV2D_CACHE, then ~/.cache/mv2d-bench)",
    }
    card = DataCard(
        citation="C. H. Lampert, H. Nickisch, S. Harmeling, Learning to detect unseen object "
        "classes by between-class attribute transfer, CVPR 2009",
        license="features released by the authors for research; the images are not part of it",
        url="https://cvml.ista.ac.at/AwA/ (AwA-base.tar.bz2 and AwA-features-{cq,lss,phog,"
        "rgsift,sift,surf}.tar.bz2)",
        layout="Animals_with_Attributes/classes.txt and Animals_with_Attributes/Features/"
        "{cq,lss,phog,rgsift,sift,surf}-hist/<class>/<image>.txt (one histogram per file), or "
        "AWA.mat with X (1x6 cell, 30475 x 2688/2000/252/2000/2000/2000) and Y",
        notes="30,475 images / 50 classes (AwA 1, e.g. the ZSL data listings '30475 images from "
        "50 different types of animals'); feature folders <type>-hist as in the release's "
        "download script (AwA-features-cq.tar.bz2 ... unpacking to Animals_with_Attributes/"
        "Features/cq-hist) and MvNNcor's dataset/AWADataset.py (Features/<type>/<class>/<file>, "
        "np.loadtxt per file); dims 2688, 2000, 252, 2000, 2000, 2000 as in multi-view AWA "
        "listings. No published checksum is known.",
        split_seeds=(100, 101, 102, 103, 104),  # MvNNcor's AWADataset.py: random.seed(100)
    )

    @property
    def dtype(self) -> Any:
        if "dtype" not in self.options:
            return np.dtype("float32")
        return super().dtype

    # -- layout --------------------------------------------------------------------------------
    def features_dir(self) -> Path | None:
        root = Path(self.root)
        if root.is_file():
            return None
        for candidate in (root / "Features", root / "Animals_with_Attributes" / "Features", root):
            if candidate.is_dir() and any(
                (candidate / f"{v}-hist").is_dir() or (candidate / v).is_dir() for v in VIEWS
            ):
                return candidate
        return None

    def read(self) -> MvcData:
        features = self.features_dir()
        if features is None:
            root = Path(self.root)
            if root.is_file() or any((root / n).is_file() for n in self.file_names):
                return super().read()
            raise DataError(
                f"{root}: no AWA data found; expected Features/<type>-hist/<class>/*.txt "
                f"(types {', '.join(VIEWS)}) or one of {list(self.file_names)}"
            )
        listing = self._listing(features)
        cached = self._read_cache(listing)
        if cached is not None:
            return cached
        return self._read_text(features, listing)

    def _view_folders(self, features: Path) -> dict[str, Path]:
        wanted = self.selected_views() or list(VIEWS)
        folders, missing = {}, []
        for v in wanted:
            for name in (f"{v}-hist", v):
                if (features / name).is_dir():
                    folders[v] = features / name
                    break
            else:
                missing.append(f"{v}-hist")
        if missing:
            raise DataError(
                f"{features}: missing feature folder(s) {missing}; expected one folder per "
                f"feature type ({', '.join(f'{v}-hist' for v in VIEWS)}), or pass views=... "
                "for a subset"
            )
        return folders

    def _class_names(self, features: Path, first: Path) -> tuple[list[str], str]:
        for place in (features.parent, features, Path(self.root)):
            path = place / "classes.txt"
            if path.is_file():
                names = []
                for i, line in enumerate(path.read_text().splitlines(), 1):
                    parts = line.split()
                    if not parts:
                        continue
                    if len(parts) != 2 or not parts[0].isdigit():
                        raise DataError(
                            f"{path}: line {i} is {line!r}; expected '<index> <class name>'"
                        )
                    names.append(parts[1])
                return names, str(path)
        return [e.name for e in _scandir(first) if e.is_dir()], "sorted folder names"

    def _listing(self, features: Path) -> dict[str, Any]:
        """Which files make up every view, checked for agreement across feature types."""
        folders = self._view_folders(features)
        first_view = next(iter(folders))
        classes, class_source = self._class_names(features, folders[first_view])
        per_class: list[list[str]] = []
        stats: list[str] = []
        for v, folder in folders.items():
            for ci, cname in enumerate(classes):
                cdir = folder / cname
                if not cdir.is_dir():
                    raise DataError(
                        f"{cdir}: class folder missing; expected one folder per class of "
                        f"{class_source} in every feature type"
                    )
                entries = [e for e in _scandir(cdir) if e.is_file()]
                names = [e.name for e in entries]
                if v == first_view:
                    if not names:
                        raise DataError(f"{cdir}: no feature files; expected one per image")
                    per_class.append(names)
                elif names != per_class[ci]:
                    only_here = sorted(set(names) - set(per_class[ci]))[:3]
                    absent = sorted(set(per_class[ci]) - set(names))[:3]
                    raise DataError(
                        f"{cdir}: the image files differ from {folders[first_view] / cname} "
                        f"(missing {absent}, extra {only_here}); expected the same images in "
                        "every feature type"
                    )
                for e in entries:
                    st = e.stat()
                    stats.append(f"{v}/{cname}/{e.name}:{st.st_size}:{st.st_mtime_ns}")
            extra = sorted(e.name for e in _scandir(folder) if e.is_dir() and e.name not in classes)
            if extra:
                raise DataError(
                    f"{folder}: class folder(s) {extra[:5]} are not in {class_source}; expected "
                    f"exactly the {len(classes)} classes listed there"
                )
        key = hashlib.sha256(
            "\n".join([f"v{CACHE_VERSION}", str(self.dtype), *stats]).encode()
        ).hexdigest()
        return {
            "folders": folders,
            "classes": classes,
            "class_source": class_source,
            "files": per_class,
            "key": key,
        }

    # -- the text files --------------------------------------------------------------------------
    def _read_text(self, features: Path, listing: dict[str, Any]) -> MvcData:
        from tqdm import tqdm

        folders, classes, per_class = listing["folders"], listing["classes"], listing["files"]
        counts = [len(f) for f in per_class]
        n = sum(counts)
        labels = np.repeat(np.arange(len(classes), dtype=np.int64), counts)
        views = []
        total = n * len(folders)
        with tqdm(total=total, desc=f"{self.name}: reading text files", unit="file") as bar:
            for folder in folders.values():
                x = None
                row = 0
                for cname, names in zip(classes, per_class, strict=True):
                    for fname in names:
                        path = folder / cname / fname
                        raw = path.read_bytes()
                        rel = f"{folder.name}/{cname}/{fname}"
                        self.files_read[rel] = hashlib.sha256(raw).hexdigest()
                        values = _parse(raw, path)
                        if x is None:
                            x = np.empty((n, values.size), dtype=self.dtype)
                        if values.size != x.shape[1]:
                            raise DataError(
                                f"{path}: {values.size} values; expected {x.shape[1]} like the "
                                f"other files of {folder.name}"
                            )
                        x[row] = values
                        row += 1
                        bar.update(1)
                views.append(x)
        names = list(folders)
        validate_views(views, labels, features, [f"{folders[v].name}" for v in names])
        data = MvcData(
            views=views,
            labels=labels,
            view_names=names,
            num_classes=len(classes),
            source=str(features),
            data_sha256=digest_files(self.files_read),
            info={
                "format": "awa-feature-folders",
                "named": True,
                "classes": classes,
                "class_order": listing["class_source"],
                "views_selected": names if names != list(VIEWS) else None,
            },
        )
        return data

    # -- cache -----------------------------------------------------------------------------------
    def cache_dir(self) -> Path:
        value = self.options.get("cache_dir") or os.environ.get(ENV_CACHE)
        return Path(value) if value else Path.home() / ".cache" / "mv2d-bench"

    def cache_path(self, key: str) -> Path:
        return self.cache_dir() / f"awa-{key[:24]}.npz"

    def _read_cache(self, listing: dict[str, Any]) -> MvcData | None:
        path = self.cache_path(listing["key"])
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                views = [z[f"view{i}"] for i in range(len(meta["view_names"]))]
                labels = z["labels"]
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            warnings.warn(f"{path}: unreadable cache ({exc}); reading the text files", stacklevel=2)
            return None
        self.files_read = {}
        return MvcData(
            views=views,
            labels=labels,
            view_names=meta["view_names"],
            num_classes=meta["num_classes"],
            source=meta["source"],
            data_sha256=meta["data_sha256"],
            info={**meta["info"], "cache": str(path)},
        )

    def prepare(self) -> Path | None:
        """Read the feature folders once and write the ``.npz`` cache atomically."""
        features = self.features_dir()
        if features is None:
            return None  # a .mat needs no cache
        listing = self._listing(features)
        path = self.cache_path(listing["key"])
        if path.is_file() and self._read_cache(listing) is not None:
            return path
        self.files_read = {}
        data = self._read_text(features, listing)
        meta = {
            "view_names": data.view_names,
            "num_classes": data.num_classes,
            "source": data.source,
            "data_sha256": data.data_sha256,
            "info": data.info,
        }
        arrays = {f"view{i}": x for i, x in enumerate(data.views)}
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".awa-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, labels=data.labels, meta=np.array(json.dumps(meta)), **arrays)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return path


def _parse(raw: bytes, path: Path) -> np.ndarray:
    tokens = raw.split()
    if not tokens:
        raise DataError(f"{path}: empty file; expected the image's feature histogram")
    try:
        return np.array(tokens, dtype=np.float64)
    except ValueError as exc:
        raise DataError(
            f"{path}: cannot parse ({exc}); expected whitespace-separated numbers"
        ) from exc
