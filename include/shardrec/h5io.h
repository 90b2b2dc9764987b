/*
 * h5io.h — checked helpers over the HDF5 C API, shared by the dataset format
 * (dataset.c) and checkpoints.
 *
 * Every failure becomes an SR_FAIL message "<file>: <object>: <problem>", with
 * the innermost HDF5 diagnostic appended when HDF5 itself failed; HDF5's own
 * error printing is switched off. Datasets are chunked, compressed as the
 * file says (sr_h5_compression: byte shuffle then zstd (filter 32015,
 * h5zstd.h) or gzip, or neither) and Fletcher32-checksummed, with an
 * unlimited first dimension so that empty arrays are ordinary chunked datasets
 * every reader accepts.
 *
 * Files are written atomically: sr_h5_create() builds the file in memory,
 * sr_h5_commit() writes it to "<path>.tmp.<pid>", fsyncs and renames it over
 * <path> and fsyncs the directory, so a crash or a full disk never leaves a
 * half-written file under the real name (nor HDF5 holding a broken one).
 * Object names are absolute HDF5 paths ("/splits/train/indptr"); missing
 * intermediate groups are created on write.
 */
#ifndef SHARDREC_H5IO_H
#define SHARDREC_H5IO_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* In-memory element types; files store the little-endian type of the same width. */
typedef enum { SR_H5_INT64 = 0, SR_H5_INT32 = 1, SR_H5_FLOAT32 = 2, SR_H5_UINT8 = 3 } sr_h5_type;

/* How the datasets of a file are compressed. zstd needs the filter 32015
 * in the reader (hdf5plugin, or shardrec's plugin on HDF5_PLUGIN_PATH);
 * gzip (deflate) is built into every HDF5 library. */
typedef enum { SR_H5_ZSTD = 0, SR_H5_GZIP = 1, SR_H5_UNCOMPRESSED = 2 } sr_h5_codec;
/* "zstd", "gzip", "none", NULL-terminated (indexed by sr_h5_codec). */
extern const char *const sr_h5_codec_names[];

typedef struct {
  sr_h5_codec codec;
  int level; /* zstd 1..22, gzip 1..9; ignored when uncompressed */
} sr_h5_compression;

/* The codec's default level (zstd 3, gzip 4; measured in docs/compression.md). */
sr_h5_compression sr_h5_compression_of(sr_h5_codec codec);
/* Parses "zstd", "gzip", "none" or "zstd:LEVEL" / "gzip:LEVEL"; SR_EINVAL
 * with a message naming the codecs or the level range. */
int sr_h5_compression_parse(const char *text, sr_h5_compression *out);
/* "zstd:3", "gzip:4" or "none" into buf. */
void sr_h5_compression_format(sr_h5_compression c, char *buf, size_t cap);

typedef struct sr_h5file {
  hid_t id;                      /* HDF5 file handle; H5I_INVALID_HID when closed */
  char *path;                    /* the file's name (when writing: the name sr_h5_commit gives it) */
  int writing;                   /* built in memory by sr_h5_create, written out by sr_h5_commit */
  struct sr_h5_image *image;     /* writing: the memory HDF5 builds the file in (h5io.c) */
  sr_h5_compression compression; /* of every dataset written (set by sr_h5_create) */
} sr_h5file;

/* Opens an existing file read-only. SR_EIO if it cannot be opened at all,
 * SR_EFORMAT if it is not HDF5 ("x.bin is not an HDF5 file") or is damaged. */
int sr_h5_open(sr_h5file *f, const char *path);
/* Starts a new file that will become `path`, its datasets compressed as
 * `compression` says. It is built in memory (HDF5's core driver) and only
 * sr_h5_commit() touches the disk. */
int sr_h5_create(sr_h5file *f, const char *path, sr_h5_compression compression);
/* Finishes a file started by sr_h5_create(): its image (the memory HDF5
 * built it in, not a copy of it) is written to a
 * temporary name, fsync'ed, renamed over `path` and the directory fsync'ed
 * (sr_write_file_atomic). Disk errors (a full disk) come from our own write
 * with errno; the previous `path` stays intact. The handle is closed either way. */
int sr_h5_commit(sr_h5file *f);
/* Closes the file; a file being written that was not committed is discarded
 * (it only ever existed in memory). Safe on a closed handle. */
void sr_h5_close(sr_h5file *f);

/* 1 if the object (group or dataset) exists, else 0. Never fails. */
int sr_h5_exists(const sr_h5file *f, const char *obj);
int sr_h5_attr_exists(const sr_h5file *f, const char *obj, const char *name);
/* Creates a group that remembers the creation order of its members, so
 * sr_h5_list_group() returns them in the order they were written. */
int sr_h5_create_group(const sr_h5file *f, const char *group);
/* Names of the members of `group` (creation order when tracked, else by name):
 * *names is a malloc'd array of *n malloc'd strings (sr_h5_free_names). */
