"""Shared code of the visible-infrared ReID benchmarks (``sysu-mm01``, ``regdb``).

Dataset API (what the training harness codes against)
-----------------------------------------------------
Open a benchmark and load one trial::

    bench = mv2d_bench.loaders.create("sysu-mm01", root)    # or "regdb"
    bench.prepare()                  # once: resize every image into the HDF5 cache (tqdm bar)
    data = bench.load(trial=None, protocol=None)            # RegDB: trial=1..10 (required)

``data`` is a :class:`ReidData` with three :class:`ReidImageSet` s:

- ``data.train``: the training images of both modalities. ``labels`` are the identities remapped
  to ``0..data.num_classes-1`` (sorted original ids; SYSU-MM01: the 395 train + val identities;
  RegDB: the 206 identities of the trial's training files), ``modality`` is ``VISIBLE`` (0) or
  ``INFRARED`` (1), ``cams`` the camera number, ``ids`` the original identity.
  ``data.train.indices(VISIBLE)`` / ``indices(INFRARED)`` give the rows of each modality, and
  ``data.train.labels[data.train.indices(VISIBLE)]`` are the per-image identities the
  identity-paired sampler takes.
- ``data.query`` and ``data.gallery``: what to extract features of for ``mv2d-bench score``
  (npz keys ``query_feat, query_ids, query_cams, gallery_feat, gallery_ids, gallery_cams``; use
  ``query.ids`` / ``query.cams`` / ``gallery.ids`` / ``gallery.cams`` as they are, and
  ``gallery.index_in_folder`` as the optional ``gallery_index`` key). For SYSU-MM01 the query is
  every infrared image (cams 3, 6) of the 96 test identities and the gallery is the *full
  candidate* gallery (every visible image of cams 1, 2, 4, 5 of the test identities): the
  protocol samples each trial's gallery from it, so one extraction serves all four SYSU
  protocols. For RegDB the protocol decides the direction: ``regdb/visible-to-thermal@1`` (the
  default) queries with the trial's visible test images against its thermal ones,
  ``regdb/thermal-to-visible@1`` the reverse.

Images come from the cache as ``uint8`` tensors, channels first, RGB (infrared and thermal
images are stored as three equal channels, as published):

- ``ds[i]`` -> ``{"image": (3, H, W) uint8, "label", "id", "cam", "modality", "index"}``
  (a ``torch.utils.data.Dataset``; safe with DataLoader workers, each opens its own handle);
- ``ds.images(indices)`` -> ``(B, 3, H, W) uint8`` in the order given (one batched HDF5 read);
- ``grayscale(images)`` -> the optional third view (the paper's intermediate modality: a
  grayscale copy of the visible image, repeated to 3 channels), bit-identical to PIL's
  ``Image.convert("L")`` (ITU-R 601-2 luma). ``bench.view_names`` lists ``("visible",
  "infrared")`` plus ``"grayscale"`` when the benchmark was opened with ``third_view=True``.

Normalisation, augmentation and float conversion belong to the model side.

Cache
-----
One HDF5 file per benchmark and image size, ``<cache_dir>/<benchmark>-<H>x<W>.h5`` (``cache_dir``
option, else ``$MV2D_CACHE/<benchmark>``, else ``<root>/.mv2d-cache``) with

- ``images``: ``(N, H, W, 3) uint8``, chunked one image per chunk;
- ``paths``: the image paths relative to the root (UTF-8), row ``i`` is image ``i``;
- attributes ``benchmark``, ``height``, ``width``, ``resample`` ("lanczos", as the AGW/DDAG
  preprocessing's ``Image.ANTIALIAS``), ``listing_sha256`` (sha256 over the sorted
  ``path<TAB>size`` lines: a changed tree makes the cache stale) and ``format_version``.

It is written to a temporary name in the same folder and renamed into place with
``os.replace``, so a cache file is complete or absent. Default size: 288 x 144 (H x W).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from mv2d_bench.loaders.base import Benchmark, DataError

VISIBLE, INFRARED = 0, 1
MODALITY_NAMES = ("visible", "infrared")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
CACHE_FORMAT_VERSION = 1
ENV_CACHE = "MV2D_CACHE"
DEFAULT_SIZE = (288, 144)


# --------------------------------------------------------------------------------------------
# Image lists
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ImageList:
    """Images of one subset: paths relative to the root (POSIX), identity, camera, modality."""

    paths: tuple[str, ...]
    ids: np.ndarray
    cams: np.ndarray
    modality: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.paths)
        for name in ("ids", "cams", "modality"):
            arr = np.asarray(getattr(self, name), dtype=np.int64).reshape(-1)
            if arr.shape[0] != n:
                raise ValueError(f"ImageList.{name} has {arr.shape[0]} entries, paths has {n}")
            object.__setattr__(self, name, arr)

    def __len__(self) -> int:
        return len(self.paths)

    @staticmethod
    def concat(lists: Sequence[ImageList]) -> ImageList:
        return ImageList(
            paths=tuple(p for lst in lists for p in lst.paths),
            ids=np.concatenate([lst.ids for lst in lists]) if lists else np.zeros(0, np.int64),
            cams=np.concatenate([lst.cams for lst in lists]) if lists else np.zeros(0, np.int64),
            modality=(
                np.concatenate([lst.modality for lst in lists]) if lists else np.zeros(0, np.int64)
            ),
        )


def list_images(folder: Path) -> list[str]:
    """Image file names in ``folder``, sorted (the order the AGW/DDAG code and ``rand_perm_cam``
    index: ``sorted(os.listdir(...))``)."""
    with os.scandir(folder) as it:
        names = [e.name for e in it if e.is_file() and e.name.lower().endswith(IMAGE_SUFFIXES)]
    return sorted(names)


def listing_sha256(root: Path, paths: Sequence[str]) -> str:
    """sha256 over the sorted ``path<TAB>size`` lines (cheap: one stat per file)."""
    h = hashlib.sha256()
    for rel in sorted(set(paths)):
        try:
            size = (root / rel).stat().st_size
        except OSError as exc:
            raise DataError(f"{root / rel}: cannot stat image ({exc.strerror})") from exc
        h.update(f"{rel}\t{size}\n".encode())
    return h.hexdigest()


def files_sha256(root: Path, rel_paths: Sequence[str]) -> str:
    """sha256 over the contents of small split files (id lists, idx files), in the order given."""
    h = hashlib.sha256()
    for rel in rel_paths:
        h.update(rel.encode() + b"\0")
        h.update((root / rel).read_bytes())
    return h.hexdigest()


def remap_labels(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(labels, classes)``: ``classes`` the sorted distinct ids, ``labels[i]`` the position of
    ``ids[i]`` in it (0..len(classes)-1)."""
    classes = np.unique(ids)
    return np.searchsorted(classes, ids).astype(np.int64), classes


