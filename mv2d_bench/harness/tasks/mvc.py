"""The multi-view classification (MVC) task: multi-view networks on in-memory feature views.

Models (``[model]``, :mod:`mv2d_bench.harness.tasks.mvc_sections`): ``multiview-ib`` (the MV2D
paper's network: MvNNcor-style encoders, Gaussian bottlenecks, ``model.fusion``) and ``mvnncor``
(the released MvNNcor).

Data path: the benchmark's :class:`~mv2d_bench.loaders.mvc.MvcData` is split per class
(``data.split``, ``data.split_seed``, ``data.fractions``), each view standardised with training
statistics (``data.standardize``; MvNNcor does not standardise) and
kept in memory as one float32 tensor per view and split. An epoch draws one permutation from the
trainer's generator, gathers each training view once in that order, and yields contiguous
slices of ``train.batch_size`` rows (no per-item collation). Views too large to hold densely
(sparse Reuters) stay ``scipy.sparse`` and are densified one batch at a time.

Task loss of ``multiview-ib`` (``[loss]``, :class:`MvcLossConfig`)::

    ce_obs   * mean_i CE(P_vi, y)        cross-entropy on each observation head
    ce_rep   * mean_i CE(P_zi, y)        on each bottleneck head (not with the bottleneck off)
    ce_fused * CE(P_Z, y)                on the fused prediction
    rank     * mean over rank_on of mean_i rank(f_i, y)   f = v and/or z; rank_type: the
                                         batch-hard triplet or the authors' ranked-list loss

``mvnncor``'s loss is its own: ``ce_weighted = sum_v w_v^gamma CE_v`` (its view weights move
after every step, :class:`~mv2d_bench.models.mvc_fusion.view_weights.LossViewWeights`).

Reported metric: ``accuracy`` (percent) of the fused prediction P_Z at the best validation epoch,
and ``last_epoch_accuracy`` at the last epoch. Protocol: ``mvc/accuracy@1`` for the stratified
split, ``mvc/accuracy@2`` for MvNNcor's (``data.split = "mvnncor"``, the data card's seeds).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mv2d_bench.harness.evaluation import score_batches
from mv2d_bench.harness.task import Task
from mv2d_bench.harness.tasks.mvc_sections import (
    MultiViewIBConfig,
    MvcLossConfig,
    MvcModelSection,
)
from mv2d_bench.leaderboards import protocols
from mv2d_bench.loaders.base import DataError
from mv2d_bench.loaders.mvc import MvcData
from mv2d_bench.loaders.standardize import apply_standardizer, fit_standardizer
from mv2d_bench.models.multiview_ib import MultiViewIB
from mv2d_bench.models.mvnncor import MvNNcor
from mv2d_bench.models.rank_losses import batch_hard_triplet_views, ranked_list_views
from mv2d_bench.views import ViewOutputs

MvcModelConfig = MultiViewIBConfig
"""The default ``[model]`` dataclass (``multiview-ib``); ``mvnncor`` has :class:`MvNNcorConfig`."""

PROTOCOL = "mvc/accuracy@1"
PROTOCOLS = {"stratified": "mvc/accuracy@1", "mvnncor": "mvc/accuracy@2"}
"""The protocol a run is scored under, by its split procedure (``data.split``)."""
DENSE_LIMIT_BYTES = 1 << 30
"""Sparse views whose dense float32 copy would exceed this stay sparse (densified per batch)."""


@dataclass
class MvcBatch:
    views: list[Tensor]
    target: Tensor


class ViewMatrix:
    """One view of one split: a dense tensor, or a sparse matrix densified per batch."""

    def __init__(self, x: Any, device: torch.device) -> None:
        self.device = device
        self.sparse = sp.issparse(x) and x.shape[0] * x.shape[1] * 4 > DENSE_LIMIT_BYTES
        if self.sparse:
            self.data = sp.csr_matrix(x, dtype=np.float32)
        else:
            dense = x.toarray() if sp.issparse(x) else x
            self.data = torch.from_numpy(np.ascontiguousarray(dense, dtype=np.float32)).to(device)

    def __len__(self) -> int:
        return self.data.shape[0]

    def take(self, index: Tensor | slice) -> Tensor:
        if not self.sparse:
            return self.data[index]
        rows = index if isinstance(index, slice) else index.cpu().numpy()
        return torch.from_numpy(self.data[rows].toarray()).to(self.device)


class MvcTask(Task):
    family: ClassVar[str] = "mvc"
    sections: ClassVar[dict[str, type]] = {"model": MvcModelSection, "loss": MvcLossConfig}
    has_validation: ClassVar[bool] = True
    report_last_epoch: ClassVar[bool] = True
    """The trainer also evaluates the last epoch's weights on test (``last_epoch_accuracy``)."""

    eval_batch_size: int = 4096
    """Items per evaluation batch unless ``train.eval_batch_size`` says otherwise (batch b of a
    split goes to rank b % world_size)."""

    # -- data -------------------------------------------------------------------------------
    def setup(self) -> None:
        data = self.benchmark.load()
        if not isinstance(data, MvcData):
            raise DataError(
                f"benchmark {self.benchmark.name!r}: load() returned {type(data).__name__}; "
                "the MVC task expects MvcData"
            )
        self.data = data
        cfg = self.config.data
        self.protocol = protocols.get(PROTOCOLS[cfg.split])
        self.split = data.make_split(cfg.split_seed, tuple(cfg.fractions), cfg.split)
        self.split.require_nonempty()
        views = data.views
        if cfg.standardize:
            self.stats = fit_standardizer(views, self.split.train)
            views = apply_standardizer(views, self.stats)
        else:
            self.stats = None
        for i, x in enumerate(views):
            values = x.data if sp.issparse(x) else np.asarray(x)
            if not np.all(np.isfinite(values)):
                raise DataError(
                    f"{data.source or self.benchmark.name}: view {i} ({data.view_names[i]}) "
                    "has NaN or infinite values after standardisation; expected finite features"
                )
        labels = torch.as_tensor(np.asarray(data.labels, dtype=np.int64), device=self.device)
        self.parts: dict[str, tuple[list[ViewMatrix], Tensor]] = {}
        for part in ("train", "val", "test"):
            idx = getattr(self.split, part)
            self.parts[part] = (
                [ViewMatrix(x[idx], self.device) for x in views],
                labels[torch.as_tensor(idx, device=self.device)],
            )
        self.n_views = len(views)
        self.view_dims = data.view_dims
        self.num_classes = int(data.num_classes)

    def _n_batches(self) -> int:
        n, bs = len(self.parts["train"][1]), self.config.train.batch_size
        if self.config.train.drop_last and n >= bs:
            return n // bs
        full, rest = divmod(n, bs)
        # under torchrun a last batch smaller than the world size would leave a rank empty
        return full + (1 if rest >= self.world.size else 0)

    def num_train_batches(self, epoch: int) -> int:
        return self._n_batches()

    def train_batches(self, epoch: int, generator: torch.Generator):
        """Contiguous slices of one seeded permutation per epoch. Under torchrun every rank
        draws the same permutation and takes its share (:meth:`World.share`) of each global
        batch of ``train.batch_size`` rows."""
        views, labels = self.parts["train"]
        n, bs = len(labels), self.config.train.batch_size
        w = self.world
        perm = torch.randperm(n, generator=generator).to(self.device)
        if w.size > 1 and bs < w.size:
            raise ValueError(
                f"config: 'train.batch_size' is the global batch and must be >= the world size "
                f"{w.size}; got {bs}"
            )
        spans = [w.share(b * bs, min((b + 1) * bs, n)) for b in range(self._n_batches())]
        if all(not v.sparse for v in views):
            ordered = [v.data[perm] for v in views]  # one gather per view and epoch
            target = labels[perm]
            for lo, hi in spans:
                yield MvcBatch([x[lo:hi] for x in ordered], target[lo:hi])
        else:
            for lo, hi in spans:
                idx = perm[lo:hi]
                yield MvcBatch([v.take(idx) for v in views], labels[idx])

    # -- model ------------------------------------------------------------------------------
    def model_config(self) -> Any:
        return self.config.section("model")

    @property
    def protocol_id(self) -> str:
        return PROTOCOLS[self.config.data.split]

    def build_model(self) -> nn.Module:
        mc = self.model_config()
        params = {k: v for k, v in dataclasses.asdict(mc).items() if k != "name"}
        self.config.section("loss").check(mc.name)
        if mc.name == "mvnncor":
            return MvNNcor(self.view_dims, self.num_classes, **params)
        return MultiViewIB(self.view_dims, self.num_classes, **params)

    def forward(self, model: nn.Module, batch: MvcBatch, needs: frozenset[str]) -> ViewOutputs:
        out = model(batch.views, needs)
        out.target = batch.target
        return out

    def losses(self, model: nn.Module, outputs: ViewOutputs, batch: MvcBatch) -> dict[str, Tensor]:
        lc: MvcLossConfig = self.config.section("loss")
        y, n = outputs.target, outputs.n_views
        ls = lc.label_smoothing
        if isinstance(model, MvNNcor):
            return {"ce_weighted": model.loss(outputs, y, ls)}
        terms: dict[str, Tensor] = {}
        if lc.ce_obs:
            logits = outputs.task_obs_logits.reshape(-1, outputs.task_obs_logits.shape[-1])
            terms["ce_obs"] = lc.ce_obs * F.cross_entropy(logits, y.repeat(n), label_smoothing=ls)
        if lc.ce_rep and outputs.task_rep_logits is not None:
            logits = outputs.task_rep_logits.reshape(-1, outputs.task_rep_logits.shape[-1])
            terms["ce_rep"] = lc.ce_rep * F.cross_entropy(logits, y.repeat(n), label_smoothing=ls)
        if lc.ce_fused:
            terms["ce_fused"] = lc.ce_fused * F.cross_entropy(
                outputs.task_fused_logits, y, label_smoothing=ls
            )
        if lc.rank:
            terms["rank"] = lc.rank * self.rank_loss(outputs, y, lc)
        return terms

    @staticmethod
    def rank_loss(outputs: ViewOutputs, y: Tensor, lc: MvcLossConfig) -> Tensor:
        """The per-view rank loss averaged over the views of ``loss.rank_on`` (v and/or z)."""
        feats = [outputs.obs_stack if f == "obs" else outputs.rep_stack for f in lc.rank_on]
        if len(feats) == 2 and feats[0] is feats[1]:  # no bottleneck: z is v
            feats = feats[:1]
        if lc.rank_type == "ranked-list":
            return ranked_list_views(
                feats, y, lc.ranked_list_alpha, lc.ranked_list_margin, lc.ranked_list_temperature
            )
        return batch_hard_triplet_views(feats, y, lc.rank_margin)

    # -- evaluation -------------------------------------------------------------------------
    def eval_batches(self, split: str):
        """This rank's batches of ``split``: rows ``[b * E, (b + 1) * E)`` for its ``b``."""
        if split not in ("val", "test"):
            raise ValueError(f"the MVC task has no {split!r} split (only 'val' and 'test')")
        views, labels = self.parts[split]
        yield from self._eval_batches(views, labels)

    def _eval_batches(self, views: list[ViewMatrix], labels: Tensor):
        n, size = len(labels), self.config.train.eval_batch_size or self.eval_batch_size
        for b in self.eval_shard(-(-n // size)):
            s = slice(b * size, min((b + 1) * size, n))
            yield MvcBatch([v.take(s) for v in views], labels[s])

    def predict_step(self, model: nn.Module, batch: MvcBatch) -> dict[str, Tensor]:
        return {"pred": model(batch.views).task_fused_logits.argmax(-1), "label": batch.target}

    def evaluate_views(self, model: nn.Module, raw_views: list[Any], labels: Any) -> float:
        """Accuracy on other raw views (e.g. corrupted test data), standardised like training."""
        views = apply_standardizer(raw_views, self.stats) if self.stats else raw_views
        mats = [ViewMatrix(x, self.device) for x in views]
        target = torch.as_tensor(np.asarray(labels, dtype=np.int64), device=self.device)
        score = score_batches(self, model, self._eval_batches(mats, target))
        return score.metrics["accuracy"]

    def record_fields(self) -> dict[str, Any]:
        mc = dataclasses.asdict(self.model_config())
        name = mc.pop("name")
        mc.update(view_dims=list(self.view_dims), num_classes=self.num_classes)
        return {
            "benchmark": {
                "name": self.benchmark.name,
                "version": int(getattr(self.benchmark, "version", 1)),
                "data_sha256": self.data.data_sha256,
                "split_id": self.split.split_id,
                "split_sha256": self.split.sha256,
                "trial": None,
            },
            "protocol": self.protocol_id,
            "model": {"name": name, "params": mc},
        }
