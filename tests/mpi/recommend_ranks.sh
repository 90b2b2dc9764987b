#!/usr/bin/env bash
# recommend_ranks.sh SHARDREC MPIEXEC — `shardrec recommend` on 2 and 3 ranks
# (users split unevenly) writes the same TSV and HDF5 bytes' worth of lists
# as on one rank, for an autoencoder and a two-tower model.
set -u
bin=$1 mpiexec=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$bin" data synth -o "$work/data.h5" --users 400 --items 90 --heldout 40 >/dev/null || exit 1
for model in multvae twotower; do
  cat > "$work/$model.yaml" <<YAML
run: {name: $model, out_dir: $work, log_level: warn}
data: {path: $work/data.h5}
model: {type: $model, hidden: [16], latent_dim: 4, feature_dim: 4, tower_hidden: [8], embedding_dim: 4}
train: {epochs: 1, batch_size: 64, max_steps: 3}
YAML
  "$bin" train "$work/$model.yaml" >"$work/train.log" 2>&1 || { cat "$work/train.log"; exit 1; }
  ckpt=$work/$model/model.h5
  "$bin" recommend "$ckpt" -k 7 --batch 16 -o "$work/one.tsv" 2>/dev/null || exit 1
  "$bin" recommend "$ckpt" -k 7 --batch 16 -o "$work/one.h5" 2>/dev/null || exit 1
  for ranks in 2 3; do
    "$mpiexec" -n $ranks "$bin" recommend "$ckpt" -k 7 --batch 16 -o "$work/many.tsv" >"$work/run.log" 2>&1 ||
      { cat "$work/run.log"; exit 1; }
    "$mpiexec" -n $ranks "$bin" recommend "$ckpt" -k 7 --batch 16 -o "$work/many.h5" >"$work/run.log" 2>&1 ||
      { cat "$work/run.log"; exit 1; }
    cmp "$work/one.tsv" "$work/many.tsv" || { echo "$model: $ranks ranks wrote another TSV"; exit 1; }
    h5diff "$work/one.h5" "$work/many.h5" /recs /recs || { echo "$model: $ranks ranks wrote other /recs"; exit 1; }
    h5diff "$work/one.h5" "$work/many.h5" /users /users || { echo "$model: $ranks ranks wrote other /users"; exit 1; }
  done
  # Every user once (a user who has every item gets no line in the TSV).
  h5ls "$work/one.h5/recs/items" | grep -q "{400/Inf, 7}" || { echo "$model: /recs/items is not 400 x 7"; exit 1; }
done
echo "recommend_ranks: ok"
