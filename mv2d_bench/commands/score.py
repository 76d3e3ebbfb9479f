"""``mv2d-bench score PROTOCOL --predictions FILE.npz [--json]``: score predictions made by any
code under an official protocol."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path

DESCRIPTION = (
    "Score predictions made by any code under an official, versioned protocol, exactly as a run "
    "of this suite is scored. The predictions are one .npz file (numpy.savez) whose keys each "
    "protocol documents below."
)


def protocols_help() -> str:
    """The npz keys of every installed protocol, read from the registry (each protocol class
    declares ``npz_keys``); a protocol that fails to load is listed with its error."""
    from mv2d_bench.registry import registry

    lines = ["installed protocols and the npz keys each reads:", ""]
    for entry in registry("protocols").entries():
        cls = entry.try_load()
        if cls is None:
            lines.append(f"  {entry.name}  (broken: {entry.error})")
            lines.append("")
            continue
        extra = ""
        if getattr(cls, "required_trials", ()):
            extra = f"; one of {len(cls.required_trials)} split trials per run"
        elif getattr(cls, "trials", 1) > 1:
            extra = f"; scored over {cls.trials} trials"
        lines.append(f"  {entry.name}  (from {entry.distribution} {entry.version}{extra})")
        if getattr(cls, "description", ""):
            for line in textwrap.wrap(cls.description, 88):
                lines.append(f"      {line}")
        keys = dict(getattr(cls, "npz_keys", {}))
        optional = dict(getattr(cls, "optional_npz_keys", {}) or {})
        for key, what in keys.items():
            lines += _key_lines(key, what)
        for key, what in optional.items():
            lines += _key_lines(key, f"(optional) {what}")
        lines.append("")
    lines.append(
        "example: python -c \"import numpy as np; np.savez('preds.npz', pred=pred, label=label)\""
        "; mv2d-bench score mvc/accuracy@1 --predictions preds.npz --json"
    )
    return "\n".join(lines)


def _key_lines(key: str, what: str) -> list[str]:
    wrapped = textwrap.wrap(what, 70) or [""]
    out = [f"    {key:<16} {wrapped[0]}"]
    out += [f"    {'':<16} {w}" for w in wrapped[1:]]
    return out


class _HelpWithProtocols(argparse.Action):
    """-h/--help that reads the registry only when help is asked for."""

    def __init__(
        self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None
    ):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        parser.epilog = protocols_help()
        parser.print_help()
        parser.exit()


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "score",
        help="score a predictions .npz under an official protocol",
        description=textwrap.fill(DESCRIPTION, 88),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        add_help=False,
    )
    p.add_argument("-h", "--help", action=_HelpWithProtocols, help="show this help (with the "
                   "npz keys of every installed protocol) and exit")  # fmt: skip
    p.add_argument(
        "protocol", metavar="PROTOCOL", help="a versioned protocol id, e.g. mvc/accuracy@1"
    )
    p.add_argument(
        "--predictions",
        required=True,
        action="append",
        metavar="FILE.npz|DIR",
        help="the predictions file (.npz); for protocols whose trials are separate runs "
        "(RegDB) give it once per trial, in trial order (1, 2, ...): each trial is scored and "
        "the mean over the trials reported. For a segmentation protocol also a folder in the "
        "benchmark's submission format (nuScenes: lidarseg/<split>/<token>_lidarseg.bin; "
        "SemanticKITTI: sequences/NN/predictions/*.label), scored against --root",
    )
    p.add_argument(
        "--rand-perm-cam",
        metavar="FILE",
        help="SYSU-MM01: the official rand_perm_cam.mat (the @2 ids need it; default: "
        "$MV2D_SYSU_RAND_PERM). The @1 ids use it when given (else seeds 0..9); the seeded "
        "ids never",
    )
    p.add_argument(
        "--root",
        metavar="DATA",
        help="data root whose labels a submission folder is scored against (default: "
        "$MV2D_DATA/<benchmark's folder>)",
    )
    p.add_argument(
        "-o",
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a benchmark option for folder scoring, e.g. val_sequences=08",
    )
    p.add_argument("--json", action="store_true", help="print a JSON object instead of text")
    p.set_defaults(func=_score)


def _score(args) -> int:
    from mv2d_bench.leaderboards.protocols import get
    from mv2d_bench.registry import registry

    cls = registry("protocols").load(args.protocol)
    if hasattr(cls, "gallery_info"):  # SYSU-MM01: where the trial galleries come from
        protocol = cls(rand_perm_cam_file=args.rand_perm_cam)
    elif args.rand_perm_cam:
        raise ValueError(
            f"--rand-perm-cam: given for {args.protocol}, but only the SYSU-MM01 protocols "
            "draw galleries from rand_perm_cam.mat"
        )
    else:
        protocol = get(args.protocol)
    files = list(args.predictions)
    if len(files) > 1 and not getattr(protocol, "required_trials", ()):
        raise ValueError(
            f"--predictions: given {len(files)} times, but {protocol.id} scores one "
            "predictions file (only protocols whose trials are separate runs take one per trial)"
        )
    if len(files) > 1:
        score = protocol.score_trials([protocol.read_npz(f) for f in files])
    elif Path(files[0]).is_dir():
        score = _score_folder(protocol, files[0], args)
    else:
        score = protocol.score_npz(files[0])
    gallery = protocol.gallery_info() if hasattr(protocol, "gallery_info") else None
    predictions = files[0] if len(files) == 1 else files
    if args.json:
        out = {
            "protocol": protocol.id,
            "predictions": predictions,
            "metrics": score.metrics,
            "per_trial": score.per_trial,
        }
        if gallery is not None:
            out["protocol_gallery"] = gallery
        print(json.dumps(out, indent=2))
        return 0
    print(f"{protocol.id}: {', '.join(files)}")
    if gallery is not None:
        src = gallery["source"]
        what = (
            f"rand_perm_cam.mat sha256 {gallery['rand_perm_cam_sha256']}"
            if src == "rand_perm_cam"
            else f"seeds {gallery['seeds'][0]}..{gallery['seeds'][-1]}"
        )
        print(f"  galleries: {src} ({what})")
    width = max([12] + [len(m.name) + 1 for m in protocol.metrics])
    for m in protocol.metrics:
        if m.name in score.metrics:
            unit = f" {m.unit}" if m.unit else ""
            print(f"  {m.name:<{width}} {score.metrics[m.name]:.4f}{unit}")
    if len(score.per_trial) > 1:
        what = "trial files" if len(files) > 1 else "trials"
        print(f"  (the mean over {len(score.per_trial)} {what}; --json lists each)")
    sys.stdout.flush()
    return 0


def _score_folder(protocol, folder: str, args):
    """A submission folder: only protocols with ``score_folder`` (segmentation) read one."""
    from mv2d_bench.commands.data import parse_options

    if not callable(getattr(protocol, "score_folder", None)):
        raise ValueError(
            f"{folder}: is a folder; protocol {protocol.id} scores a .npz file "
            f"(keys: {', '.join(protocol.npz_keys)})"
        )
    return protocol.score_folder(folder, args.root, **parse_options(args.option))
