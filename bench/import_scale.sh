#!/usr/bin/env bash
# import_scale.sh — throughput and peak memory of `shardrec data import` on a
# generated file of real-dataset size (datasets/README.md, "Scale").
#   bench/import_scale.sh [movielens|netflix] [LINES] [BUILD_DIR]
# movielens (default): a 20 M-line ratings.csv shaped like ML-20M (138,493
# users, ~27k items, half-star ratings); netflix: a 100 M-line
# combined_data_1.txt (17,770 movies). The file goes to $TMPDIR (or /tmp) and
# is removed at the end; each import runs under /usr/bin/time -v.
set -euo pipefail
format=${1:-movielens}
build=${3:-build}
dir=$(mktemp -d "${TMPDIR:-/tmp}/shardrec-import-scale.XXXXXX")
trap 'rm -rf "$dir"' EXIT

case $format in
  movielens)
    lines=${2:-20000000}
    input=$dir/ratings.csv
    awk -v lines="$lines" -v users=138493 'BEGIN {
      srand(12345); print "userId,movieId,rating,timestamp"; per = lines / users; n = 0
      for (u = 1; u <= users && n < lines; u++) {
        k = int(per * 2 * rand()) + 1; if (u == users || n + k > lines) k = lines - n
        for (j = 0; j < k; j++)
          printf "%d,%d,%g,%d\n", u, 4 * int(27000 * rand() * rand()) + 1, (int(rand() * 10) + 1) / 2,
                 1100000000 + int(rand() * 300000000)
        n += k } }' > "$input"
    runs=("--heldout-users 10000" "--heldout-users 10000 --min-rating none"
          "--min-rating none --protocol weak --holdout temporal --keep-values")
    ;;
  netflix)
    lines=${2:-100000000}
    input=$dir/combined_data_1.txt
    awk -v lines="$lines" 'BEGIN {
      srand(7); movies = 17770; per = lines / movies; n = 0
      for (m = 1; m <= movies && n < lines; m++) {
        print m ":"; k = int(per * 2 * rand()) + 1; if (m == movies || n + k > lines) k = lines - n
        for (j = 0; j < k; j++)
          printf "%d,%d,2005-%02d-%02d\n", int(2649429 * rand()) + 1, int(rand() * 5) + 1, int(rand() * 12) + 1,
                 int(rand() * 28) + 1
        n += k } }' > "$input"
    runs=("--heldout-users 40000")
    ;;
  *) echo "usage: $0 [movielens|netflix] [LINES] [BUILD_DIR]" >&2; exit 2 ;;
esac

echo "$(wc -l < "$input") lines, $(du -h "$input" | cut -f1) in $input"
for options in "${runs[@]}"; do
  echo "== shardrec data import $options"
  # shellcheck disable=SC2086  # the options are words
  /usr/bin/time -v "$build/shardrec" data import -o "$dir/out.h5" $options "$input" 2>&1 |
    grep -E '^(read|kept|wrote)|Maximum resident|Elapsed'
done
