#!/usr/bin/env bash
# Quality benchmark on the REAL recordings in ../shared/data: lay them out as Kaggle does,
# train every fold, predict, and score against the answers (read only by src.score, after
# predicting). Prints the test lwlrap and wall times. Extra arguments go to src.cv, e.g.
#   bash benchmarks/fat_real.sh --n-mels 64 --epochs 60 --use-noisy --mixup-alpha 0.4
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED="${SHARED:-../shared/data}"
OUT="${OUT:-/tmp/fat-real}"
[ -d "$OUT" ] || python "$SHARED/make_fat_layout.py" --out "$OUT"
t0=$(date +%s)
python -m src.cv --data-dir "$OUT" --fold all "$@" 2>&1 | grep -E "^(fold|oof|data|folds|strategy)" | tee /tmp/fat_real_cv.txt
t1=$(date +%s)
python -m src.predict --data-dir "$OUT" --out submissions/fat_real_submission.csv ${PREDICT_ARGS:-} 2>&1 | grep -E "^predict"
t2=$(date +%s)
python -m src.score submissions/fat_real_submission.csv "$OUT.solution.csv"
python - "$OUT" <<'PY'
import sys, pandas as pd
from src.kit.metrics import lwlrap
out = sys.argv[1]
sol = pd.read_csv(out + ".solution.csv").set_index("fname")
sub = pd.read_csv("submissions/fat_real_submission.csv").set_index("fname").loc[sol.index, sol.columns]
mix = sol.sum(axis=1) > 1
print(f"test lwlrap singles {lwlrap(sol[~mix].to_numpy(), sub[~mix].to_numpy()):.4f} ({(~mix).sum()} clips), "
      f"mixtures {lwlrap(sol[mix].to_numpy(), sub[mix].to_numpy()):.4f} ({mix.sum()} clips)")
PY
echo "wall time: cv --fold all $((t1 - t0)) s, predict $((t2 - t1)) s"
