"""SemanticKITTI protocols: ``semantickitti/val@1`` and its camera-only ``val-fov@1``.

Exactly semantic-kitti-api's ``evaluate_semantics.py`` with ``np_ioueval`` on the validation
split (sequence 08): the official ``learning_map`` to 19 classes + ignore 0, one confusion matrix
over every point, ground truth 0 dropped, a valid point predicted 0 counted as a false negative
of its class, IoU_c = TP / (TP + FP + FN + 1e-15), mIoU = the plain mean over classes 1..19
(a class absent from labels and predictions counts as 0). See
:mod:`mv2d_bench.leaderboards.protocols.segmentation`.

``val-fov@1`` scores only the points that land in image_2 (camera z > 0, 0 <= u < W,
0 <= v < H with P2 and Tr of the sequence's calib.txt): about 15 % of a scan. It is what the
MV2D authors' code evaluates; its numbers are NOT comparable with the full-scan protocol.
"""

from __future__ import annotations

from typing import Any, ClassVar

from mv2d_bench.leaderboards.protocols.base import Metric, Score
from mv2d_bench.leaderboards.protocols.segmentation import SegProtocol, seg_metrics
from mv2d_bench.loaders import semantickitti_classes as kc

PRED = (
    "predicted class per point: ints (N,) in 0..19 (0 counts as a miss), or logits (N, 19) "
    "over the 19 classes (or (N, 20) with the ignore class first) whose argmax is taken"
)
LABEL = "ground-truth class per point: ints (N,) in 0..19 after learning_map (0 = ignore)"


class SemanticKittiVal(SegProtocol):
    id: ClassVar[str] = "semantickitti/val@1"
    benchmark: ClassVar[str] = "semantickitti"
    description: ClassVar[str] = (
        "SemanticKITTI validation sequence 08, every point, as semantic-kitti-api's np_ioueval: "
        "one confusion matrix, 19 classes, ground truth 0 dropped, predicted 0 is a miss, "
        "mIoU (%) = plain mean over classes 1..19. One run per entry."
    )
    metrics: ClassVar[tuple[Metric, ...]] = seg_metrics("mean IoU over the 19 classes")
    num_classes: ClassVar[int] = kc.NUM_CLASSES + 1
    class_names: ClassVar[tuple[str, ...]] = kc.CLASSES
    rule: ClassVar[str] = "semantickitti"
    lowest_pred: ClassVar[int] = 0
    npz_keys: ClassVar[dict[str, str]] = {"pred": PRED, "label": LABEL}

    def score_folder(self, folder: str, root: str | None = None, **options: Any) -> Score:
        """Score ``folder/sequences/08/predictions/*.label`` (uint32 raw ids, learning_map_inv
        of the classes; the official submission format) against the labels under ``root``."""
        from mv2d_bench.leaderboards.seg_submission import score_semantickitti_folder

        return score_semantickitti_folder(self, folder, root, **options)


class SemanticKittiValFov(SemanticKittiVal):
    id: ClassVar[str] = "semantickitti/val-fov@1"
    description: ClassVar[str] = (
        "SemanticKITTI validation sequence 08, ONLY the points inside image_2 (about 15 % of a "
        "scan), as the MV2D authors' code evaluates; otherwise as semantickitti/val@1. Not "
        "comparable with the full-scan protocol."
    )
    metrics: ClassVar[tuple[Metric, ...]] = seg_metrics(
        "mean IoU over the 19 classes, image_2 points only"
    )
    fov: ClassVar[bool] = True
    board_notes: ClassVar[tuple[str, ...]] = (
        "Camera-visible points only, as the MV2D authors' code evaluates (it deletes every point "
        "no camera sees): these numbers are not comparable with semantickitti/val@1.",
    )
    npz_keys: ClassVar[dict[str, str]] = {
        "pred": PRED,
        "label": LABEL,
        "visible": "bool (N,): True where the point lands in image_2",
    }
