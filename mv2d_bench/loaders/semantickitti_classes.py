"""SemanticKITTI classes: the raw label ids, the official ``learning_map`` to 19 classes + ignore,
and ``learning_map_inv`` for submissions (semantic-kitti-api, ``config/semantic-kitti.yaml``).

A ``.label`` file holds one uint32 per point: the low 16 bits are the raw semantic id, the high
16 bits the instance id. :func:`map_labels` maps raw ids to 0..19 and, unlike semantic-kitti-api
(whose lookup table silently maps any unknown id below 359 to 0), refuses ids that are not in
``learning_map``.
"""

from __future__ import annotations

import numpy as np

from mv2d_bench.loaders.base import DataError

RAW_NAMES: dict[int, str] = {
    0: "unlabeled",
    1: "outlier",
    10: "car",
    11: "bicycle",
    13: "bus",
    15: "motorcycle",
    16: "on-rails",
    18: "truck",
    20: "other-vehicle",
    30: "person",
    31: "bicyclist",
    32: "motorcyclist",
    40: "road",
    44: "parking",
    48: "sidewalk",
    49: "other-ground",
    50: "building",
    51: "fence",
    52: "other-structure",
    60: "lane-marking",
    70: "vegetation",
    71: "trunk",
    72: "terrain",
    80: "pole",
    81: "traffic-sign",
    99: "other-object",
    252: "moving-car",
    253: "moving-bicyclist",
    254: "moving-person",
    255: "moving-motorcyclist",
    256: "moving-on-rails",
    257: "moving-bus",
    258: "moving-truck",
    259: "moving-other-vehicle",
}

LEARNING_MAP: dict[int, int] = {
    0: 0,
    1: 0,
    10: 1,
    11: 2,
    13: 5,
    15: 3,
    16: 5,
    18: 4,
    20: 5,
    30: 6,
    31: 7,
    32: 8,
    40: 9,
    44: 10,
    48: 11,
    49: 12,
    50: 13,
    51: 14,
    52: 0,
    60: 9,
    70: 15,
    71: 16,
    72: 17,
    80: 18,
    81: 19,
    99: 0,
    252: 1,
    253: 7,
    254: 6,
    255: 8,
    256: 5,
    257: 5,
    258: 4,
    259: 5,
}
"""Raw semantic id -> learning class 0..19 (0 = ignore: unlabeled, outlier, other-structure,
other-object); moving classes map to their static class."""

LEARNING_MAP_INV: dict[int, int] = {
    0: 0,
    1: 10,
    2: 11,
    3: 15,
    4: 18,
    5: 20,
    6: 30,
    7: 31,
    8: 32,
    9: 40,
    10: 44,
    11: 48,
    12: 49,
    13: 50,
    14: 51,
    15: 70,
    16: 71,
    17: 72,
    18: 80,
    19: 81,
}
"""Learning class -> the raw id a submission's ``predictions/*.label`` file holds."""

CLASSES: tuple[str, ...] = tuple(RAW_NAMES[LEARNING_MAP_INV[k]] for k in range(1, 20))
"""The 19 classes; class k (1..19) is ``CLASSES[k - 1]``; 0 is ignore."""

IGNORE = 0
NUM_CLASSES = len(CLASSES)

TRAIN_SEQUENCES = ("00", "01", "02", "03", "04", "05", "06", "07", "09", "10")
VAL_SEQUENCES = ("08",)
TEST_SEQUENCES = tuple(f"{i:02d}" for i in range(11, 22))

_LUT = np.full(1 << 16, -1, dtype=np.int16)
for _raw, _cls in LEARNING_MAP.items():
    _LUT[_raw] = _cls
_INV = np.array([LEARNING_MAP_INV[k] for k in range(20)], dtype=np.uint32)


class UnknownLabelError(DataError):
    """A raw semantic id that ``learning_map`` does not list."""


def map_labels(raw: np.ndarray, source: str = "labels") -> np.ndarray:
    """uint32 ``.label`` values (or raw ids) -> learning classes 0..19 as uint8.

    Only the low 16 bits are read. An id that ``learning_map`` does not list raises
    :class:`UnknownLabelError` naming ``source``, the id and how many points carry it.
    """
    semantic = np.asarray(raw).astype(np.uint32, copy=False) & 0xFFFF
    mapped = _LUT[semantic]
    bad = mapped < 0
    if bad.any():
        ids, counts = np.unique(semantic[bad], return_counts=True)
        shown = ", ".join(
            f"{int(i)} ({int(c)} points)" for i, c in zip(ids[:5], counts[:5], strict=True)
        )
        raise UnknownLabelError(
            f"{source}: unknown raw semantic id(s) {shown}; expected ids of SemanticKITTI's "
            f"learning_map ({', '.join(map(str, sorted(LEARNING_MAP)))})"
        )
    return mapped.astype(np.uint8)


def to_raw(classes: np.ndarray) -> np.ndarray:
    """Learning classes 0..19 -> raw ids (uint32) through ``learning_map_inv`` (submissions)."""
    classes = np.asarray(classes)
    if classes.size and (classes.min() < 0 or classes.max() > 19):
        raise ValueError(
            f"predicted classes must be in 0..19; got {int(classes.min())}..{int(classes.max())}"
        )
    return _INV[classes.astype(np.int64)]
