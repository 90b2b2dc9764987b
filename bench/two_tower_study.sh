#!/usr/bin/env bash
# two_tower_study.sh — what each part of the two-tower recipe buys.
#
# DATA quickstart or sparse (the first study): held-out test Recall@50 over
# several seeds for
#   - the reference run (SSL on with CFM, streaming logQ outside the temperature),
#   - SSL off, logQ off, logQ inside the temperature (methods.md's literal
#     (s - log p)/tau), static logQ, random instead of correlated masking;
#   - cross-device vs local negatives on 2 and 4 ranks at the same per-rank batch.
# quickstart: data/synth.h5 (20k users, 4k items, ~25 items per user); sparse:
# data/synth-sparse.h5 (20k users, 20k items, ~8 items per user).
# PARTS: all, single (the 1-rank variants) or ranks (the 2- and 4-rank ones).
#
# DATA longtail or cold (issue 17: where SSL and features pay off): test
# Recall@50 overall and per popularity slice (eval.slices: head, torso, tail of
# training popularity, and cold-start items) for SSL off / RFM / CFM, the SSL
# weight, the batch size, item towers with and without ids (and ids only), and
# in-batch vs mixed negatives where loss.uniform_negatives exists. Data: the
# long-tail benchmark of `data synth --causal-features` (item features determine
# the factors: 3 informative and 2 noise multi-valued features, Zipf skew 1.2,
# 6000 users x 6000 items, ~8 items per user: most items have a handful of
# interactions); `cold` is the same with 10 % of the items held out of training
# entirely (--cold-items 0.1). Towers are small (feature_dim 16, [64], d 32) so
# that 3 seeds of every variant fit a shared 2-core machine. PARTS: all, or core
# (SSL off / RFM / CFM and the item towers with and without ids only).
#
# Prints a markdown table (mean ± standard deviation over the seeds).
#   bench/two_tower_study.sh [EPOCHS] [SEEDS] [DATA] [PARTS] [BUILD_DIR]   e.g. 2 "1 2 3" quickstart all build
#   bench/two_tower_study.sh 8 "1 2 3" longtail; bench/two_tower_study.sh 8 "1 2 3" cold core
set -euo pipefail
cd "$(dirname "$0")/.."
epochs=${1:-2}
seeds=${2:-"1 2 3"}
dataset=${3:-quickstart}
parts=${4:-all}
build=${5:-build}
bin=$build/shardrec
mkdir -p data
case $dataset in
  quickstart) data=data/synth.h5 synth=(--users 20000 --items 4000) ;;
  sparse) data=data/synth-sparse.h5 synth=(--users 20000 --items 20000 --mean-items 8) ;;
  longtail | cold)
    data=data/synth-longtail.h5 synth=(--users 6000 --items 6000 --mean-items 8 --skew 1.2 --causal-features)
    [[ $dataset == cold ]] && data=data/synth-longtail-cold.h5 synth+=(--cold-items 0.1)
    ;;
  *)
    echo "unknown dataset '$dataset' (quickstart, sparse, longtail or cold)" >&2
    exit 2
    ;;
esac
heldout=2000
[[ $dataset == longtail || $dataset == cold ]] && heldout=600
[[ -f $data ]] || "$bin" data synth -o "$data" "${synth[@]}" --heldout $heldout --seed 98765 >/dev/null
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 \
  OMPI_MCA_btl_tcp_if_include=lo OMPI_MCA_oob_tcp_if_include=lo OMPI_MCA_hwloc_base_binding_policy=none