int sr_h5_list_group(const sr_h5file *f, const char *group, char ***names, int *n);
void sr_h5_free_names(char **names, int n);

/* Writes data[0..n) as a new 1-D dataset. */
int sr_h5_write_array(const sr_h5file *f, const char *obj, sr_h5_type type, const void *data, int64_t n);
/* Writes data (rows, cols), row-major, as a new 2-D dataset. */
int sr_h5_write_matrix(const sr_h5file *f, const char *obj, sr_h5_type type, const void *data, int64_t rows,
                       int64_t cols);
/* Writes a float32 tensor with its shape (ndim dims, as h5py shows it). */
int sr_h5_write_tensor(const sr_h5file *f, const char *obj, const float *data, int ndim, const int64_t *shape);
/* The shape of a dataset: *ndim dims into shape (at most max_dims; more is an error). */
int sr_h5_shape(const sr_h5file *f, const char *obj, int *ndim, int64_t *shape, int max_dims);
/* Reads a float32 tensor whose shape must equal `shape` (errors show both). */
int sr_h5_read_tensor(const sr_h5file *f, const char *obj, float *out, int ndim, const int64_t *shape);
/* A tensor written block by block (a model split across ranks): creates the
 * dataset of the whole shape, then writes the row-major block `data` of
 * extent count[] at offset[] (ndim dims each). */
int sr_h5_create_tensor(const sr_h5file *f, const char *obj, int ndim, const int64_t *shape);
int sr_h5_write_tensor_block(const sr_h5file *f, const char *obj, const float *data, int ndim, const int64_t *offset,
                             const int64_t *count);
/* Reads the block [offset, offset + count) of a float32 tensor whose whole
 * shape must equal `shape`. */
int sr_h5_read_tensor_block(const sr_h5file *f, const char *obj, float *out, int ndim, const int64_t *shape,
                            const int64_t *offset, const int64_t *count);
/* Length of a 1-D dataset (fails on any other rank). */
int sr_h5_array_length(const sr_h5file *f, const char *obj, int64_t *len);
/* Reads a whole 1-D dataset into a malloc'd buffer (*out; one byte even when
 * empty, so *out is never NULL), converting to `type`. expected_len >= 0 checks
 * the length; len_out (may be NULL) receives it. Integers and floats are not
 * converted into each other, and a value that does not fit `type` is an error. */
int sr_h5_read_array(const sr_h5file *f, const char *obj, sr_h5_type type, int64_t expected_len, void **out,
                     int64_t *len_out);
/* Reads elements [begin, end) of a 1-D dataset into out (end - begin elements). */
int sr_h5_read_range(const sr_h5file *f, const char *obj, sr_h5_type type, int64_t begin, int64_t end, void *out);

/* Fixed-length byte strings (raw ids, vocabularies): n strings of `width`
 * bytes at data[i * width], NUL-padded (a string of exactly `width` bytes has
 * no terminator). Stored as an HDF5 string type of that size, which h5py reads
 * as numpy dtype 'S<width>'. */
int sr_h5_write_strings(const sr_h5file *f, const char *obj, const char *data, int64_t n, int width);
/* *strings = 1 if the dataset holds strings, 0 if numbers. */
int sr_h5_holds_strings(const sr_h5file *f, const char *obj, int *strings);
/* Reads such a dataset: *out is malloc'd, *n strings of *width bytes each. */
int sr_h5_read_strings(const sr_h5file *f, const char *obj, char **out, int64_t *n, int *width);

/* Scalar attributes of a group or dataset (obj "/" for the file). Strings are
 * written as variable-length UTF-8; fixed-length strings are read as well. */
int sr_h5_write_attr_int64(const sr_h5file *f, const char *obj, const char *name, int64_t value);
int sr_h5_write_attr_string(const sr_h5file *f, const char *obj, const char *name, const char *value);
int sr_h5_read_attr_int64(const sr_h5file *f, const char *obj, const char *name, int64_t *value);
int sr_h5_write_attr_double(const sr_h5file *f, const char *obj, const char *name, double value);
int sr_h5_read_attr_double(const sr_h5file *f, const char *obj, const char *name, double *value);
/* buf receives the NUL-terminated string; a longer string is an error. */
int sr_h5_read_attr_string(const sr_h5file *f, const char *obj, const char *name, char *buf, size_t cap);
/* The same into a malloc'd string of the stored length (*out; NULL on failure). */
int sr_h5_read_attr_string_alloc(const sr_h5file *f, const char *obj, const char *name, char **out);

/* Names of every attribute of obj, by name (sr_h5_free_names). */
int sr_h5_list_attrs(const sr_h5file *f, const char *obj, char ***names, int *n);
/* Any attribute as display text: numbers ("3", "0.25", "[1, 2, 3]"), strings
 * as stored, other types described ("(compound, 4 elements)"). Text that does
 * not fit cap bytes is cut and ends in "...". For tools such as inspect. */
int sr_h5_format_attr(const sr_h5file *f, const char *obj, const char *name, char *buf, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
