"""The multi-view classification (MVC) task: MvNNcor + bottlenecks on in-memory feature views.

Data path: the benchmark's :class:`~mv2d_bench.loaders.mvc.MvcData` is split per class
(``data.split_seed``, ``data.fractions``), each view standardised with training statistics and
kept in memory as one float32 tensor per view and split. An epoch draws one permutation from the
trainer's generator, gathers each training view once in that order, and yields contiguous
slices of ``train.batch_size`` rows (no per-item collation). Views too large to hold densely
(sparse Reuters) stay ``scipy.sparse`` and are densified one batch at a time.

Task loss (``[loss]``, :class:`MvcLossConfig`)::

    ce_obs   * mean_i CE(P_vi, y)        cross-entropy on each observation head
    ce_rep   * mean_i CE(P_zi, y)        on each bottleneck head (not with the bottleneck off)
    ce_fused * CE(P_Z, y)                on the relation-fused prediction
    rank     * mean_i triplet(z_i, y)    batch-hard margin ranking loss on each representation

Reported metric: ``accuracy`` (percent) of the fused prediction P_Z (protocol mvc/accuracy@1).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mv2d_bench.harness.evaluation import score_batches
from mv2d_bench.harness.task import Task
from mv2d_bench.leaderboards import protocols
from mv2d_bench.loaders.base import DataError
from mv2d_bench.loaders.mvc import MvcData
from mv2d_bench.loaders.standardize import apply_standardizer, fit_standardizer
from mv2d_bench.models.mvnncor import MvNNcor
from mv2d_bench.views import ViewOutputs

PROTOCOL = "mvc/accuracy@1"
DENSE_LIMIT_BYTES = 1 << 30
"""Sparse views whose dense float32 copy would exceed this stay sparse (densified per batch)."""


@dataclass
class MvcModelConfig:
    name: str = "mvnncor"
    hidden: list[int] = field(default_factory=lambda: [512, 256])
    """Widths of each view's MLP (the last is the observation v_i)."""
    dropout: float = 0.5
    bottleneck: bool = True
    """False: the 'no bottleneck' ablation (z_i = v_i)."""
    z_dim: int = 128
    bottleneck_hidden: int = 128
    """Hidden width of the bottleneck MLP v -> 2 x z_dim (0: one linear map)."""
    min_std: float = 1e-4
    relation_rank: int = 16
    """Rank r of the bilinear view-pair relations."""
    classifier_hidden: int = 128
    """Hidden width of each view's classifier inside the fusion."""
    fusion_dropout: float = 0.5


@dataclass
class MvcLossConfig:
    ce_obs: float = 1.0
    ce_rep: float = 1.0
    ce_fused: float = 1.0
    rank: float = 1.0
    rank_margin: float = 0.3
    label_smoothing: float = 0.0


@dataclass
class MvcBatch:
    views: list[Tensor]
    target: Tensor


