#!/usr/bin/env bash
# two_tower_study.sh — what each part of the two-tower recipe buys. Every
# variant is a `shardrec sweep` over the seeds (run directories
# WORK/<variant>/<key=value>_seed=S); the tables are `shardrec runs` over them
# (mean ± sample standard deviation over the seeds).
#
# DATA quickstart or sparse (the first study): held-out test Recall@50 for
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
# in-batch vs mixed negatives (loss.uniform_negatives). Data: the long-tail
# benchmark of `data synth --causal-features` (item features determine the
# factors: 3 informative and 2 noise multi-valued features, Zipf skew 1.2,
# 6000 users x 6000 items, ~8 items per user: most items have a handful of
# interactions); `cold` is the same with 10 % of the items held out of training
# entirely (--cold-items 0.1). Towers are small (feature_dim 16, [64], d 32) so
# that 3 seeds of every variant fit a shared 2-core machine; validated every
# EPOCHS/6 epochs, the test figures are those of the best validation Recall@50.
# PARTS: all, or core (SSL off / RFM / CFM and the item towers only).
#
# DATA ml1m: the same variants on MovieLens-1M with its real features (the
# towers and features of configs/ml1m-twotower.yaml; "without ids" is the
# item tower over genres and year_bucket). Import it first, as that config
# says, to data/ml-1m.h5.
#
#   bench/two_tower_study.sh [EPOCHS] [SEEDS] [DATA] [PARTS] [BUILD_DIR]   e.g. 2 "1 2 3" quickstart all build
#   bench/two_tower_study.sh 30 "1 2 3" longtail; bench/two_tower_study.sh 30 "1 2 3" cold core
# STUDY_WORK=DIR keeps the runs in DIR (a second call continues them) instead
# of a temporary directory.
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
  ml1m)
    data=data/ml-1m.h5
    [[ -f $data ]] || {
      echo "ml1m: $data is missing; import MovieLens-1M first (configs/ml1m-twotower.yaml):" >&2
      echo "  $bin data import -o $data ml-1m/ratings.dat --movies ml-1m/movies.dat --users ml-1m/users.dat" \
        "--protocol weak --holdout temporal" >&2
      exit 2
    }
    ;;
  *)
    echo "unknown dataset '$dataset' (quickstart, sparse, longtail, cold or ml1m)" >&2
    exit 2
    ;;
esac
# Per-slice studies (issue 17): the long-tail benchmark and ML-1M.
sliced=0 features_without_ids="[all]"
[[ $dataset == longtail || $dataset == cold || $dataset == ml1m ]] && sliced=1
[[ $dataset == ml1m ]] && features_without_ids="[genres, year_bucket]"
heldout=2000
((sliced)) && heldout=600
[[ -f $data ]] || "$bin" data synth -o "$data" "${synth[@]}" --heldout $heldout --seed 98765 >/dev/null
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 \
  OMPI_MCA_btl_tcp_if_include=lo OMPI_MCA_oob_tcp_if_include=lo OMPI_MCA_hwloc_base_binding_policy=none
work=${STUDY_WORK:-$(mktemp -d "${TMPDIR:-/tmp}/shardrec-tt-study.XXXXXX")}
[[ -n ${STUDY_WORK:-} ]] || trap 'rm -rf "$work"' EXIT
mkdir -p "$work"

# Common settings (configs/synth-twotower.yaml's recipe) for a fixed number of epochs.
eval_every=$epochs
((sliced)) && eval_every=$(((epochs + 5) / 6))
cat >"$work/study.yaml" <<YAML
run: {out_dir: $work, threads: 1, log_level: warn}
data: {path: $data}
model: {type: twotower}
train: {lr: 5.0e-3, epochs: $epochs, eval_every: $eval_every, select_metric: recall@50, batch_size: 512}
loss: {logq_scaled: false}
checkpoint: {every_epochs: 0}
YAML
if ((sliced)); then
  cat >>"$work/study.yaml" <<YAML
