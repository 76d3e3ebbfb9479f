"""``mv2d-bench evaluate CHECKPOINT [--split val|test] [--json]``: score saved weights under the
run's protocol (also under torchrun, where N processes give the numbers of one)."""

from __future__ import annotations

import argparse
import json
import os

EPILOG = """\
examples:
  mv2d-bench evaluate runs/state.pt --json
  mv2d-bench evaluate runs/state.pt --split val --weights last
  torchrun --standalone --nproc-per-node 2 -m mv2d_bench evaluate runs/state.pt --json
  mv2d-bench evaluate runs/state.pt --predictions-out preds.npz   # then: mv2d-bench score ...

The configuration (benchmark, data split, model) is the one saved in the checkpoint; --root,
--device and --threads may differ from the run's (they do not change what it computes).
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="score the weights of a --checkpoint file under the run's protocol",
        description="Load a checkpoint written by 'mv2d-bench run --checkpoint', rebuild the "
        "run's task and model from the configuration saved in it, and score the saved weights "
        "on a split under the run's protocol (the protocol's streaming metric, synced across "
        "processes under torchrun).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="a file written by run --checkpoint")
    p.add_argument("--split", choices=("val", "test"), default="test", help="default: test")
    p.add_argument(
        "--weights",
        choices=("best", "last"),
        default="best",
        help="best: the epoch the run reports (default); last: the latest saved epoch",
    )
    p.add_argument("--root", help="data root (default: the run's)")
    p.add_argument("--device", help="cpu, cuda, cuda:N or auto (default: the run's)")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument(
        "--predictions-out",
        metavar="FILE.npz",
        help="also save the predictions (the npz keys 'mv2d-bench score' reads); one process",
    )
    p.add_argument("--json", action="store_true", help="print a JSON object instead of text")
    p.set_defaults(func=_evaluate)


def _evaluate(args: argparse.Namespace) -> int:
    from mv2d_bench.harness.distributed import env_world_size
    from mv2d_bench.harness.evaluation import evaluate_checkpoint

    if args.predictions_out and env_world_size() > 1:
        raise ValueError("--predictions-out: expected one process, found a torchrun world")
    result = evaluate_checkpoint(
        args.checkpoint,
        split=args.split,
        weights=args.weights,
        root=args.root,
        device=args.device,
        threads=args.threads,
        predictions_out=args.predictions_out,
    )
    if int(os.environ.get("RANK", "0")) != 0:
        return 0  # under torchrun only rank 0 prints
    score = result.score
    if args.json:
        out = {
            "checkpoint": args.checkpoint,
            "protocol": result.protocol,
            "split": result.split,
            "weights": result.weights,
            "epoch": result.epoch,
            "world_size": result.world_size,
            "backend": result.backend,
            "metrics": score.metrics,
            "per_trial": score.per_trial,
        }
        if args.predictions_out:
            out["predictions"] = args.predictions_out
        print(json.dumps(out, indent=2))
        return 0
    print(
        f"{result.protocol}: {args.checkpoint} ({result.split}, {result.weights} weights of "
        f"epoch {result.epoch}, {result.world_size} process(es))"
    )
    for name, value in score.metrics.items():
        print(f"  {name:<12} {value:.4f}")
    if len(score.per_trial) > 1:
        print(f"  ({len(score.per_trial)} trials; --json lists each)")
    if args.predictions_out:
        print(f"predictions: {args.predictions_out}")
    return 0
