/* h5io.c — checked HDF5 helpers: atomic files, compressed 1-D arrays, attributes (h5io.h). */
#include "shardrec/h5io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shardrec/error.h"
#include "shardrec/fsutil.h"
#include "shardrec/h5zstd.h"
#include "shardrec/mem.h"

/* Elements per chunk: 512 KiB of int64, small enough for HDF5's default 1 MiB
 * chunk cache, large enough that zstd sees repetitive structure. */
#define H5IO_CHUNK_ELEMS ((int64_t)1 << 16)

/* ---- errors ------------------------------------------------------------------ */

#define H5IO_DETAIL_MAX 256

/* H5Ewalk2 callback: the first entry of an upward walk is the innermost one. */
static herr_t keep_innermost(unsigned n, const H5E_error2_t *err, void *client_data) {
  if (n == 0 && err->desc) snprintf((char *)client_data, H5IO_DETAIL_MAX, "%s", err->desc);
  return 0;
}

/* Records "<file>: <obj>: <problem>" plus, when an HDF5 call has just failed,
 * the innermost message of its error stack (the most specific cause). Call it
 * right after the failing call: any later successful HDF5 call (even a close)
 * clears the stack. */
__attribute__((format(printf, 6, 7))) static int h5io_fail_at(const char *src, int line, int code, const sr_h5file *f,
                                                              const char *obj, const char *fmt, ...) {
  char problem[1024], detail[H5IO_DETAIL_MAX] = "";
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(problem, sizeof problem, fmt, ap);
  va_end(ap);
  if (H5Eget_num(H5E_DEFAULT) > 0) H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, keep_innermost, detail);
  H5Eclear2(H5E_DEFAULT);
  return sr_fail_at(src, line, code, "%s%s%s: %s%s%s%s", f->path, obj ? ": " : "", obj ? obj : "", problem,
                    detail[0] ? " (HDF5: " : "", detail, detail[0] ? ")" : "");
}
#define H5IO_FAIL(code, f, obj, ...) h5io_fail_at(__FILE__, __LINE__, (code), (f), (obj), __VA_ARGS__)

/* Before any file operation (both calls are idempotent): our messages replace
 * HDF5's stack dumps, and the zstd filter must be known before a compressed
 * chunk is read or written. */
static int h5io_init(void) {
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  return sr_h5zstd_register();
}

/* ---- types ------------------------------------------------------------------- */

static hid_t memory_type(sr_h5_type t) {
  switch (t) {
    case SR_H5_INT64:
      return H5T_NATIVE_INT64;
    case SR_H5_INT32:
      return H5T_NATIVE_INT32;
    case SR_H5_FLOAT32:
      return H5T_NATIVE_FLOAT;
    case SR_H5_UINT8:
      return H5T_NATIVE_UINT8;
  }
  SR_DIE("bad sr_h5_type %d", (int)t);
}

static hid_t file_type(sr_h5_type t) {
  switch (t) {
    case SR_H5_INT64:
      return H5T_STD_I64LE;
    case SR_H5_INT32:
      return H5T_STD_I32LE;
    case SR_H5_FLOAT32:
      return H5T_IEEE_F32LE;
    case SR_H5_UINT8:
      return H5T_STD_U8LE;
  }
  SR_DIE("bad sr_h5_type %d", (int)t);
}

static const char *type_name(sr_h5_type t) {
  static const char *const names[] = {"int64", "int32", "float32", "uint8"};
  return names[t];
}

static size_t type_size(sr_h5_type t) { return H5Tget_size(memory_type(t)); }

/* ---- files ------------------------------------------------------------------- */

/* Closing the file closes every object still open in it, so an error path that
 * forgot a handle cannot keep the file open (and unrenamable) behind our back. */
static hid_t strong_close_fapl(void) {
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG);
  return fapl;
}

int sr_h5_open(sr_h5file *f, const char *path) {
  *f = (sr_h5file){.id = H5I_INVALID_HID};
  SR_TRY(h5io_init());
  f->path = sr_strdup(path);
  /* open(2) first: its errno says precisely why (missing, permissions, ...). */
  int fd = open(path, O_RDONLY);
  if (fd < 0) {
    int e = errno;
    sr_h5_close(f);
    return SR_FAIL(SR_EIO, "cannot open '%s': %s", path, strerror(e));
  }
  struct stat st;
  int is_dir = fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
  close(fd);
  if (is_dir) {
    sr_h5_close(f);
    return SR_FAIL(SR_EIO, "cannot open '%s': it is a directory", path);
  }
  if (H5Fis_hdf5(path) <= 0) {
    sr_h5_close(f);
    H5Eclear2(H5E_DEFAULT);
    return SR_FAIL(SR_EFORMAT, "%s is not an HDF5 file", path);
  }
  hid_t fapl = strong_close_fapl();
  f->id = H5Fopen(path, H5F_ACC_RDONLY, fapl);
  int rc = f->id < 0 ? H5IO_FAIL(SR_EFORMAT, f, NULL, "damaged HDF5 file (truncated or corrupt)") : SR_OK;
  H5Pclose(fapl);
  if (rc != SR_OK) sr_h5_close(f);
  return rc;
}

/* The memory the core driver builds a new file in, followed through HDF5's
 * file image callbacks, so that sr_h5_commit writes it out as it is: taking
 * a copy (H5Fget_file_image) doubled the peak memory of a checkpoint. */
struct sr_h5_image {
  void *mem;   /* the driver's buffer: the file's bytes, zeros past its end */
  size_t size; /* bytes allocated */
};

static void *image_realloc(void *ptr, size_t size, H5FD_file_image_op_t op, void *udata) {
  (void)op;
  struct sr_h5_image *image = udata;
  void *grown = realloc(ptr, size);
  if (grown) *image = (struct sr_h5_image){grown, size};
  return grown; /* NULL: HDF5 reports the failure, ptr stays valid */
}
static void *image_malloc(size_t size, H5FD_file_image_op_t op, void *udata) {
  return image_realloc(NULL, size, op, udata);
}
static void *image_memcpy(void *dest, const void *src, size_t size, H5FD_file_image_op_t op, void *udata) {
  (void)op, (void)udata;
  return memcpy(dest, src, size);
}
static herr_t image_free(void *ptr, H5FD_file_image_op_t op, void *udata) {
  (void)op;
  struct sr_h5_image *image = udata;
  if (ptr == image->mem) *image = (struct sr_h5_image){NULL, 0};
  free(ptr);
  return 0;
}
/* Every copy of the property list shares the one record (sr_h5_close frees it). */
static void *image_udata_copy(void *udata) { return udata; }
static herr_t image_udata_free(void *udata) {
  (void)udata;
  return 0;
}