work=$(mktemp -d "${TMPDIR:-/tmp}/shardrec-tt-study.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Common settings (configs/synth-twotower.yaml's recipe) for a fixed number of epochs.
common=(--set data.path="$data" --set model.type=twotower --set train.lr=5e-3 --set loss.logq_scaled=false
  --set train.epochs="$epochs" --set train.eval_every="$epochs" --set train.select_metric=recall@50
  --set checkpoint.every_epochs=0 --set run.threads=1)

# recall_at_50 NAME RANKS GLOBAL_BATCH SEED [--set k=v ...]: trains, prints test Recall@50.
recall_at_50() {
  local name=$1 ranks=$2 batch=$3 seed=$4
  shift 4
  local out
  out=$(mpiexec -n "$ranks" "$bin" train /dev/null --run-dir "$work/$name-$seed" "${common[@]}" \
    --set train.batch_size="$batch" --set run.seed="$seed" "$@" 2>&1) || {
    echo "$out" >&2
    exit 1
  }
  # Rank 0's "test recall@20 ...  recall@50 X ..." line (prefixed by the rank on N ranks).
  echo "$out" | sed -n 's/^\(\[[^]]*\] \)*test recall@20 [0-9.]*  recall@50 \([0-9.]*\).*/\2/p'
}

row() { # row LABEL VALUES...
  local label=$1
  shift
  printf '| %s | %s | %s |\n' "$label" "$*" "$(printf '%s\n' "$@" | awk '{s+=$1; q+=$1*$1; n++}
    END {m=s/n; v=q/n-m*m; if (v<0) v=0; printf "%.4f ± %.4f", m, sqrt(v)}')"
}

# ---- issue 17: per-slice figures on the long-tail benchmark -------------------------------
if [[ $dataset == longtail || $dataset == cold ]]; then
  sliced=(--set model.feature_dim=16 --set model.tower_hidden=[64] --set model.embedding_dim=32
    --set eval.slices=[popularity] --set eval.metrics=[recall@20,recall@50,ndcg@100])
  # slice_recalls NAME SEED [--set k=v ...]: trains on 1 rank, prints test Recall@50
  # overall, head, torso, tail and cold ("-" where a slice has no figure).
  slice_recalls() {
    local name=$1 seed=$2
    shift 2
    local out
    out=$("$bin" train /dev/null --run-dir "$work/$name-$seed" "${common[@]}" "${sliced[@]}" \
      --set train.batch_size=512 --set run.seed="$seed" "$@" 2>&1) || {
      echo "$out" >&2
      exit 1
    }
    python3 - "$work/$name-$seed/metrics.jsonl" <<'PY'
import json, sys
test = [json.loads(l) for l in open(sys.argv[1]) if '"type":"test"' in l][-1]
cells = [test["recall@50"]] + [test["slices"].get(s, {}).get("recall@50", "-") for s in ("head", "torso", "tail", "cold")]
print(" ".join(str(c) for c in cells))
PY
  }
  stat() { # mean ± sd of the arguments, or - when there are none
    printf '%s\n' "$@" | awk '$1 != "-" {s+=$1; q+=$1*$1; n++}
      END {if (!n) {print "-"; exit} m=s/n; v=q/n-m*m; if (v<0) v=0; printf "%.4f ± %.4f", m, sqrt(v)}'
  }
  echo "| variant ($dataset data, $epochs epochs, seeds $seeds) | all | head | torso | tail | cold |"
  echo "|---|---|---|---|---|---|"
  labels=("SSL off" "RFM, weight 0.2" "CFM, weight 0.2" "CFM, weight 0.05" "CFM, weight 1.0"
    "CFM, batch 128" "CFM, batch 2048" "SSL off, features without ids" "CFM, features without ids"
    "SSL off, ids only")
  overrides=("--set ssl.enabled=false" "--set ssl.masking=rfm" "" "--set ssl.weight=0.05" "--set ssl.weight=1.0"
    "--set train.batch_size=128" "--set train.batch_size=2048" "--set ssl.enabled=false --set model.item_features=[all]"
    "--set model.item_features=[all]" "--set ssl.enabled=false --set model.item_features=[item_id]")
  if grep -q 'loss.uniform_negatives' docs/config.md; then
    labels+=("CFM, mixed negatives (loss.uniform_negatives 512)")
    overrides+=("--set loss.uniform_negatives=512")
  fi
  for i in "${!labels[@]}"; do
    # PARTS core: SSL off / RFM / CFM and the item towers only (0-2, 7-9).
    [[ $parts == core ]] && ((i > 2 && i < 7 || i > 9)) && continue
    rows=()
    for s in $seeds; do
      # shellcheck disable=SC2086 # the overrides are zero or more --set pairs
      rows+=("$(slice_recalls "s$i" "$s" ${overrides[$i]})")
    done
    cells=()
    for c in 1 2 3 4 5; do
      # shellcheck disable=SC2046 # one value per seed
      cells+=("$(stat $(printf '%s\n' "${rows[@]}" | cut -d' ' -f$c))")
    done
    printf '| %s | %s | %s | %s | %s | %s |\n' "${labels[$i]}" "${cells[@]}"
  done
  first=$(printf '%s\n' $seeds | head -1)
  python3 - "$work/s0-$first/metrics.jsonl" <<'PY'
import json, sys
pop = [json.loads(l) for l in open(sys.argv[1]) if '"type":"test_popularity"' in l][-1]
cells = [pop["recall@50"]] + [pop["slices"].get(s, {}).get("recall@50", "-") for s in ("head", "torso", "tail", "cold")]
print("| popularity baseline | " + " | ".join(c if c == "-" else "%.4f" % c for c in cells) + " |")
PY
  exit 0
fi

echo "| variant ($dataset data, $epochs epochs) | test Recall@50 per seed ($seeds) | mean ± sd |"
echo "|---|---|---|"
labels=("SSL on (CFM), streaming logQ: reference" "SSL off" "logQ off" "logQ inside tau (methods.md literal)"
  "static logQ" "RFM instead of CFM")
overrides=("" "--set ssl.enabled=false" "--set loss.logq=none" "--set loss.logq_scaled=true"
  "--set loss.logq=static" "--set ssl.masking=rfm")
for i in "${!labels[@]}"; do
  [[ $parts == ranks ]] && break
  values=()
  for s in $seeds; do
    # shellcheck disable=SC2086 # the override is one or zero --set pairs
    values+=("$(recall_at_50 "v$i" 1 512 "$s" ${overrides[$i]})")
  done
  row "1 rank, batch 512: ${labels[$i]}" "${values[@]}"
done
for ranks in 2 4; do
  [[ $parts == single ]] && break
  for cross in true false; do
    values=()
    for s in $seeds; do
      values+=("$(recall_at_50 "x$ranks$cross" "$ranks" $((512 * ranks)) "$s" --set dist.cross_device_negatives=$cross)")
    done
    row "$ranks ranks x 512 per rank, cross-device negatives $cross" "${values[@]}"
  done
done
