"""Opening shardrec's HDF5 files with h5py.

Datasets and checkpoints are zstd-compressed by default (HDF5 filter 32015;
exports use gzip, which every HDF5 has). h5py reads zstd with PyPI's
hdf5plugin, or with shardrec's own plugin: found through HDF5_PLUGIN_PATH,
SHARDREC_PLUGIN_DIR, or where `cmake --install` put it.
"""

import os

import h5py

try:  # PyPI's hdf5plugin registers a zstd filter (Debian's python3-hdf5plugin does not)
    import hdf5plugin  # noqa: F401
except ImportError:
    pass

ZSTD_FILTER = 32015
PLUGIN_FILE = "libh5zstd.so"


def _plugin_dirs():
    """Where shardrec's own filter plugin may be: $SHARDREC_PLUGIN_DIR, the
    directory `cmake --install` put it in (_paths.py, written at install)."""
    dirs = [os.environ.get("SHARDREC_PLUGIN_DIR")]
    try:
        from . import _paths
        dirs.append(_paths.PLUGIN_DIR)
    except ImportError:  # running from the source tree
        pass
    return [d for d in dirs if d and os.path.isfile(os.path.join(d, PLUGIN_FILE))]


# Without a registered zstd filter, HDF5 loads shardrec's plugin from its
# search path when it meets filter 32015 (HDF5_PLUGIN_PATH works as well).
if not h5py.h5z.filter_avail(ZSTD_FILTER):
    for _dir in _plugin_dirs():
        h5py.h5pl.prepend(_dir.encode())  # first: HDF5 1.10 stops at a missing default directory

MISSING_ZSTD = (
    "{path}: {obj} is compressed with zstd (HDF5 filter 32015), which this "
    "h5py cannot find: set HDF5_PLUGIN_PATH (or SHARDREC_PLUGIN_DIR) to "
    "shardrec's plugin directory (build/plugins, or <prefix>/lib/hdf5/plugins), "
    "or pip install hdf5plugin and import it; or write the file with "
    "--compression gzip"
)


def open_file(path):
    """The file read-only (h5py.File)."""
    return h5py.File(path, "r")


def read(f, obj):
    """Dataset `obj` of `f` as a numpy array, with a message naming zstd
    when the filter is missing."""
    ds = f[obj]
    try:
        return ds[()]
    except OSError as e:
        if ZSTD_FILTER in filters_of(ds) and not h5py.h5z.filter_avail(ZSTD_FILTER):
            raise OSError(MISSING_ZSTD.format(path=f.filename, obj=obj)) from e
        raise


def filters_of(ds):
    """Filter ids of a dataset's pipeline, in order."""
    plist = ds.id.get_create_plist()
    return [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]


def attr_str(obj, name, default=None):
    """A string attribute as str (h5py returns bytes for fixed-length ones)."""
    if name not in obj.attrs:
        return default
    v = obj.attrs[name]
    return v.decode() if isinstance(v, bytes) else str(v)