# --------------------------------------------------------------------------------------------
# Third view
# --------------------------------------------------------------------------------------------
def grayscale(images: torch.Tensor) -> torch.Tensor:
    """Grayscale copy of RGB ``uint8`` images ``(..., 3, H, W)``, repeated to 3 channels.

    Bit-identical to PIL's ``Image.convert("L")``: ``L = (19595 R + 38470 G + 7471 B + 0x8000)
    >> 16`` (ITU-R 601-2 luma in 16-bit fixed point), the conversion the paper's authors apply to
    the visible image to make the intermediate modality."""
    if images.dtype != torch.uint8 or images.dim() < 3 or images.shape[-3] != 3:
        raise ValueError(
            f"grayscale expects uint8 images shaped (..., 3, H, W), got {images.dtype} "
            f"{tuple(images.shape)}"
        )
    x = images.to(torch.int32)
    r, g, b = x.unbind(dim=-3)
    lum = ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).to(torch.uint8)
    return lum.unsqueeze(-3).expand_as(images).contiguous()


# --------------------------------------------------------------------------------------------
# Cache
# --------------------------------------------------------------------------------------------
def read_resized(path: Path, size: tuple[int, int]) -> np.ndarray:
    """One image as ``(H, W, 3) uint8``: PIL, converted to RGB, resized with Lanczos."""
    from PIL import Image, UnidentifiedImageError

    height, width = size
    try:
        with Image.open(path) as img:
            img = img.convert("RGB").resize((width, height), Image.Resampling.LANCZOS)
            return np.asarray(img, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(f"{path}: cannot read image ({type(exc).__name__}: {exc})") from exc


def write_cache(
    path: Path,
    root: Path,
    paths: Sequence[str],
    size: tuple[int, int],
    benchmark: str,
    listing: str,
    progress: bool = True,
) -> Path:
    """Resize every image of ``paths`` into an HDF5 file at ``path``, atomically."""
    import h5py
    from tqdm.auto import tqdm

    height, width = size
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with h5py.File(tmp, "w") as f:
            images = f.create_dataset(
                "images",
                shape=(len(paths), height, width, 3),
                dtype=np.uint8,
                chunks=(1, height, width, 3),
            )
            f.create_dataset("paths", data=list(paths), dtype=h5py.string_dtype("utf-8"))
            f.attrs.update(
                {
                    "benchmark": benchmark,
                    "height": height,
                    "width": width,
                    "resample": "lanczos",
                    "listing_sha256": listing,
                    "format_version": CACHE_FORMAT_VERSION,
                }
            )
            bar = tqdm(
                paths,
                desc=f"{benchmark}: caching {height}x{width}",
                unit="img",
                disable=not progress,
            )
            for i, rel in enumerate(bar):
                images[i] = read_resized(root / rel, size)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def inspect_cache(path: Path, size: tuple[int, int], listing: str, n_images: int) -> list[str]:
    """Problems with the cache at ``path`` (empty list: usable)."""
    import h5py

    problems: list[str] = []
    try:
        with h5py.File(path, "r") as f:
            if "images" not in f or "paths" not in f:
                return [f"{path}: missing dataset 'images' or 'paths'"]
            images = f["images"]
            expected = (n_images, size[0], size[1], 3)
            if images.shape != expected or images.dtype != np.uint8:
                problems.append(
                    f"{path}: 'images' is {images.dtype} {images.shape}, expected uint8 {expected}"
                )
            if f.attrs.get("format_version") != CACHE_FORMAT_VERSION:
                problems.append(
                    f"{path}: format_version {f.attrs.get('format_version')!r}, "
                    f"expected {CACHE_FORMAT_VERSION}"
                )
            if f.attrs.get("listing_sha256") != listing:
                problems.append(
                    f"{path}: stale (attribute listing_sha256 does not match the image files "
                    "under the root); run prepare again"
                )
            if not problems and n_images:
                _ = images[0], images[n_images - 1]  # readable at both ends
    except OSError as exc:
        problems.append(f"{path}: not a readable HDF5 file ({exc})")
    return problems


# --------------------------------------------------------------------------------------------
# Datasets
# --------------------------------------------------------------------------------------------
class ReidImageSet(torch.utils.data.Dataset):
    """Images of one subset, read from the HDF5 cache (see the module docstring)."""

    def __init__(
        self,
        cache_path: Path,
        rows: np.ndarray,
        images: ImageList,
        labels: np.ndarray | None = None,
        index_in_folder: np.ndarray | None = None,
    ) -> None:
        self.cache_path = Path(cache_path)
        self.rows = np.asarray(rows, dtype=np.int64)
        self.paths = images.paths
        self.ids = images.ids
        self.cams = images.cams
        self.modality = images.modality
        self.labels, self.classes = (
            remap_labels(self.ids) if labels is None else (labels, np.unique(self.ids))
        )
        self.index_in_folder = (
            np.asarray(index_in_folder, dtype=np.int64) if index_in_folder is not None else None
        )
        self._file: Any = None
        self._pid: int | None = None

    @property
    def num_classes(self) -> int:
        return int(len(self.classes))

    def __len__(self) -> int:
        return int(self.rows.shape[0])

    def indices(self, modality: int) -> np.ndarray:
        """Positions (into this set) of the images of ``modality`` (VISIBLE or INFRARED)."""
        return np.flatnonzero(self.modality == modality)

    def _handle(self) -> Any:
        import h5py

        if self._file is None or self._pid != os.getpid():
            self._file = h5py.File(self.cache_path, "r")
            self._pid = os.getpid()
        return self._file["images"]

    def images(self, indices: Sequence[int] | np.ndarray | torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W) uint8`` images at ``indices`` (positions in this set), in that order."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise IndexError(f"image index out of range 0..{len(self) - 1}")
        rows = self.rows[idx]
        uniq, inverse = np.unique(rows, return_inverse=True)  # h5py wants increasing indices
        data = self._handle()[uniq] if uniq.size else np.zeros((0, 1, 1, 3), np.uint8)
        return torch.from_numpy(np.ascontiguousarray(data[inverse])).permute(0, 3, 1, 2)

    def __getitem__(self, i: int) -> dict[str, Any]:
        image = self.images([i])[0]
        return {
            "image": image,
            "label": int(self.labels[i]),
            "id": int(self.ids[i]),
            "cam": int(self.cams[i]),
            "modality": int(self.modality[i]),
            "index": int(i),
        }

    def __getstate__(self) -> dict[str, Any]:  # DataLoader workers re-open the file
        state = dict(self.__dict__)
        state["_file"], state["_pid"] = None, None
        return state

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


@dataclass
class ReidData:
    """One trial of a ReID benchmark: training images and the query / gallery to score."""

    train: ReidImageSet
    query: ReidImageSet
    gallery: ReidImageSet
    trial: int | None
    num_classes: int
    protocol: str
    data_sha256: str
    """sha256 over the split files and the image listing (path and size of every image)."""
    split_id: str
    info: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# Benchmark base
# --------------------------------------------------------------------------------------------
def parse_size(value: Any, name: str) -> tuple[int, int]:
    """``(H, W)`` from a pair or a string ``"288x144"`` / ``"288,144"`` (CLI ``-o size=...``)."""
    given = value
    if isinstance(value, str):
        parts = [p for p in value.replace("x", ",").split(",") if p.strip()]
        try:
            value = tuple(int(p) for p in parts)
        except ValueError:
            value = ()
    size = tuple(value) if isinstance(value, (tuple, list)) else ()
    if len(size) != 2 or not all(isinstance(v, int) and v > 0 for v in size):
        raise ValueError(
            f"{name}: option size={given!r}; expected height x width, e.g. 288x144 or (288, 144)"
        )
    return int(size[0]), int(size[1])


def parse_bool(value: Any, key: str, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name}: option {key}={value!r}; expected true or false")


class ReidBenchmark(Benchmark):
    """Shared behaviour of ``sysu-mm01`` and ``regdb``: cache location, prepare, cache checks.

    Options: ``size=(H, W)`` (default 288 x 144), ``cache_dir``, ``third_view`` (bool),
    ``check_counts`` (compare with the published counts in :meth:`verify`; default True),
    ``progress`` (tqdm bars; default True)."""

    family: ClassVar[str] = "reid"
    task: ClassVar[str] = "retrieval"
    views: ClassVar[tuple[str, ...]] = ("visible", "infrared")

    def __init__(self, root: Any = None, **options: Any) -> None:
        known = {"size", "cache_dir", "third_view", "check_counts", "progress"}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ValueError(
                f"{self.name}: unknown option(s) {', '.join(unknown)}; "
                f"expected: {', '.join(sorted(known))}"
            )
        super().__init__(root, **options)
        self.size: tuple[int, int] = parse_size(options.get("size", DEFAULT_SIZE), self.name)
        self.third_view = parse_bool(options.get("third_view", False), "third_view", self.name)
        self.check_counts = parse_bool(options.get("check_counts", True), "check_counts", self.name)
        self.progress = parse_bool(options.get("progress", True), "progress", self.name)

    @property
    def view_names(self) -> tuple[str, ...]:
        return self.views + (("grayscale",) if self.third_view else ())

    # -- what families implement -------------------------------------------------------------
    def all_images(self) -> ImageList:
        """Every image the benchmark uses (the rows of the cache), in a fixed order."""
        raise NotImplementedError

    # -- cache ---------------------------------------------------------------------------------
    def cache_path(self) -> Path:
        assert self.root is not None
        if self.options.get("cache_dir"):
            folder = Path(self.options["cache_dir"]).expanduser()
        elif os.environ.get(ENV_CACHE):
            folder = Path(os.environ[ENV_CACHE]) / self.name
        else:
            folder = self.root / ".mv2d-cache"
        return folder / f"{self.name}-{self.size[0]}x{self.size[1]}.h5"

    def _listing(self) -> tuple[ImageList, str]:
        images = self.all_images()
        return images, listing_sha256(self.root, images.paths)

    def prepare(self, force: bool = False) -> Path:
        """Build the HDF5 cache (skipped when a valid one exists, unless ``force``)."""
        images, listing = self._listing()
        path = self.cache_path()
        if not force and path.exists() and not inspect_cache(path, self.size, listing, len(images)):
            return path
        return write_cache(
            path, self.root, images.paths, self.size, self.name, listing, self.progress
        )

    def cache_check(self, images: ImageList, listing: str) -> dict[str, Any]:
        path = self.cache_path()
        if not path.exists():
            return {
                "name": "cache",
                "ok": True,
                "skipped": True,
                "detail": f"{path} not built yet (run `mv2d-bench data prepare {self.name}`)",
            }
        problems = inspect_cache(path, self.size, listing, len(images))
        detail = (
            "; ".join(problems)
            or f"{path}: {len(images)} images, {self.size[0]}x"
            f"{self.size[1]} uint8, matches the tree"
        )
        return {"name": "cache", "ok": not problems, "detail": detail}

    def _rows(self, subset: ImageList, all_paths: Sequence[str]) -> np.ndarray:
        where = {p: i for i, p in enumerate(all_paths)}
        return np.array([where[p] for p in subset.paths], dtype=np.int64)

    def _image_set(self, subset: ImageList, all_images: ImageList, **kw: Any) -> ReidImageSet:
        return ReidImageSet(self.cache_path(), self._rows(subset, all_images.paths), subset, **kw)
