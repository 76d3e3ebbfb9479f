"""nuScenes-lidarseg classes: the 32 raw classes of ``category.json`` and the 16 challenge classes.

The raw class of a point is its ``index`` in the lidarseg ``category.json`` (uint8 in the
``<token>_lidarseg.bin`` files). The challenge classes 1..16 (0 = ignore) are those of the
devkit's :class:`nuscenes.eval.lidarseg.utils.LidarsegClassMapper`; the loader maps raw ids
through that mapper's own table (:func:`coarse_lut`), and the tests check that the names here
are the mapper's. This module does not import the devkit.
"""

from __future__ import annotations

from typing import Any

import numpy as np

RAW_CLASSES: tuple[str, ...] = (
    "noise",
    "animal",
    "human.pedestrian.adult",
    "human.pedestrian.child",
    "human.pedestrian.construction_worker",
    "human.pedestrian.personal_mobility",
    "human.pedestrian.police_officer",
    "human.pedestrian.stroller",
    "human.pedestrian.wheelchair",
    "movable_object.barrier",
    "movable_object.debris",
    "movable_object.pushable_pullable",
    "movable_object.trafficcone",
    "static_object.bicycle_rack",
    "vehicle.bicycle",
    "vehicle.bus.bendy",
    "vehicle.bus.rigid",
    "vehicle.car",
    "vehicle.construction",
    "vehicle.emergency.ambulance",
    "vehicle.emergency.police",
    "vehicle.motorcycle",
    "vehicle.trailer",
    "vehicle.truck",
    "flat.driveable_surface",
    "flat.other",
    "flat.sidewalk",
    "flat.terrain",
    "static.manmade",
    "static.other",
    "static.vegetation",
    "vehicle.ego",
)
"""The 32 raw lidarseg classes in the order of their ``index`` in category.json (0..31)."""

CLASSES: tuple[str, ...] = (
    "barrier",
    "bicycle",
    "bus",
    "car",
    "construction_vehicle",
    "motorcycle",
    "pedestrian",
    "traffic_cone",
    "trailer",
    "truck",
    "driveable_surface",
    "other_flat",
    "sidewalk",
    "terrain",
    "manmade",
    "vegetation",
)
"""The 16 challenge classes; class k (1..16) is ``CLASSES[k - 1]``; 0 is ignore."""

IGNORE = 0
NUM_CLASSES = len(CLASSES)


def coarse_lut(mapper: Any) -> np.ndarray:
    """A lookup table raw id -> challenge class from a devkit ``LidarsegClassMapper``.

    Entries for ids that the mapper does not know are -1 (an error when a label file uses one:
    the devkit's ``convert_label`` raises a KeyError there too).
    """
    table = mapper.fine_idx_2_coarse_idx_mapping
    lut = np.full(256, -1, dtype=np.int16)
    for fine, coarse in table.items():
        lut[int(fine)] = int(coarse)
    return lut
