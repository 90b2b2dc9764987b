#!/usr/bin/env bash
# soup-example.sh — the model-soup workflow end to end on synthetic data:
# train a base Mult-VAE, fine-tune three runs from it (train.init_from) with
# different seeds and learning rates, merge them with every method and print
# each method's validation table (ingredients, base, merged model).
#   launch/soup-example.sh [WORKDIR] [--small]
# --small shrinks everything so the whole example runs in seconds (used by ctest).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${SHARDREC_BIN:-$here/build/shardrec}
work=${1:-runs/soup-example}
users=6000 items=1500 base_epochs=10 ft_epochs=4 hidden=200 latent=64
if [[ "${2:-}" == "--small" ]]; then users=1200 items=300 base_epochs=3 ft_epochs=2 hidden=32 latent=8; fi
mkdir -p "$work"
"$bin" data synth -o "$work/data.h5" --users $users --items $items --heldout $((users / 10)) >/dev/null

cat > "$work/train.yaml" <<YAML
run: {out_dir: $work, log_level: warn}
data: {path: $work/data.h5}
model: {hidden: [$hidden], latent_dim: $latent, total_anneal_steps: 2000}
train: {batch_size: 100, epochs: $base_epochs}
YAML
"$bin" train "$work/train.yaml" --set run.name=base
ingredients=()
for i in 1 2 3; do
  lr=$(echo "1e-3 5e-4 2e-3" | cut -d' ' -f$i)
  "$bin" train "$work/train.yaml" --set run.name=ft$i --set run.seed=$((100 + i)) --set train.lr=$lr \
    --set train.epochs=$ft_epochs --set train.init_from="$work/base/model.h5"
  ingredients+=("$work/ft$i/model.h5")
done
for method in uniform greedy task-arithmetic ties delta delta-tensor; do
  base=()
  case $method in uniform|greedy) ;; *) base=(--base "$work/base/model.h5") ;; esac
  echo "== $method"
  "$bin" merge --method $method "${base[@]}" --eval -o "$work/soup-$method.h5" "${ingredients[@]}" 2>/dev/null |
    grep -v '^validation split'
done
