"""The training progress bar (tqdm): one bar over all steps, the loss terms as its postfix."""

from __future__ import annotations

import sys
from typing import Any

from tqdm import tqdm


class Progress:
    def __init__(self, total: int | None, enabled: bool = True, desc: str = "train") -> None:
        self.bar = tqdm(
            total=total,
            desc=desc,
            disable=not enabled,
            mininterval=0.5,
            dynamic_ncols=True,
            file=sys.stderr,
            leave=False,
        )

    def step(self, n: int = 1) -> None:
        self.bar.update(n)

    def show(
        self, epoch: int, terms: dict[str, float], extra: dict[str, Any] | None = None
    ) -> None:
        post = {"ep": epoch}
        post.update({_short(k): f"{v:.3g}" for k, v in terms.items()})
        if extra:
            post.update({k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in extra.items()})
        self.bar.set_postfix(post, refresh=False)

    def close(self) -> None:
        self.bar.close()


def _short(name: str) -> str:
    return name.replace("obj/", "")