int sr_h5_create(sr_h5file *f, const char *path, sr_h5_compression compression) {
  *f = (sr_h5file){.id = H5I_INVALID_HID, .writing = 1, .compression = compression};
  SR_TRY(h5io_init());
  f->path = sr_strdup(path);
  f->image = sr_calloc(1, sizeof *f->image);
  hid_t fapl = strong_close_fapl();
  /* In memory, no backing store: HDF5 never writes to disk itself. When it
   * did, a failed write (ENOSPC) left the file half-closed in HDF5, which then
   * crashed at library shutdown. */
  H5Pset_fapl_core(fapl, (size_t)64 << 20, 0);
  H5FD_file_image_callbacks_t callbacks = {image_malloc,     image_memcpy,     image_realloc, image_free,
                                           image_udata_copy, image_udata_free, f->image};
  H5Pset_file_image_callbacks(fapl, &callbacks);
  f->id = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
  int rc = f->id < 0 ? H5IO_FAIL(SR_EIO, f, NULL, "cannot create an HDF5 file in memory") : SR_OK;
  H5Pclose(fapl);
  if (rc != SR_OK) sr_h5_close(f);
  return rc;
}

int sr_h5_commit(sr_h5file *f) {
  SR_ASSERT(f->writing && f->id >= 0);
  int rc = SR_OK;
  void *copy = NULL;
  /* The file's size; the driver's buffer holds its bytes unless HDF5 has
   * allocated space it never wrote past the buffer's end (then a copy, which
   * reads those bytes as zeros). */
  ssize_t size = H5Fflush(f->id, H5F_SCOPE_GLOBAL) < 0 ? -1 : H5Fget_file_image(f->id, NULL, 0);
  const void *bytes = f->image->mem;
  if (size > 0 && (!bytes || (size_t)size > f->image->size)) {
    bytes = copy = sr_malloc((size_t)size);
    if (H5Fget_file_image(f->id, copy, (size_t)size) != size) size = -1;
  }
  if (size <= 0) rc = H5IO_FAIL(SR_EIO, f, NULL, "cannot take the image of the file built in memory");
  if (rc == SR_OK) rc = sr_write_file_atomic(f->path, bytes, (size_t)size);
  free(copy);
  sr_h5_close(f);
  return rc;
}

void sr_h5_close(sr_h5file *f) {
  if (f->id >= 0) H5Fclose(f->id); /* frees the image's buffer (image_free) */
  free(f->path);
  free(f->image);
  f->id = H5I_INVALID_HID;
  f->path = NULL;
  f->image = NULL;
}

/* ---- groups ------------------------------------------------------------------ */

int sr_h5_exists(const sr_h5file *f, const char *obj) {
  if (strcmp(obj, "/") == 0) return 1; /* the root group is no link, but always there */
  /* H5Lexists needs every parent to exist, so test the path prefix by prefix. */
  char prefix[4096];
  size_t n = strlen(obj);
  if (n >= sizeof prefix) return 0;
  for (size_t i = 1; i <= n; i++) {
    if (i < n && obj[i] != '/') continue;
    memcpy(prefix, obj, i);
    prefix[i] = '\0';
    if (H5Lexists(f->id, prefix, H5P_DEFAULT) <= 0) {
      H5Eclear2(H5E_DEFAULT);
      return 0;
    }
  }
  return 1;
}

int sr_h5_attr_exists(const sr_h5file *f, const char *obj, const char *name) {
  if (!sr_h5_exists(f, obj)) return 0;
  htri_t has = H5Aexists_by_name(f->id, obj, name, H5P_DEFAULT);
  H5Eclear2(H5E_DEFAULT);
  return has > 0;
}

static hid_t intermediate_groups_lcpl(void) {
  hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
  H5Pset_create_intermediate_group(lcpl, 1);
  return lcpl;
}