eval: {slices: [popularity], metrics: [recall@20, recall@50, ndcg@100]}
YAML
  model="{type: twotower, feature_dim: 16, tower_hidden: [64], embedding_dim: 32}"
  [[ $dataset == ml1m ]] && model="{type: twotower, query_features: [history, user_id, gender, age, occupation, \
zip3], item_features: [item_id, genres, year_bucket], feature_dim: 32, tower_hidden: [256], embedding_dim: 64}"
  sed -i "s/^model: .*/model: $model/" "$work/study.yaml"
fi

# variant NAME [sweep options...]: a sweep over the seeds into $work/NAME; its
# log is $work/NAME.log (a failed run stops the study, showing the log).
variant() {
  local name=$1
  shift
  "$bin" sweep "$work/study.yaml" --name "$name" --seeds "${seeds// /,}" "$@" >"$work/$name.log" 2>&1 || {
    cat "$work/$name.log" >&2
    exit 1
  }
}

# ---- issue 17: per-slice figures on the long-tail benchmark and ML-1M ----------------------
if ((sliced)); then
  variant ssl-off --grid ssl.enabled=false
  variant masking --grid ssl.masking=rfm,cfm                   # SSL on, weight 0.2
  if [[ $parts != core ]]; then
    variant weight --grid ssl.weight=0.05,1.0
    variant batch --grid train.batch_size=128,2048
  fi
  variant without-ids --grid ssl.enabled=false,true --set "model.item_features=$features_without_ids"
  variant ids-only --grid ssl.enabled=false --set "model.item_features=[item_id]"
  [[ $parts == core ]] || variant mixed-negatives --grid loss.uniform_negatives=512
  echo "Two-tower study: $dataset data, $epochs epochs, seeds $seeds: test Recall@50 overall and per slice"
  echo "(mean ± sd over the seeds; - where a slice has no figure)"
  echo
  for slice in "" head/ torso/ tail/ cold/; do
    "$bin" runs "$work" --format json --metric "${slice}recall@50" >"$work/runs-${slice%/}.json"
  done
  # One markdown table: a row per variant, a column per slice, then the
  # popularity baseline (the test_popularity record of the first run).
  /usr/bin/env python3 - "$work" <<'PY'
import glob, json, math, os, sys
work = sys.argv[1]
slices = ["", "head", "torso", "tail", "cold"]
tables = {s: json.load(open(os.path.join(work, "runs-%s.json" % s))) for s in slices}
def cell(stat):
    m = stat.get("mean") if stat else None
    if m is None or (isinstance(m, float) and math.isnan(m)):
        return "-"
    return "%.4f" % m if stat.get("sd") is None else "%.4f ± %.4f" % (m, stat["sd"])
print("| variant (sweep/grid value) | all | head | torso | tail | cold |")
print("|---|---|---|---|---|---|")
for i, row in enumerate(tables[""]):
    cells = [cell(tables[s][i].get("test")) for s in slices]
    print("| %s | %s |" % (row["run"], " | ".join(cells)))
first = sorted(glob.glob(os.path.join(work, "*", "*", "metrics.jsonl")))[0]
pop = [json.loads(l) for l in open(first) if '"type":"test_popularity"' in l][-1]
cells = [pop["recall@50"]] + [pop.get("slices", {}).get(s, {}).get("recall@50", "-") for s in slices[1:]]
print("| popularity baseline | " + " | ".join(c if c == "-" else "%.4f" % c for c in cells) + " |")
PY
  exit 0
fi

if [[ $parts != ranks ]]; then
  variant reference --grid ssl.masking=cfm # SSL on (CFM), streaming logQ outside tau
  variant ssl-off --grid ssl.enabled=false
  variant logq --grid loss.logq=none,static
  variant logq-inside-tau --grid loss.logq_scaled=true # methods.md's literal (s - log p)/tau
  variant rfm --grid ssl.masking=rfm
fi
if [[ $parts != single ]]; then
  for ranks in 2 4; do # the same per-rank batch (512), cross-device vs local negatives
    variant "ranks$ranks" --grid dist.cross_device_negatives=true,false --set train.batch_size=$((512 * ranks)) \
      --launcher "mpiexec -n $ranks"
  done
fi
echo "Two-tower study: $dataset data, $epochs epochs, seeds $seeds (test Recall@50: mean ± sd over the seeds)"
echo
"$bin" runs "$work" --format md --metric recall@50