def batch_hard_triplet_views(feats: Tensor, labels: Tensor, margin: float) -> Tensor:
    """Batch-hard triplet loss for n views at once: ``feats`` (n, B, d) -> mean over views.

    Per view and anchor: the farthest same-label item (not itself) against the nearest
    other-label item, ``max(0, d_pos - d_neg + margin)``, averaged over anchors that have both.
    """
    sq = feats.pow(2).sum(-1)
    d2 = sq.unsqueeze(-1) + sq.unsqueeze(-2) - 2.0 * feats @ feats.transpose(-1, -2)
    dist = d2.clamp(min=1e-12).sqrt()  # (n, B, B)
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(labels.shape[0], dtype=torch.bool, device=labels.device)
    pos, neg = same & ~eye, ~same
    valid = pos.any(1) & neg.any(1)
    if not bool(valid.any()):
        return feats.new_zeros(())
    hardest_pos = dist.masked_fill(~pos, float("-inf")).amax(-1)
    hardest_neg = dist.masked_fill(~neg, float("inf")).amin(-1)
    loss = F.relu(hardest_pos - hardest_neg + margin)  # (n, B)
    return loss[:, valid].mean()


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
    sections: ClassVar[dict[str, type]] = {"model": MvcModelConfig, "loss": MvcLossConfig}
    has_validation: ClassVar[bool] = True

    eval_batch_size: int = 4096
    """Items per evaluation batch (batch b of a split goes to rank b % world_size)."""

    # -- data -------------------------------------------------------------------------------
    def setup(self) -> None:
        data = self.benchmark.load()
        if not isinstance(data, MvcData):
            raise DataError(
                f"benchmark {self.benchmark.name!r}: load() returned {type(data).__name__}; "
                "the MVC task expects MvcData"
            )
        self.data = data
        self.protocol = protocols.get(PROTOCOL)
        cfg = self.config.data
        self.split = data.make_split(cfg.split_seed, tuple(cfg.fractions))
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
        return -(-n // bs)

    def num_train_batches(self, epoch: int) -> int:
        return self._n_batches()

    def train_batches(self, epoch: int, generator: torch.Generator):
        views, labels = self.parts["train"]
        n, bs = len(labels), self.config.train.batch_size
        perm = torch.randperm(n, generator=generator).to(self.device)
        if all(not v.sparse for v in views):
            ordered = [v.data[perm] for v in views]  # one gather per view and epoch
            target = labels[perm]
            for b in range(self._n_batches()):
                s = slice(b * bs, min((b + 1) * bs, n))
                yield MvcBatch([x[s] for x in ordered], target[s])
        else:
            for b in range(self._n_batches()):
                idx = perm[b * bs : (b + 1) * bs]
                yield MvcBatch([v.take(idx) for v in views], labels[idx])

    # -- model ------------------------------------------------------------------------------
    def model_config(self) -> MvcModelConfig:
        return self.config.section("model")

    def build_model(self) -> nn.Module:
        mc = self.model_config()
        if mc.name != "mvnncor":
            raise ValueError(f"config: 'model.name' must be 'mvnncor' for MVC; got {mc.name!r}")
        return MvNNcor(
            self.view_dims,
            self.num_classes,
            hidden=mc.hidden,
            dropout=mc.dropout,
            bottleneck=mc.bottleneck,
            z_dim=mc.z_dim,
            bottleneck_hidden=mc.bottleneck_hidden,
            min_std=mc.min_std,
            relation_rank=mc.relation_rank,
            classifier_hidden=mc.classifier_hidden,
            fusion_dropout=mc.fusion_dropout,
        )

    def forward(self, model: nn.Module, batch: MvcBatch, needs: frozenset[str]) -> ViewOutputs:
        out = model(batch.views, needs)
        out.target = batch.target
        return out

    def losses(self, model: nn.Module, outputs: ViewOutputs, batch: MvcBatch) -> dict[str, Tensor]:
        lc: MvcLossConfig = self.config.section("loss")
        y, n = outputs.target, outputs.n_views
        ls = lc.label_smoothing
        terms: dict[str, Tensor] = {}
        if lc.ce_obs:
            logits = torch.cat(outputs.obs_logits)
            terms["ce_obs"] = lc.ce_obs * F.cross_entropy(logits, y.repeat(n), label_smoothing=ls)
        if lc.ce_rep and outputs.rep_logits is not outputs.obs_logits:
            logits = torch.cat(outputs.rep_logits)
            terms["ce_rep"] = lc.ce_rep * F.cross_entropy(logits, y.repeat(n), label_smoothing=ls)
        if lc.ce_fused:
            terms["ce_fused"] = lc.ce_fused * F.cross_entropy(
                outputs.fused_logits, y, label_smoothing=ls
            )
        if lc.rank:
            feats = torch.stack(outputs.rep)
            terms["rank"] = lc.rank * batch_hard_triplet_views(feats, y, lc.rank_margin)
        return terms

    # -- evaluation -------------------------------------------------------------------------
    def eval_batches(self, split: str):
        """This rank's batches of ``split``: rows ``[b * E, (b + 1) * E)`` for its ``b``."""
        if split not in ("val", "test"):
            raise ValueError(f"the MVC task has no {split!r} split (only 'val' and 'test')")
        views, labels = self.parts[split]
        yield from self._eval_batches(views, labels)

    def _eval_batches(self, views: list[ViewMatrix], labels: Tensor):
        n, size = len(labels), self.eval_batch_size
        for b in self.eval_shard(-(-n // size)):
            s = slice(b * size, min((b + 1) * size, n))
            yield MvcBatch([v.take(s) for v in views], labels[s])

    def predict_step(self, model: nn.Module, batch: MvcBatch) -> dict[str, Tensor]:
        return {"pred": model(batch.views).fused_logits.argmax(-1), "label": batch.target}

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
            "protocol": PROTOCOL,
            "model": {"name": name, "params": mc},
        }