int sr_h5_create_group(const sr_h5file *f, const char *group) {
  hid_t lcpl = intermediate_groups_lcpl(), gcpl = H5Pcreate(H5P_GROUP_CREATE);
  H5Pset_link_creation_order(gcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
  hid_t g = H5Gcreate2(f->id, group, lcpl, gcpl, H5P_DEFAULT);
  int rc = g < 0 ? H5IO_FAIL(SR_EIO, f, group, "cannot create group") : SR_OK;
  if (g >= 0) H5Gclose(g);
  H5Pclose(lcpl);
  H5Pclose(gcpl);
  return rc;
}

static H5_index_t member_order(hid_t g) {
  unsigned flags = 0;
  hid_t gcpl = H5Gget_create_plist(g);
  if (gcpl >= 0) {
    H5Pget_link_creation_order(gcpl, &flags);
    H5Pclose(gcpl);
  }
  return (flags & H5P_CRT_ORDER_TRACKED) ? H5_INDEX_CRT_ORDER : H5_INDEX_NAME;
}

static int list_members(const sr_h5file *f, const char *group, hid_t g, char ***names, int *n) {
  H5G_info_t info;
  if (H5Gget_info(g, &info) < 0) return H5IO_FAIL(SR_EFORMAT, f, group, "cannot list group");
  H5_index_t order = member_order(g);
  *names = sr_calloc(info.nlinks ? info.nlinks : 1, sizeof **names);
  for (hsize_t i = 0; i < info.nlinks; i++) {
    ssize_t len = H5Lget_name_by_idx(g, ".", order, H5_ITER_INC, i, NULL, 0, H5P_DEFAULT);
    if (len < 0) return H5IO_FAIL(SR_EFORMAT, f, group, "cannot read the name of member %llu", (unsigned long long)i);
    (*names)[i] = sr_malloc((size_t)len + 1);
    (*n)++;
    H5Lget_name_by_idx(g, ".", order, H5_ITER_INC, i, (*names)[i], (size_t)len + 1, H5P_DEFAULT);
  }
  return SR_OK;
}

int sr_h5_list_group(const sr_h5file *f, const char *group, char ***names, int *n) {
  *names = NULL;
  *n = 0;
  if (!sr_h5_exists(f, group)) return H5IO_FAIL(SR_EFORMAT, f, group, "no such group");
  hid_t g = H5Gopen2(f->id, group, H5P_DEFAULT);
  if (g < 0) return H5IO_FAIL(SR_EFORMAT, f, group, "not a group");
  int rc = list_members(f, group, g, names, n);
  H5Gclose(g);
  if (rc != SR_OK) {
    sr_h5_free_names(*names, *n);
    *names = NULL;
    *n = 0;
  }
  return rc;
}

void sr_h5_free_names(char **names, int n) {
  for (int i = 0; i < n; i++) free(names[i]);
  free(names);
}

/* ---- compression ------------------------------------------------------------- */

const char *const sr_h5_codec_names[] = {"zstd", "gzip", "none", NULL};

sr_h5_compression sr_h5_compression_of(sr_h5_codec codec) {
  return (sr_h5_compression){codec, codec == SR_H5_ZSTD ? 3 : codec == SR_H5_GZIP ? 4 : 0};
}

static int level_range(sr_h5_codec codec, int *lo, int *hi) {
  *lo = 1;
  *hi = codec == SR_H5_ZSTD ? 22 : 9;
  return codec != SR_H5_UNCOMPRESSED;
}

int sr_h5_compression_parse(const char *text, sr_h5_compression *out) {
  const size_t name_len = strcspn(text, ":");
  int codec = -1;
  for (int i = 0; sr_h5_codec_names[i]; i++)
    if (strlen(sr_h5_codec_names[i]) == name_len && strncmp(text, sr_h5_codec_names[i], name_len) == 0) codec = i;
  if (codec < 0)
    return SR_FAIL(SR_EINVAL, "compression '%s': expected zstd, gzip or none (zstd:LEVEL, gzip:LEVEL)", text);
  *out = sr_h5_compression_of((sr_h5_codec)codec);
  if (text[name_len] == '\0') return SR_OK;
  int lo, hi;
  char *end;
  const long level = strtol(text + name_len + 1, &end, 10);
  if (!level_range(out->codec, &lo, &hi)) return SR_FAIL(SR_EINVAL, "compression '%s': none takes no level", text);
  if (end == text + name_len + 1 || *end || level < lo || level > hi)
    return SR_FAIL(SR_EINVAL, "compression '%s': %s level must be an integer in [%d, %d]", text,
                   sr_h5_codec_names[codec], lo, hi);
  out->level = (int)level;
  return SR_OK;
}

void sr_h5_compression_format(sr_h5_compression c, char *buf, size_t cap) {
  if (c.codec == SR_H5_UNCOMPRESSED)
    snprintf(buf, cap, "none");
  else
    snprintf(buf, cap, "%s:%d", sr_h5_codec_names[c.codec], c.level);
}

/* The filter pipeline of a new dataset: byte shuffle and the codec when
 * compressed, then Fletcher32. Shuffle groups the high (mostly zero) bytes of
 * the integers, which roughly halves the output on indptr/indices, and the
 * sign/exponent bytes of floats (docs/compression.md has the measurements);
 * Fletcher32 (last, over the stored bytes) turns a corrupted chunk into a
 * read error. */
static int set_filters(const sr_h5file *f, const char *obj, hid_t dcpl) {
  const sr_h5_compression c = f->compression;
  int lo, hi;
  if (level_range(c.codec, &lo, &hi)) {
    if (c.level < lo || c.level > hi)
      return H5IO_FAIL(SR_EINVAL, f, obj, "%s level %d outside [%d, %d]", sr_h5_codec_names[c.codec], c.level, lo,
                       hi);
    H5Pset_shuffle(dcpl);
    if (c.codec == SR_H5_ZSTD) {
      const unsigned level = (unsigned)c.level;
      H5Pset_filter(dcpl, SR_H5Z_FILTER_ZSTD, H5Z_FLAG_MANDATORY, 1, &level);
    } else {
      H5Pset_deflate(dcpl, (unsigned)c.level);
    }
  }
  H5Pset_fletcher32(dcpl);
  return SR_OK;
}

/* ---- arrays ------------------------------------------------------------------ */

/* Creates an N-D dataset: chunked along the first dimension (whole trailing
 * dimensions per chunk, about H5IO_CHUNK_ELEMS elements), filtered as the
 * file says (set_filters). The first dimension may grow (unlimited), so
 * empty arrays are ordinary chunked datasets. Returns the open dataset, or
 * H5I_INVALID_HID after recording the error. */
static hid_t create_dataset(const sr_h5file *f, const char *obj, hid_t stored_type, int ndim, const int64_t *shape) {
  hsize_t dims[H5S_MAX_RANK], maxdims[H5S_MAX_RANK], chunk[H5S_MAX_RANK];
  int64_t row = 1;
  for (int d = 0; d < ndim; d++) {
    dims[d] = maxdims[d] = chunk[d] = (hsize_t)shape[d];
    if (d > 0) row *= shape[d];
  }
  maxdims[0] = H5S_UNLIMITED;
  int64_t rows_per_chunk = H5IO_CHUNK_ELEMS / (row > 0 ? row : 1);
  if (rows_per_chunk > shape[0]) rows_per_chunk = shape[0];
  chunk[0] = (hsize_t)(rows_per_chunk < 1 ? 1 : rows_per_chunk);
  for (int d = 1; d < ndim; d++)
    if (chunk[d] < 1) chunk[d] = 1;
  hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  H5Pset_chunk(dcpl, ndim, chunk);
  if (set_filters(f, obj, dcpl) != SR_OK) {
    H5Pclose(dcpl);
    return H5I_INVALID_HID;
  }
  hid_t space = H5Screate_simple(ndim, dims, maxdims), lcpl = intermediate_groups_lcpl();
  hid_t ds = H5Dcreate2(f->id, obj, stored_type, space, lcpl, dcpl, H5P_DEFAULT);
  if (ds < 0) H5IO_FAIL(SR_EIO, f, obj, "cannot create dataset");
  H5Pclose(dcpl);
  H5Pclose(lcpl);
  H5Sclose(space);
  return ds;
}

/* Creates the dataset and writes all of it. */
static int write_dataset(const sr_h5file *f, const char *obj, hid_t stored_type, hid_t value_type, const void *data,
                         int ndim, const int64_t *shape) {
  hid_t ds = create_dataset(f, obj, stored_type, ndim, shape);
  if (ds < 0) return sr_error_code();
  int64_t n = 1;
  for (int d = 0; d < ndim; d++) n *= shape[d];
  int rc = SR_OK;
  if (n > 0 && H5Dwrite(ds, value_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
    rc = H5IO_FAIL(SR_EIO, f, obj, "cannot write %lld values", (long long)n);
  H5Dclose(ds);
  return rc;
}

int sr_h5_write_array(const sr_h5file *f, const char *obj, sr_h5_type type, const void *data, int64_t n) {
  return write_dataset(f, obj, file_type(type), memory_type(type), data, 1, &n);
}

int sr_h5_write_matrix(const sr_h5file *f, const char *obj, sr_h5_type type, const void *data, int64_t rows,
                       int64_t cols) {
  const int64_t shape[2] = {rows, cols};
  return write_dataset(f, obj, file_type(type), memory_type(type), data, 2, shape);
}

int sr_h5_write_tensor(const sr_h5file *f, const char *obj, const float *data, int ndim, const int64_t *shape) {
  SR_ASSERT(ndim >= 1 && ndim <= H5S_MAX_RANK);
  return write_dataset(f, obj, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, data, ndim, shape);
}

static hid_t open_dataset(const sr_h5file *f, const char *obj) {
  if (!sr_h5_exists(f, obj)) {
    H5IO_FAIL(SR_EFORMAT, f, obj, "missing dataset");
    return H5I_INVALID_HID;
  }
  hid_t ds = H5Dopen2(f->id, obj, H5P_DEFAULT);
  if (ds < 0) H5IO_FAIL(SR_EFORMAT, f, obj, "not a dataset");
  return ds;
}

int sr_h5_create_tensor(const sr_h5file *f, const char *obj, int ndim, const int64_t *shape) {
  SR_ASSERT(ndim >= 1 && ndim <= H5S_MAX_RANK);
  hid_t ds = create_dataset(f, obj, H5T_IEEE_F32LE, ndim, shape);
  if (ds < 0) return sr_error_code();
  H5Dclose(ds);
  return SR_OK;
}

/* Selects the block [offset, offset + count) of ds's file space (returned,
 * with the matching memory space in *mspace). */
static hid_t select_block(hid_t ds, int ndim, const int64_t *offset, const int64_t *count, hid_t *mspace) {
  hsize_t start[H5S_MAX_RANK], size[H5S_MAX_RANK];
  for (int d = 0; d < ndim; d++) start[d] = (hsize_t)offset[d], size[d] = (hsize_t)count[d];
  hid_t fspace = H5Dget_space(ds);
  *mspace = H5Screate_simple(ndim, size, NULL);
  if (fspace >= 0 && H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, size, NULL) < 0) {
    H5Sclose(fspace);
    fspace = H5I_INVALID_HID;
  }
  return fspace;
}

int sr_h5_write_tensor_block(const sr_h5file *f, const char *obj, const float *data, int ndim, const int64_t *offset,
                             const int64_t *count) {
  hid_t ds = open_dataset(f, obj);
  if (ds < 0) return sr_error_code();
  hid_t mspace, fspace = select_block(ds, ndim, offset, count, &mspace);
  int rc = fspace >= 0 && H5Dwrite(ds, H5T_NATIVE_FLOAT, mspace, fspace, H5P_DEFAULT, data) >= 0
               ? SR_OK
               : H5IO_FAIL(SR_EIO, f, obj, "cannot write a block at offset %lld", (long long)offset[0]);
  if (fspace >= 0) H5Sclose(fspace);
  H5Sclose(mspace);
  H5Dclose(ds);
  return rc;
}

/* The elements of a 1-D dataset the file really holds, at most `declared`: a
 * header may declare any extent (2^40 elements in a 100 KB file), and every
 * size a reader allocates comes from it. Chunked: the allocated chunks (a
 * writer stores every chunk it wrote, ours and h5py's alike); contiguous: the
 * bytes stored; compact: all (they live in the header). */
static int64_t stored_elements(hid_t ds, int64_t declared) {
  hid_t dcpl = H5Dget_create_plist(ds), type = H5Dget_type(ds);
  H5D_layout_t layout = dcpl < 0 ? H5D_LAYOUT_ERROR : H5Pget_layout(dcpl);
  int64_t stored = 0;
  if (layout == H5D_COMPACT) {
    stored = declared;
  } else if (layout == H5D_CONTIGUOUS) {
    size_t size = type < 0 ? 0 : H5Tget_size(type);
    stored = size > 0 ? (int64_t)(H5Dget_storage_size(ds) / size) : 0;
  } else if (layout == H5D_CHUNKED) {
    hsize_t chunk = 0, n_chunks = 0;
    hid_t space = H5Dget_space(ds); /* HDF5 1.10 takes no H5S_ALL here */
    if (H5Pget_chunk(dcpl, 1, &chunk) == 1 && chunk > 0 && space >= 0 && H5Dget_num_chunks(ds, space, &n_chunks) >= 0)
      stored = n_chunks > (hsize_t)declared / chunk ? declared : (int64_t)(n_chunks * chunk);
    if (space >= 0) H5Sclose(space);
  }
  if (type >= 0) H5Tclose(type);
  if (dcpl >= 0) H5Pclose(dcpl);
  return stored < declared ? stored : declared;
}

static int dataset_length(const sr_h5file *f, const char *obj, hid_t ds, int64_t *len) {
  hid_t space = H5Dget_space(ds);
  int rank = space < 0 ? -1 : H5Sget_simple_extent_ndims(space);
  hsize_t dims = 0;
  if (rank == 1) H5Sget_simple_extent_dims(space, &dims, NULL);
  if (space >= 0) H5Sclose(space);
  if (rank != 1) return H5IO_FAIL(SR_EFORMAT, f, obj, "has %d dimensions, expected 1", rank);
  int64_t stored = dims > 0 ? stored_elements(ds, (int64_t)dims) : 0;
  if (stored < (int64_t)dims)
    return H5IO_FAIL(SR_EFORMAT, f, obj, "declares %llu elements but the file stores %lld of them",
                     (unsigned long long)dims, (long long)stored);
  *len = (int64_t)dims;
  return SR_OK;
}

/* Integers and floats are never converted into each other: a float array where
 * indices belong is a broken file, not something to round. */
static int check_type_class(const sr_h5file *f, const char *obj, hid_t ds, sr_h5_type type) {
  hid_t t = H5Dget_type(ds);
  H5T_class_t have = t < 0 ? H5T_NO_CLASS : H5Tget_class(t);
  if (t >= 0) H5Tclose(t);
  H5T_class_t want = type == SR_H5_FLOAT32 ? H5T_FLOAT : H5T_INTEGER;
  if (have != want)
    return H5IO_FAIL(SR_EFORMAT, f, obj, "stored as %s, expected %s",
                     have == H5T_FLOAT     ? "floating point"
                     : have == H5T_INTEGER ? "integers"
                                           : "a non-numeric type",
                     want == H5T_FLOAT ? "floating point" : "integers");
  return SR_OK;
}

/* HDF5 clamps out-of-range values by default; a clamped index would pass as a
 * valid but wrong number, so abort the read instead. */
static H5T_conv_ret_t abort_on_overflow(H5T_conv_except_t except, hid_t src, hid_t dst, void *src_buf, void *dst_buf,
                                        void *overflowed) {
  (void)src, (void)dst, (void)src_buf, (void)dst_buf;
  if (except != H5T_CONV_EXCEPT_RANGE_HI && except != H5T_CONV_EXCEPT_RANGE_LOW) return H5T_CONV_UNHANDLED;
  *(int *)overflowed = 1;
  return H5T_CONV_ABORT;
}

static int read_slab(const sr_h5file *f, const char *obj, hid_t ds, sr_h5_type type, int64_t begin, int64_t end,
                     void *out) {
  if (end == begin) return SR_OK;
  hsize_t start = (hsize_t)begin, count = (hsize_t)(end - begin);
  hid_t fspace = H5Dget_space(ds), mspace = H5Screate_simple(1, &count, NULL);
  hid_t dxpl = H5Pcreate(H5P_DATASET_XFER);
  int overflowed = 0;
  H5Pset_type_conv_cb(dxpl, abort_on_overflow, &overflowed);
  herr_t st = H5Sselect_hyperslab(fspace, H5S_SELECT_SET, &start, NULL, &count, NULL);
  if (st >= 0) st = H5Dread(ds, memory_type(type), mspace, fspace, dxpl, out);
  int rc = SR_OK;
  if (overflowed)
    rc = H5IO_FAIL(SR_EFORMAT, f, obj, "a value does not fit %s", type_name(type));
  else if (st < 0)
    rc = H5IO_FAIL(SR_EFORMAT, f, obj, "cannot read elements [%lld, %lld)", (long long)begin, (long long)end);
  H5Pclose(dxpl);
  H5Sclose(mspace);
  H5Sclose(fspace);
  return rc;
}

/* Number of dimensions of ds (-1 if unreadable), and their sizes. */
static int dims_of(hid_t ds, hsize_t dims[H5S_MAX_RANK]) {
  hid_t space = H5Dget_space(ds);
  int ndim = space < 0 ? -1 : H5Sget_simple_extent_ndims(space);
  if (ndim > 0) H5Sget_simple_extent_dims(space, dims, NULL);
  if (space >= 0) H5Sclose(space);
  return ndim;
}

/* The shape must be exactly `shape` (ndim dims); the message shows both. */
static int check_shape(const sr_h5file *f, const char *obj, hid_t ds, int ndim, const int64_t *shape) {
  hsize_t dims[H5S_MAX_RANK] = {0};
  int have = dims_of(ds, dims);
  int same = have == ndim;
  for (int d = 0; same && d < ndim; d++) same = (int64_t)dims[d] == shape[d];
  if (same) return SR_OK;
  char want_s[128] = "", have_s[128] = "";
  for (int d = 0; d < ndim; d++)
    snprintf(want_s + strlen(want_s), sizeof want_s - strlen(want_s), "%s%lld", d ? " x " : "", (long long)shape[d]);
  for (int d = 0; d < have; d++)
    snprintf(have_s + strlen(have_s), sizeof have_s - strlen(have_s), "%s%llu", d ? " x " : "",
             (unsigned long long)dims[d]);
  return H5IO_FAIL(SR_EFORMAT, f, obj, "shape %s, expected %s", have < 0 ? "unknown" : have_s, want_s);
}

int sr_h5_shape(const sr_h5file *f, const char *obj, int *ndim, int64_t *shape, int max_dims) {
  hid_t ds = open_dataset(f, obj);
  if (ds < 0) return sr_error_code();
  hsize_t dims[H5S_MAX_RANK] = {0};
  int have = dims_of(ds, dims);
  H5Dclose(ds);
  if (have < 0 || have > max_dims)
    return H5IO_FAIL(SR_EFORMAT, f, obj, "%d dimensions, expected at most %d", have, max_dims);
  *ndim = have;
  for (int d = 0; d < have; d++) shape[d] = (int64_t)dims[d];
  return SR_OK;
}

int sr_h5_read_tensor(const sr_h5file *f, const char *obj, float *out, int ndim, const int64_t *shape) {
  hid_t ds = open_dataset(f, obj);
  if (ds < 0) return sr_error_code();
  int rc = check_shape(f, obj, ds, ndim, shape);
  if (rc == SR_OK) rc = check_type_class(f, obj, ds, SR_H5_FLOAT32);
  if (rc == SR_OK && H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) < 0)
    rc = H5IO_FAIL(SR_EFORMAT, f, obj, "cannot read the data (corrupted chunk or checksum mismatch)");
  H5Dclose(ds);
  return rc;
}

int sr_h5_read_tensor_block(const sr_h5file *f, const char *obj, float *out, int ndim, const int64_t *shape,
                            const int64_t *offset, const int64_t *count) {
  hid_t ds = open_dataset(f, obj);
  if (ds < 0) return sr_error_code();
  int rc = check_shape(f, obj, ds, ndim, shape);
  if (rc == SR_OK) rc = check_type_class(f, obj, ds, SR_H5_FLOAT32);
  if (rc == SR_OK) {
    hid_t mspace, fspace = select_block(ds, ndim, offset, count, &mspace);
    if (fspace < 0 || H5Dread(ds, H5T_NATIVE_FLOAT, mspace, fspace, H5P_DEFAULT, out) < 0)
      rc = H5IO_FAIL(SR_EFORMAT, f, obj, "cannot read the data (corrupted chunk or checksum mismatch)");
    if (fspace >= 0) H5Sclose(fspace);
    H5Sclose(mspace);
  }
  H5Dclose(ds);
  return rc;
}

int sr_h5_array_length(const sr_h5file *f, const char *obj, int64_t *len) {
  hid_t ds = open_dataset(f, obj);
  if (ds < 0) return sr_error_code();
  int rc = dataset_length(f, obj, ds, len);
  H5Dclose(ds);
  return rc;
}

static int read_checked(const sr_h5file *f, const char *obj, hid_t ds, sr_h5_type type, int64_t expected_len,
                        void **out, int64_t *len_out) {
  int64_t len = 0;
  SR_TRY(dataset_length(f, obj, ds, &len));
  if (expected_len >= 0 && len != expected_len)
    return H5IO_FAIL(SR_EFORMAT, f, obj, "has %lld elements, expected %lld", (long long)len, (long long)expected_len);
  SR_TRY(check_type_class(f, obj, ds, type));
  *out = sr_malloc(len > 0 ? (size_t)len * type_size(type) : 1);
  if (len_out) *len_out = len;
  return read_slab(f, obj, ds, type, 0, len, *out);
}

int sr_h5_read_array(const sr_h5file *f, const char *obj, sr_h5_type type, int64_t expected_len, void **out,
                     int64_t *len_out) {
  *out = NULL;
  hid_t ds = open_dataset(f, obj);
  if (ds < 0) return sr_error_code();
  int rc = read_checked(f, obj, ds, type, expected_len, out, len_out);
  H5Dclose(ds);
  if (rc != SR_OK) {
    free(*out);
    *out = NULL;
  }
  return rc;
}

static int read_range_checked(const sr_h5file *f, const char *obj, hid_t ds, sr_h5_type type, int64_t begin,
                              int64_t end, void *out) {
  int64_t len = 0;
  SR_TRY(dataset_length(f, obj, ds, &len));
  if (begin < 0 || begin > end || end > len)
    return H5IO_FAIL(SR_EFORMAT, f, obj, "range [%lld, %lld) outside the %lld elements", (long long)begin,
                     (long long)end, (long long)len);
  SR_TRY(check_type_class(f, obj, ds, type));
  return read_slab(f, obj, ds, type, begin, end, out);
}

int sr_h5_read_range(const sr_h5file *f, const char *obj, sr_h5_type type, int64_t begin, int64_t end, void *out) {
  hid_t ds = open_dataset(f, obj);
  if (ds < 0) return sr_error_code();
  int rc = read_range_checked(f, obj, ds, type, begin, end, out);
  H5Dclose(ds);
  return rc;
}

/* ---- attributes -------------------------------------------------------------- */

static int write_attr(const sr_h5file *f, const char *obj, const char *name, hid_t stored_type, hid_t value_type,
                      const void *value) {
  hid_t space = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate_by_name(f->id, obj, name, stored_type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  int rc = a < 0 ? H5IO_FAIL(SR_EIO, f, obj, "cannot create attribute '%s'", name) : SR_OK;
  if (rc == SR_OK && H5Awrite(a, value_type, value) < 0)
    rc = H5IO_FAIL(SR_EIO, f, obj, "cannot write attribute '%s'", name);
  if (a >= 0) H5Aclose(a);
  H5Sclose(space);
  return rc;
}

static hid_t string_type(size_t size, H5T_cset_t cset) {
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, size);
  H5Tset_cset(t, cset);
  return t;
}

int sr_h5_write_attr_int64(const sr_h5file *f, const char *obj, const char *name, int64_t value) {
  return write_attr(f, obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &value);
}

int sr_h5_write_attr_string(const sr_h5file *f, const char *obj, const char *name, const char *value) {
  hid_t t = string_type(H5T_VARIABLE, H5T_CSET_UTF8);
  int rc = write_attr(f, obj, name, t, t, &value);
  H5Tclose(t);
  return rc;
}

/* Opens a one-element attribute whose type is of class `want`. */
static hid_t open_attr(const sr_h5file *f, const char *obj, const char *name, H5T_class_t want) {
  if (!sr_h5_attr_exists(f, obj, name)) {
    H5IO_FAIL(SR_EFORMAT, f, obj, "missing attribute '%s'", name);
    return H5I_INVALID_HID;
  }
  hid_t a = H5Aopen_by_name(f->id, obj, name, H5P_DEFAULT, H5P_DEFAULT);
  if (a < 0) {
    H5IO_FAIL(SR_EFORMAT, f, obj, "cannot open attribute '%s'", name);
    return H5I_INVALID_HID;
  }
  hid_t t = H5Aget_type(a), space = H5Aget_space(a);
  H5T_class_t have = H5Tget_class(t);
  hssize_t n = H5Sget_simple_extent_npoints(space);
  H5Tclose(t);
  H5Sclose(space);
  if (have != want || n != 1) {
    H5Aclose(a);
    H5IO_FAIL(SR_EFORMAT, f, obj, "attribute '%s' is not a single %s", name,
              want == H5T_STRING  ? "string"
              : want == H5T_FLOAT ? "floating-point number"
                                  : "integer");
    return H5I_INVALID_HID;
  }
  return a;
}

static int read_numeric_attr(const sr_h5file *f, const char *obj, const char *name, H5T_class_t cls, hid_t type,
                             void *value) {
  hid_t a = open_attr(f, obj, name, cls);
  if (a < 0) return sr_error_code();
  int rc = H5Aread(a, type, value) < 0 ? H5IO_FAIL(SR_EFORMAT, f, obj, "cannot read attribute '%s'", name) : SR_OK;
  H5Aclose(a);
  return rc;
}

int sr_h5_read_attr_int64(const sr_h5file *f, const char *obj, const char *name, int64_t *value) {
  return read_numeric_attr(f, obj, name, H5T_INTEGER, H5T_NATIVE_INT64, value);
}

int sr_h5_write_attr_double(const sr_h5file *f, const char *obj, const char *name, double value) {
  return write_attr(f, obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &value);
}

int sr_h5_read_attr_double(const sr_h5file *f, const char *obj, const char *name, double *value) {
  return read_numeric_attr(f, obj, name, H5T_FLOAT, H5T_NATIVE_DOUBLE, value);
}

/* The value of string attribute `a` as a malloc'd copy (*out). */
static int read_string_copy(const sr_h5file *f, const char *obj, const char *name, hid_t a, char **out) {
  hid_t stored = H5Aget_type(a);
  int variable = H5Tis_variable_str(stored) > 0;
  size_t fixed_size = H5Tget_size(stored);
  H5T_cset_t cset = H5Tget_cset(stored);
  H5Tclose(stored);
  /* Fixed-length: one byte more than stored, so a string that fills its size still ends in NUL. */
  hid_t t = string_type(variable ? H5T_VARIABLE : fixed_size + 1, cset);
  char *vlen = NULL;
  *out = variable ? NULL : sr_calloc(fixed_size + 1, 1);
  int rc = H5Aread(a, t, variable ? (void *)&vlen : (void *)*out) < 0
               ? H5IO_FAIL(SR_EFORMAT, f, obj, "cannot read attribute '%s'", name)
               : SR_OK;
  H5Tclose(t);
  if (variable && rc == SR_OK) *out = sr_strdup(vlen ? vlen : "");
  H5free_memory(vlen);
  if (rc != SR_OK) {
    free(*out);
    *out = NULL;
  }
  return rc;
}

static int read_string(const sr_h5file *f, const char *obj, const char *name, hid_t a, char *buf, size_t cap) {
  char *value;
  SR_TRY(read_string_copy(f, obj, name, a, &value));
  size_t len = strlen(value);
  int rc = len < cap ? SR_OK : H5IO_FAIL(SR_EFORMAT, f, obj, "attribute '%s' longer than %zu bytes", name, cap - 1);
  if (rc == SR_OK) memcpy(buf, value, len + 1);
  free(value);
  return rc;
}

int sr_h5_read_attr_string_alloc(const sr_h5file *f, const char *obj, const char *name, char **out) {
  *out = NULL;
  hid_t a = open_attr(f, obj, name, H5T_STRING);
  if (a < 0) return sr_error_code();
  int rc = read_string_copy(f, obj, name, a, out);
  H5Aclose(a);
  return rc;
}

int sr_h5_read_attr_string(const sr_h5file *f, const char *obj, const char *name, char *buf, size_t cap) {
  hid_t a = open_attr(f, obj, name, H5T_STRING);
  if (a < 0) return sr_error_code();
  int rc = read_string(f, obj, name, a, buf, cap);
  H5Aclose(a);
  return rc;
}

/* ---- attributes for display --------------------------------------------------- */

typedef struct {
  char **names;
  int n;
} name_list;

static herr_t collect_attr_name(hid_t loc, const char *name, const H5A_info_t *info, void *data) {
  (void)loc, (void)info;
  name_list *l = data;
  l->names = sr_realloc(l->names, (size_t)(l->n + 1) * sizeof *l->names);
  l->names[l->n++] = sr_strdup(name);
  return 0;
}

int sr_h5_list_attrs(const sr_h5file *f, const char *obj, char ***names, int *n) {
  *names = NULL;
  *n = 0;
  if (!sr_h5_exists(f, obj)) return H5IO_FAIL(SR_EFORMAT, f, obj, "no such object");
  name_list l = {NULL, 0};
  hsize_t next = 0;
  if (H5Aiterate_by_name(f->id, obj, H5_INDEX_NAME, H5_ITER_INC, &next, collect_attr_name, &l, H5P_DEFAULT) < 0) {
    sr_h5_free_names(l.names, l.n);
    return H5IO_FAIL(SR_EFORMAT, f, obj, "cannot list attributes");
  }
  *names = l.names ? l.names : sr_calloc(1, sizeof **names);
  *n = l.n;
  return SR_OK;
}

/* Display text that stops at its capacity and then ends in "...". */
typedef struct {
  char *buf;
  size_t cap, len;
  int cut;
} text;

__attribute__((format(printf, 2, 3))) static void text_add(text *t, const char *fmt, ...) {
  if (t->cut) return;
  va_list ap;
  va_start(ap, fmt);
  int w = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
  va_end(ap);
  if (w >= 0 && (size_t)w < t->cap - t->len) {
    t->len += (size_t)w;
    return;
  }
  t->cut = 1;
  memcpy(t->buf + t->cap - 4, "...", 4);
}

/* Numbers as "v" (scalar dataspace) or "[v, v, ...]" (array). */
static int format_numbers(const sr_h5file *f, const char *obj, const char *name, hid_t a, H5T_class_t cls,
                          int is_signed, int64_t n, int scalar, text *t) {
  hid_t mem = cls == H5T_FLOAT ? H5T_NATIVE_DOUBLE : is_signed ? H5T_NATIVE_INT64 : H5T_NATIVE_UINT64;
  void *values = sr_malloc((size_t)(n > 0 ? n : 1) * 8);
  int rc = H5Aread(a, mem, values) < 0 ? H5IO_FAIL(SR_EFORMAT, f, obj, "cannot read attribute '%s'", name) : SR_OK;
  if (!scalar) text_add(t, "[");
  for (int64_t i = 0; rc == SR_OK && i < n; i++) {
    const char *sep = i ? ", " : "";
    if (cls == H5T_FLOAT)
      text_add(t, "%s%.9g", sep, ((const double *)values)[i]);
    else if (is_signed)
      text_add(t, "%s%lld", sep, (long long)((const int64_t *)values)[i]);
    else
      text_add(t, "%s%llu", sep, (unsigned long long)((const uint64_t *)values)[i]);
  }
  if (!scalar) text_add(t, "]");
  free(values);
  return rc;
}

static const char *class_name(H5T_class_t cls) {
  switch (cls) {
    case H5T_COMPOUND:
      return "compound";
    case H5T_ENUM:
      return "enum";
    case H5T_ARRAY:
      return "array";
    case H5T_VLEN:
      return "variable-length";
    case H5T_OPAQUE:
      return "opaque";
    case H5T_REFERENCE:
      return "reference";
    case H5T_STRING:
      return "string";
    default:
      return "other";
  }
}

static int format_attr_value(const sr_h5file *f, const char *obj, const char *name, hid_t a, text *t) {
  hid_t type = H5Aget_type(a), space = H5Aget_space(a);
  H5T_class_t cls = H5Tget_class(type);
  int is_signed = cls == H5T_INTEGER && H5Tget_sign(type) != H5T_SGN_NONE;
  int64_t n = (int64_t)H5Sget_simple_extent_npoints(space);
  int scalar = H5Sget_simple_extent_type(space) == H5S_SCALAR;
  H5Tclose(type);
  H5Sclose(space);
  if (cls == H5T_INTEGER || cls == H5T_FLOAT) return format_numbers(f, obj, name, a, cls, is_signed, n, scalar, t);
  if (cls == H5T_STRING && n == 1) {
    char *value;
    SR_TRY(read_string_copy(f, obj, name, a, &value));
    text_add(t, "%s", value);
    free(value);
    return SR_OK;
  }
  text_add(t, "(%s, %lld element%s)", class_name(cls), (long long)n, n == 1 ? "" : "s");
  return SR_OK;
}

int sr_h5_format_attr(const sr_h5file *f, const char *obj, const char *name, char *buf, size_t cap) {
  SR_ASSERT(cap >= 4);
  buf[0] = '\0';
  if (!sr_h5_attr_exists(f, obj, name)) return H5IO_FAIL(SR_EFORMAT, f, obj, "missing attribute '%s'", name);
  hid_t a = H5Aopen_by_name(f->id, obj, name, H5P_DEFAULT, H5P_DEFAULT);
  if (a < 0) return H5IO_FAIL(SR_EFORMAT, f, obj, "cannot open attribute '%s'", name);
  text t = {buf, cap, 0, 0};
  int rc = format_attr_value(f, obj, name, a, &t);
  H5Aclose(a);
  return rc;
}

/* ---- fixed-length string arrays ------------------------------------------------ */

/* NUL-padded strings of `width` bytes: the stored and the in-memory type. */
static hid_t padded_string_type(size_t width) {
  hid_t t = string_type(width, H5T_CSET_ASCII);
  H5Tset_strpad(t, H5T_STR_NULLPAD);
  return t;
}

int sr_h5_write_strings(const sr_h5file *f, const char *obj, const char *data, int64_t n, int width) {
  if (width < 1) return H5IO_FAIL(SR_EINVAL, f, obj, "string width %d < 1", width);
  hid_t t = padded_string_type((size_t)width);
  int rc = write_dataset(f, obj, t, t, data, 1, &n);
  H5Tclose(t);
  return rc;
}

/* The width of a fixed-length string dataset (variable-length ones are refused). */
int sr_h5_holds_strings(const sr_h5file *f, const char *obj, int *strings) {
  hid_t ds = open_dataset(f, obj);
  if (ds < 0) return sr_error_code();
  hid_t t = H5Dget_type(ds);
  H5T_class_t cls = t < 0 ? H5T_NO_CLASS : H5Tget_class(t);
  if (t >= 0) H5Tclose(t);
  H5Dclose(ds);
  if (cls == H5T_NO_CLASS) return H5IO_FAIL(SR_EFORMAT, f, obj, "cannot read the element type");
  *strings = cls == H5T_STRING;
  return SR_OK;
}

static int string_width(const sr_h5file *f, const char *obj, hid_t ds, int *width) {
  hid_t t = H5Dget_type(ds);
  int ok = t >= 0 && H5Tget_class(t) == H5T_STRING && H5Tis_variable_str(t) == 0;
  size_t size = ok ? H5Tget_size(t) : 0;
  if (t >= 0) H5Tclose(t);
  if (!ok || size < 1 || size > INT32_MAX)
    return H5IO_FAIL(SR_EFORMAT, f, obj, "not an array of fixed-length strings");
  *width = (int)size;
  return SR_OK;
}

static int read_strings_checked(const sr_h5file *f, const char *obj, hid_t ds, char **out, int64_t *n, int *width) {
  SR_TRY(dataset_length(f, obj, ds, n));
  SR_TRY(string_width(f, obj, ds, width));
  *out = sr_calloc((size_t)(*n > 0 ? *n : 1), (size_t)*width);
  if (*n == 0) return SR_OK;
  hid_t t = padded_string_type((size_t)*width);
  int rc = H5Dread(ds, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, *out) < 0
               ? H5IO_FAIL(SR_EFORMAT, f, obj, "cannot read the data (corrupted chunk or checksum mismatch)")
               : SR_OK;
  H5Tclose(t);
  return rc;
}

int sr_h5_read_strings(const sr_h5file *f, const char *obj, char **out, int64_t *n, int *width) {
  *out = NULL;
  hid_t ds = open_dataset(f, obj);
  if (ds < 0) return sr_error_code();
  int rc = read_strings_checked(f, obj, ds, out, n, width);
  H5Dclose(ds);
  if (rc != SR_OK) {
    free(*out);
    *out = NULL;
  }
  return rc;
}
