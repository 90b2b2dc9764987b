#!/usr/bin/env bash
# install.sh BUILD_DIR — `cmake --install` into a scratch prefix installs the
# binary, the library and headers, the zstd filter plugin and the Python
# package, and the installed package reads a zstd dataset with no
# environment set (it finds the installed plugin itself).
set -u
build=$1
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >"$prefix/install.log" 2>&1 || { cat "$prefix/install.log"; exit 1; }
for f in bin/shardrec lib/libshardrec.a include/shardrec/model.h include/shardrec/h5io.h lib/hdf5/plugins/libh5zstd.so; do
  [[ -e $prefix/$f ]] || { echo "not installed: $f"; exit 1; }
done
python_dir=$(dirname "$(find "$prefix" -path '*/shardrec/__init__.py' | head -1)")
[[ -f $python_dir/models.py && -f $python_dir/_paths.py ]] || { echo "no Python package under $prefix"; exit 1; }
"$prefix/bin/shardrec" --version >"$prefix/version.txt" || exit 1
for field in commit build MPI HDF5 zstd libyaml OpenBLAS; do
  grep -q "^  $field " "$prefix/version.txt" || { echo "--version lacks $field:"; cat "$prefix/version.txt"; exit 1; }
done
grep -q "(core " "$prefix/version.txt" || { echo "--version lacks the OpenBLAS core"; exit 1; }
"$prefix/bin/shardrec" data synth -o "$prefix/d.h5" --users 50 --items 20 >/dev/null 2>&1 || exit 1
if /usr/bin/python3 -c 'import h5py, numpy, yaml' 2>/dev/null; then
  env -u HDF5_PLUGIN_PATH -u SHARDREC_PLUGIN_DIR PYTHONPATH="$(dirname "$python_dir")" /usr/bin/python3 -c "
import shardrec
d = shardrec.open_dataset('$prefix/d.h5')
assert d.n_users == 50 and d.train.nnz > 0, (d.n_users, d.train.nnz)
print('installed package read', d.train.nnz, 'interactions')" || exit 1
fi
echo "install: ok"
