#!/usr/bin/env bash
# two_tower_collapse.sh — the two-tower model on sparse static data over many
# epochs (issue 18): does validation Recall@20 hold, or does the model
# memorise the training pairs and collapse?
#
# Data: synthetic, shaped like a check-in log: 5 000 users (1 000 validation
# and 1 000 test users held out, strong protocol), 40 000 items generated
# (the ~18 000 that the 3 000 training users touch stay), ~25 interactions
# per user, Zipf popularity, no item features (so the item tower is item_id
# alone and every item is an id to memorise). Far fewer users than the 30 k
# of the report keep a 30-epoch run at a few minutes on one busy core (an
# epoch is ~75 k pairs); with fewer users per item the data are sparser, so
# the model memorises sooner than on the report's data. 8 000 users (6 000
# training users) collapse the same way: valid Recall@20 0.188 at epoch 3,
# 0.072 at epoch 8, 0.030 at epoch 15 and after.

# Model: the report's recipe (query tower over history, item tower over
# item_id, feature_dim 64, tower_hidden [256], d = 64, batch softmax tau 0.1,
# streaming logQ outside tau, SSL off, batch 1024, lr 5e-3), one process, one
# BLAS thread, validated every epoch.
#
#   bench/two_tower_collapse.sh [EPOCHS] [SEEDS] [VARIANTS] [BUILD_DIR]
#   e.g. bench/two_tower_collapse.sh 30 "1 2 3" "none default" build
#
# VARIANTS (space-separated names of the table below):
#   none      every regulariser off (the recipe as the report ran it)
#   default   configs' defaults for the regularisers (what a user gets)
#   hist      history dropout only          tower     tower dropout only
#   l2        embedding L2 only             or NAME=--set k=v,--set k=v (ad hoc)
# For each variant and seed it prints the validation Recall@20 curve, then a
# markdown row: best Recall@20 (mean ± sd over seeds), the epoch of the best,
# Recall@20 at the last epoch and last/best. COLLAPSE_WORK=DIR keeps the runs
# (logs, metrics.jsonl) in DIR instead of a temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."
epochs=${1:-30}
seeds=${2:-"1 2 3"}
variants=${3:-"none default"}
build=${4:-build}
bin=$build/shardrec
data=data/synth-checkin-5k.h5
mkdir -p data
[[ -f $data ]] || "$bin" data synth -o "$data" --users 5000 --items 40000 --mean-items 25 --heldout 1000 \
  --no-features --seed 98765 >/dev/null
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
work=${COLLAPSE_WORK:-$(mktemp -d "${TMPDIR:-/tmp}/shardrec-collapse.XXXXXX")}
[[ -n ${COLLAPSE_WORK:-} ]] || trap 'rm -rf "$work"' EXIT

# Every regulariser off: the recipe of the report.
off=(--set model.history_dropout=0 --set model.tower_dropout=0 --set loss.embedding_l2=0)
common=(--set data.path="$data" --set model.type=twotower --set "model.query_features=[history]"
  --set "model.item_features=[item_id]" --set model.feature_dim=64 --set "model.tower_hidden=[256]"
  --set model.embedding_dim=64 --set loss.temperature=0.1 --set loss.logq=streaming --set loss.logq_scaled=false
  --set ssl.enabled=false --set train.batch_size=1024 --set train.lr=5e-3 --set train.epochs="$epochs"
  --set train.eval_every=1 --set train.select_metric=recall@20 --set "eval.metrics=[recall@20,recall@50,ndcg@100]"
  --set checkpoint.every_epochs=0 --set run.threads=1)

overrides() { # overrides VARIANT: the --set arguments of a variant
  case $1 in
    none) echo "${off[*]}" ;;
    default) echo "" ;;
    hist) echo "${off[*]} --set model.history_dropout=${HIST:-0.5}" ;;
    tower) echo "${off[*]} --set model.tower_dropout=${TOWER:-0.2}" ;;
    l2) echo "${off[*]} --set loss.embedding_l2=${L2:-1}" ;;
    *=*) echo "${1#*=}" | tr ',' ' ' ;;
    *)
      echo "unknown variant '$1'" >&2
      exit 2
      ;;
  esac
}

# curve VARIANT SEED: trains; prints the validation Recall@20 of every epoch.
curve() {
  local dir=$work/${1%%=*}-$2
  # shellcheck disable=SC2046 # the overrides are separate --set words
  "$bin" train /dev/null --run-dir "$dir" --overwrite "${common[@]}" --set run.seed="$2" $(overrides "$1") \
    >"$dir.log" 2>&1 || {
    cat "$dir.log" >&2
    exit 1
  }
  sed -n 's/.*"type":"valid".*"recall@20":\([0-9.]*\).*/\1/p' "$dir/metrics.jsonl" | tr '\n' ' '
}

stats() { # stats VALUES...: mean ± sd
  printf '%s\n' "$@" | awk '{s+=$1; q+=$1*$1; n++} END {m=s/n; v=n>1?(q-n*m*m)/(n-1):0; if (v<0) v=0;
    printf "%.4f ± %.4f", m, sqrt(v)}'
}

echo "| variant | best valid Recall@20 | epoch of best | Recall@20 at epoch $epochs | last / best |"
echo "|---|---|---|---|---|"
for v in $variants; do
  best=() at=() last=() ratio=()
  for s in $seeds; do
    values=$(curve "$v" "$s")
    echo "# $v seed $s: $values" >&2
    read -r b e l < <(echo "$values" | awk '{for (i=1;i<=NF;i++) if ($i>b) {b=$i; e=i}; print b, e, $NF}')
    best+=("$b") at+=("$e") last+=("$l") ratio+=("$(awk -v l="$l" -v b="$b" 'BEGIN {print l/b}')")
  done
  printf '| %s | %s | %s | %s | %s |\n' "${v%%=*}" "$(stats "${best[@]}")" "${at[*]}" "$(stats "${last[@]}")" \
    "$(stats "${ratio[@]}")"
done
