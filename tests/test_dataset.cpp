// test_dataset.cpp — HDF5 helpers, the dataset format (write, read, validation,
// row ranges), the strong-generalisation split, synthetic data, interoperability
// with h5dump and h5py, and `shardrec data`.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "test_util.h"

extern "C" {
#include "shardrec/dataset.h"
#include "shardrec/error.h"
#include "shardrec/h5io.h"
#include "shardrec/h5zstd.h"
#include "shardrec/synth.h"
}

namespace {

const sr_h5_compression kZstd3 = {SR_H5_ZSTD, 3};

using Rows = std::vector<std::vector<int32_t>>;

bool contains(const std::string &text, const std::string &part) { return text.find(part) != std::string::npos; }

using srtest::csr_from_rows;

Rows rows_of(const sr_csr &m) {
  Rows rows((size_t)m.n_rows);
  for (int64_t r = 0; r < m.n_rows; r++) rows[(size_t)r].assign(m.indices + m.indptr[r], m.indices + m.indptr[r + 1]);
  return rows;
}

int64_t *malloc_ids(const std::vector<int64_t> &ids) {
  auto *p = (int64_t *)malloc(std::max<size_t>(1, ids.size()) * sizeof(int64_t));
  std::copy(ids.begin(), ids.end(), p);
  return p;
}

std::vector<int64_t> ids_of(const int64_t *ids, int64_t n) { return std::vector<int64_t>(ids, ids + n); }

void set_feature(sr_feature *f, const char *name, int multi, int64_t vocab, const Rows &rows) {
  memset(f, 0, sizeof *f);
  snprintf(f->name, sizeof f->name, "%s", name);
  f->multi_valued = multi;
  f->vocab_size = vocab;
  f->values = csr_from_rows(rows, vocab);
}

struct Dataset {
  sr_dataset d;
  Dataset() { sr_dataset_init(&d); }
  ~Dataset() { sr_dataset_free(&d); }
};

// A hand-made dataset: 8 users, 6 items; train users 0 3 5 7 (with values),
// valid users 1 6, test users 2 4 (test held-out entirely empty: a zero-length
// array in the file), two item features and one user feature.
void build_tiny(sr_dataset *d) {
  sr_dataset_init(d);
  d->n_users = 8;
  d->n_items = 6;
  d->train = csr_from_rows({{0, 1, 2}, {1, 3}, {0, 4, 5}, {2}}, 6, true);
  d->train_user_ids = malloc_ids({0, 3, 5, 7});
  d->valid.n_users = 2;
  d->valid.user_ids = malloc_ids({1, 6});
  d->valid.foldin = csr_from_rows({{0, 2}, {1, 4, 5}}, 6);
  d->valid.heldout = csr_from_rows({{3}, {}}, 6);
  d->test.n_users = 2;
  d->test.user_ids = malloc_ids({2, 4});
  d->test.foldin = csr_from_rows({{5}, {1, 2}}, 6);
  d->test.heldout = csr_from_rows({{}, {}}, 6);
  d->n_item_features = 2;
  d->item_features = (sr_feature *)calloc(2, sizeof(sr_feature));
  set_feature(&d->item_features[0], "genre", 0, 3, {{0}, {1}, {2}, {0}, {1}, {}});
  set_feature(&d->item_features[1], "tags", 1, 4, {{0, 1}, {}, {3}, {1, 2, 3}, {0}, {2}});
  d->n_user_features = 1;
  d->user_features = (sr_feature *)calloc(1, sizeof(sr_feature));
  set_feature(&d->user_features[0], "age", 0, 2, {{0}, {1}, {1}, {0}, {0}, {1}, {0}, {1}});
}

void expect_same_csr(const sr_csr &a, const sr_csr &b, const std::string &what) {
  ASSERT_EQ(a.n_rows, b.n_rows) << what;
  ASSERT_EQ(a.n_cols, b.n_cols) << what;
  ASSERT_EQ(a.nnz, b.nnz) << what;
  EXPECT_TRUE(std::equal(a.indptr, a.indptr + a.n_rows + 1, b.indptr)) << what;
  EXPECT_TRUE(std::equal(a.indices, a.indices + a.nnz, b.indices)) << what;
  ASSERT_EQ(a.values == nullptr, b.values == nullptr) << what;
  if (a.values) {
    EXPECT_TRUE(std::equal(a.values, a.values + a.nnz, b.values)) << what;
  }
}

void expect_same_eval(const sr_eval_split &a, const sr_eval_split &b, const std::string &what) {
  ASSERT_EQ(a.n_users, b.n_users) << what;
  EXPECT_EQ(ids_of(a.user_ids, a.n_users), ids_of(b.user_ids, b.n_users)) << what;
  expect_same_csr(a.foldin, b.foldin, what + "/foldin");
  expect_same_csr(a.heldout, b.heldout, what + "/heldout");
}

void expect_same_features(const sr_feature *a, int na, const sr_feature *b, int nb, const std::string &what) {
  ASSERT_EQ(na, nb) << what;
  for (int i = 0; i < na; i++) {
    EXPECT_STREQ(a[i].name, b[i].name) << what;
    EXPECT_EQ(a[i].multi_valued, b[i].multi_valued) << what << " " << a[i].name;
    EXPECT_EQ(a[i].vocab_size, b[i].vocab_size) << what << " " << a[i].name;
    expect_same_csr(a[i].values, b[i].values, what + "/" + a[i].name);
  }
}

void expect_same_dataset(const sr_dataset &a, const sr_dataset &b) {
  EXPECT_EQ(a.schema_version, b.schema_version);
  EXPECT_EQ(a.protocol, b.protocol);
  EXPECT_EQ(a.n_users, b.n_users);
  EXPECT_EQ(a.n_items, b.n_items);
  expect_same_csr(a.train, b.train, "train");
  EXPECT_EQ(ids_of(a.train_user_ids, a.train.n_rows), ids_of(b.train_user_ids, b.train.n_rows));
  expect_same_eval(a.valid, b.valid, "valid");
  expect_same_eval(a.test, b.test, "test");
  expect_same_features(a.item_features, a.n_item_features, b.item_features, b.n_item_features, "item");
  expect_same_features(a.user_features, a.n_user_features, b.user_features, b.n_user_features, "user");
}

// A synthetic dataset, split and written to `path`.
void write_synth(const std::string &path, int64_t users, int64_t items, int64_t heldout,
                 sr_h5_compression compression = sr_h5_compression_of(SR_H5_ZSTD)) {
  sr_synth_opts so;
  sr_synth_opts_default(&so);
  so.n_users = users;
  so.n_items = items;
  sr_csr full;
  sr_feature *features;
  int n_features;
  ASSERT_EQ(sr_synth_generate(&so, &full, &features, &n_features), SR_OK) << sr_error_message();
  sr_split_opts sp;
  sr_split_opts_default(&sp);
  sp.n_heldout_users = heldout;
  Dataset ds;
  ASSERT_EQ(sr_split_strong(&full, features, n_features, &sp, &ds.d, nullptr), SR_OK) << sr_error_message();
  ASSERT_EQ(sr_dataset_write(path.c_str(), &ds.d, compression), SR_OK) << sr_error_message();
  sr_csr_free(&full);
  for (int i = 0; i < n_features; i++) sr_csr_free(&features[i].values);
  free(features);
}

off_t file_size(const std::string &path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? st.st_size : -1;
}

// ---- direct HDF5 edits, to make damaged files -------------------------------------

struct H5Edit {
  hid_t file;
  explicit H5Edit(const std::string &path) {
    sr_h5zstd_register();
    file = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    EXPECT_GE(file, 0) << path;
  }
  ~H5Edit() { H5Fclose(file); }

  void set_element(const char *obj, hsize_t index, hid_t mem_type, const void *value) {
    hid_t ds = H5Dopen2(file, obj, H5P_DEFAULT);
    ASSERT_GE(ds, 0) << obj;
    hid_t fspace = H5Dget_space(ds);
    hsize_t count = 1;
    H5Sselect_hyperslab(fspace, H5S_SELECT_SET, &index, nullptr, &count, nullptr);
    hid_t mspace = H5Screate_simple(1, &count, nullptr);
    EXPECT_GE(H5Dwrite(ds, mem_type, mspace, fspace, H5P_DEFAULT, value), 0) << obj;
    H5Sclose(mspace);
    H5Sclose(fspace);
    H5Dclose(ds);
  }
  void set_int64(const char *obj, hsize_t index, int64_t v) { set_element(obj, index, H5T_NATIVE_INT64, &v); }
  void set_int32(const char *obj, hsize_t index, int32_t v) { set_element(obj, index, H5T_NATIVE_INT32, &v); }

  // Through the object's handle: HDF5 1.10 cannot write an attribute opened by path.
  void set_attr_int64(const char *obj, const char *name, int64_t v) {
    hid_t o = H5Oopen(file, obj, H5P_DEFAULT), a = H5Aopen(o, name, H5P_DEFAULT);
    ASSERT_GE(a, 0) << obj << " " << name;
    EXPECT_GE(H5Awrite(a, H5T_NATIVE_INT64, &v), 0);
    H5Aclose(a);
    H5Oclose(o);
  }
  void remove(const char *obj) { EXPECT_GE(H5Ldelete(file, obj, H5P_DEFAULT), 0) << obj; }
  void rename(const char *obj, const std::string &to) {
    EXPECT_GE(H5Lmove(file, obj, file, to.c_str(), H5P_DEFAULT, H5P_DEFAULT), 0) << obj;
  }
  // Declares n elements of a chunked dataset without storing them (a crafted header).
  void set_extent(const char *obj, hsize_t n) {
    hid_t ds = H5Dopen2(file, obj, H5P_DEFAULT);
    ASSERT_GE(ds, 0) << obj;
    EXPECT_GE(H5Dset_extent(ds, &n), 0) << obj;
    H5Dclose(ds);
  }
  void remove_attr(const char *obj, const char *name) {
    EXPECT_GE(H5Adelete_by_name(file, obj, name, H5P_DEFAULT), 0);
  }
  // Replaces a 1-D dataset by a contiguous one of another type.
  void replace(const char *obj, hid_t file_type, hid_t mem_type, const void *data, hsize_t n) {
    remove(obj);
    hid_t space = H5Screate_simple(1, &n, nullptr);
    hid_t ds = H5Dcreate2(file, obj, file_type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    ASSERT_GE(ds, 0);
    EXPECT_GE(H5Dwrite(ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), 0);
    H5Dclose(ds);
    H5Sclose(space);
  }
};

}  // namespace

// ---- h5io ------------------------------------------------------------------------

TEST(H5io, ArraysAttributesAndGroups) {
  srtest::TempDir dir;
  std::string path = dir.file("io.h5");
  std::vector<int64_t> big(100000);
  for (size_t i = 0; i < big.size(); i++) big[i] = (int64_t)i * 3 - 7;  // spans two chunks of 65536
  const int32_t small[] = {5, -1, 7};
  const float floats[] = {0.25f, -3.5f};
  const uint8_t bytes[] = {0, 255};
  sr_h5file f;
  ASSERT_EQ(sr_h5_create(&f, path.c_str(), kZstd3), SR_OK) << sr_error_message();
  ASSERT_EQ(sr_h5_create_group(&f, "/g"), SR_OK);
  // Written in a non-alphabetical order: listing returns creation order.
  ASSERT_EQ(sr_h5_write_array(&f, "/g/zeta", SR_H5_INT64, big.data(), (int64_t)big.size()), SR_OK);
  ASSERT_EQ(sr_h5_write_array(&f, "/g/alpha", SR_H5_INT32, small, 3), SR_OK);
  ASSERT_EQ(sr_h5_write_array(&f, "/g/empty", SR_H5_INT32, nullptr, 0), SR_OK);
  ASSERT_EQ(sr_h5_write_array(&f, "/deep/er/floats", SR_H5_FLOAT32, floats, 2), SR_OK);
  ASSERT_EQ(sr_h5_write_array(&f, "/bytes", SR_H5_UINT8, bytes, 2), SR_OK);
  ASSERT_EQ(sr_h5_write_attr_int64(&f, "/", "answer", -42), SR_OK);
  ASSERT_EQ(sr_h5_write_attr_string(&f, "/g", "label", "héllo"), SR_OK);
  // Not committed yet: only the temporary file exists.
  EXPECT_EQ(file_size(path), -1);
  ASSERT_EQ(sr_h5_commit(&f), SR_OK) << sr_error_message();
  EXPECT_GT(file_size(path), 0);
  EXPECT_EQ(srtest::run_command("ls '" + dir.path() + "' | grep -c tmp").output, "0\n");

  ASSERT_EQ(sr_h5_open(&f, path.c_str()), SR_OK) << sr_error_message();
  void *data;
  int64_t len;
  ASSERT_EQ(sr_h5_read_array(&f, "/g/zeta", SR_H5_INT64, -1, &data, &len), SR_OK);
  ASSERT_EQ(len, (int64_t)big.size());
  EXPECT_TRUE(std::equal(big.begin(), big.end(), (int64_t *)data));
  free(data);
  // A range across the border of the first chunk.
  int64_t range[4];
  ASSERT_EQ(sr_h5_read_range(&f, "/g/zeta", SR_H5_INT64, 65534, 65538, range), SR_OK);
  EXPECT_EQ(range[0], 65534 * 3 - 7);
  EXPECT_EQ(range[3], 65537 * 3 - 7);
  // int32 on disk read as int64: widening converts.
  ASSERT_EQ(sr_h5_read_array(&f, "/g/alpha", SR_H5_INT64, 3, &data, nullptr), SR_OK);
  EXPECT_EQ(((int64_t *)data)[1], -1);
  free(data);
  ASSERT_EQ(sr_h5_read_array(&f, "/g/empty", SR_H5_INT32, 0, &data, &len), SR_OK);
  EXPECT_EQ(len, 0);
  EXPECT_NE(data, nullptr);
  free(data);
  ASSERT_EQ(sr_h5_read_array(&f, "/deep/er/floats", SR_H5_FLOAT32, 2, &data, nullptr), SR_OK);
  EXPECT_EQ(((float *)data)[1], -3.5f);
  free(data);
  ASSERT_EQ(sr_h5_read_array(&f, "/bytes", SR_H5_UINT8, 2, &data, nullptr), SR_OK);
  EXPECT_EQ(((uint8_t *)data)[1], 255);
  free(data);

  int64_t answer;
  ASSERT_EQ(sr_h5_read_attr_int64(&f, "/", "answer", &answer), SR_OK);
  EXPECT_EQ(answer, -42);
  char label[16];
  ASSERT_EQ(sr_h5_read_attr_string(&f, "/g", "label", label, sizeof label), SR_OK);
  EXPECT_STREQ(label, "héllo");
  char tiny[4];
  EXPECT_EQ(sr_h5_read_attr_string(&f, "/g", "label", tiny, sizeof tiny), SR_EFORMAT);
  EXPECT_TRUE(contains(sr_error_message(), "longer than 3 bytes")) << sr_error_message();

  char **names;
  int n;
  ASSERT_EQ(sr_h5_list_group(&f, "/g", &names, &n), SR_OK);
  ASSERT_EQ(n, 3);
  EXPECT_STREQ(names[0], "zeta");
  EXPECT_STREQ(names[1], "alpha");
  EXPECT_STREQ(names[2], "empty");
  sr_h5_free_names(names, n);

  EXPECT_EQ(sr_h5_exists(&f, "/g/alpha"), 1);
  EXPECT_EQ(sr_h5_exists(&f, "/g/nope"), 0);
  EXPECT_EQ(sr_h5_exists(&f, "/nope/deeper"), 0);
  EXPECT_EQ(sr_h5_exists(&f, "/g/alpha/not_a_group"), 0);
  EXPECT_EQ(sr_h5_attr_exists(&f, "/", "answer"), 1);
  EXPECT_EQ(sr_h5_attr_exists(&f, "/nope", "answer"), 0);
  sr_h5_close(&f);
}

TEST(H5io, ErrorsNameTheFileAndTheObject) {
  srtest::TempDir dir;
  std::string path = dir.file("io.h5");
  const int32_t v[] = {1, 2, 3};
  const int64_t huge[] = {1, (int64_t)1 << 40};
  sr_h5file f;
  ASSERT_EQ(sr_h5_create(&f, path.c_str(), kZstd3), SR_OK);
  ASSERT_EQ(sr_h5_write_array(&f, "/a", SR_H5_INT32, v, 3), SR_OK);
  ASSERT_EQ(sr_h5_write_array(&f, "/huge", SR_H5_INT64, huge, 2), SR_OK);
  f.compression.level = 0;  // outside zstd's [1, 22]
  EXPECT_EQ(sr_h5_write_array(&f, "/bad_level", SR_H5_INT32, v, 3), SR_EINVAL);
  EXPECT_TRUE(contains(sr_error_message(), path + ": /bad_level: zstd level 0 outside [1, 22]"))
      << sr_error_message();
  f.compression.level = 3;
  EXPECT_EQ(sr_h5_write_array(&f, "/a", SR_H5_INT32, v, 3), SR_EIO);  // exists already
  EXPECT_TRUE(contains(sr_error_message(), path + ": /a: cannot create dataset (HDF5: ")) << sr_error_message();
  ASSERT_EQ(sr_h5_commit(&f), SR_OK);

  ASSERT_EQ(sr_h5_open(&f, path.c_str()), SR_OK);
  void *data;
  int64_t out[3], scalar;
  EXPECT_EQ(sr_h5_read_array(&f, "/a", SR_H5_INT32, 4, &data, nullptr), SR_EFORMAT);
  EXPECT_EQ(std::string(sr_error_message()), path + ": /a: has 3 elements, expected 4");
  EXPECT_EQ(data, nullptr);
  EXPECT_EQ(sr_h5_read_range(&f, "/a", SR_H5_INT64, 2, 4, out), SR_EFORMAT);
  EXPECT_EQ(std::string(sr_error_message()), path + ": /a: range [2, 4) outside the 3 elements");
  EXPECT_EQ(sr_h5_read_array(&f, "/missing", SR_H5_INT32, -1, &data, nullptr), SR_EFORMAT);
  EXPECT_EQ(std::string(sr_error_message()), path + ": /missing: missing dataset");
  EXPECT_EQ(sr_h5_read_array(&f, "/a", SR_H5_FLOAT32, -1, &data, nullptr), SR_EFORMAT);
  EXPECT_TRUE(contains(sr_error_message(), "/a: stored as integers, expected floating point")) << sr_error_message();
  // 2^40 does not fit int32: refused rather than silently clamped.
  EXPECT_EQ(sr_h5_read_array(&f, "/huge", SR_H5_INT32, -1, &data, nullptr), SR_EFORMAT);
  EXPECT_TRUE(contains(sr_error_message(), path + ": /huge: a value does not fit int32")) << sr_error_message();
  EXPECT_EQ(sr_h5_read_attr_int64(&f, "/a", "nope", &scalar), SR_EFORMAT);
  EXPECT_EQ(std::string(sr_error_message()), path + ": /a: missing attribute 'nope'");
  sr_h5_close(&f);
}

TEST(H5io, UncommittedFileIsRemovedAndOpenErrorsAreClear) {
  srtest::TempDir dir;
  std::string path = dir.file("gone.h5");
  sr_h5file f;
  ASSERT_EQ(sr_h5_create(&f, path.c_str(), kZstd3), SR_OK);
  sr_h5_close(&f);
  EXPECT_EQ(srtest::run_command("ls -A '" + dir.path() + "'").output, "");

  EXPECT_EQ(sr_h5_open(&f, path.c_str()), SR_EIO);
  EXPECT_TRUE(contains(sr_error_message(), "'" + path + "': No such file or directory")) << sr_error_message();
  EXPECT_EQ(sr_h5_open(&f, dir.path().c_str()), SR_EIO);
  EXPECT_TRUE(contains(sr_error_message(), "is a directory")) << sr_error_message();
  srtest::write_file(path, "this is text, not HDF5\n");
  EXPECT_EQ(sr_h5_open(&f, path.c_str()), SR_EFORMAT);
  EXPECT_EQ(std::string(sr_error_message()), path + " is not an HDF5 file");
  // Files are built in memory: a bad directory is reported when committing.
  ASSERT_EQ(sr_h5_create(&f, (dir.path() + "/no/such/dir/x.h5").c_str(), kZstd3), SR_OK);
  EXPECT_EQ(sr_h5_commit(&f), SR_EIO);
  EXPECT_TRUE(contains(sr_error_message(), "cannot create")) << sr_error_message();
  EXPECT_TRUE(contains(sr_error_message(), "No such file or directory")) << sr_error_message();
}

// ---- dataset format ----------------------------------------------------------------

TEST(Dataset, RoundTripWithFeaturesAndValues) {
  srtest::TempDir dir;
  std::string path = dir.file("tiny.h5");
  Dataset in, out;
  build_tiny(&in.d);
  ASSERT_EQ(sr_dataset_validate(&in.d, "tiny"), SR_OK) << sr_error_message();
  ASSERT_EQ(sr_dataset_write(path.c_str(), &in.d, kZstd3), SR_OK) << sr_error_message();
  ASSERT_EQ(sr_dataset_read(path.c_str(), &out.d), SR_OK) << sr_error_message();
  expect_same_dataset(in.d, out.d);
  EXPECT_FLOAT_EQ(out.d.train.values[3], 10.0f * 1 + 1 + 0.5f);  // row 1, column 1
}

TEST(Dataset, RoundTripOfSyntheticSplitAndRowRanges) {
  srtest::TempDir dir;
  std::string path = dir.file("synth.h5");
  write_synth(path, 600, 150, 60);
  Dataset d;
  ASSERT_EQ(sr_dataset_read(path.c_str(), &d.d), SR_OK) << sr_error_message();
  ASSERT_EQ(d.d.train.n_rows, 480);
  EXPECT_EQ(d.d.n_item_features, 3);

  // A middle range of the training rows equals the slice of the full read.
  sr_csr part, expected;
  ASSERT_EQ(sr_dataset_read_csr_rows(path.c_str(), "/splits/train", 137, 301, &part), SR_OK) << sr_error_message();
  sr_csr_slice_rows(&d.d.train, 137, 301, &expected);
  expect_same_csr(part, expected, "train[137, 301)");
  sr_csr_free(&part);
  sr_csr_free(&expected);
  // Empty and complete ranges, another group.
  ASSERT_EQ(sr_dataset_read_csr_rows(path.c_str(), "/splits/train", 480, 480, &part), SR_OK);
  EXPECT_EQ(part.n_rows, 0);
  EXPECT_EQ(part.nnz, 0);
  sr_csr_free(&part);
  ASSERT_EQ(sr_dataset_read_csr_rows(path.c_str(), "/splits/test/heldout", 0, 60, &part), SR_OK);
  expect_same_csr(part, d.d.test.heldout, "test heldout");
  sr_csr_free(&part);
  EXPECT_EQ(sr_dataset_read_csr_rows(path.c_str(), "/splits/train", 400, 481, &part), SR_EINVAL);
  EXPECT_TRUE(contains(sr_error_message(), "/splits/train: rows [400, 481) outside the 480 rows"))
      << sr_error_message();
  EXPECT_EQ(part.indptr, nullptr);
}

TEST(Dataset, EveryArrayIsZstdCompressed) {
  srtest::TempDir dir;
  std::string path = dir.file("synth.h5");
  write_synth(path, 3000, 400, 300, {SR_H5_ZSTD, 5});
  Dataset d;
  ASSERT_EQ(sr_dataset_read(path.c_str(), &d.d), SR_OK) << sr_error_message();
  hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  ASSERT_GE(file, 0);
  for (const char *obj : {"/splits/train/indices", "/splits/train/indptr", "/splits/valid/foldin/indices",
                          "/features/item/tags/indices"}) {
    hid_t ds = H5Dopen2(file, obj, H5P_DEFAULT), dcpl = H5Dget_create_plist(ds);
    bool has_zstd = false;
    for (int i = 0; i < H5Pget_nfilters(dcpl); i++) {
      unsigned flags, cd[4];
      size_t n_cd = 4;
      H5Z_filter_t id = H5Pget_filter2(dcpl, (unsigned)i, &flags, &n_cd, cd, 0, nullptr, nullptr);
      if (id == SR_H5Z_FILTER_ZSTD) {
        has_zstd = true;
        EXPECT_EQ(n_cd, 1u);
        EXPECT_EQ(cd[0], 5u) << "cd_values[0] is the level";
        EXPECT_EQ(flags & H5Z_FLAG_OPTIONAL, 0u) << "mandatory";
      }
    }
    EXPECT_TRUE(has_zstd) << obj;
    EXPECT_EQ(H5Pget_layout(dcpl), H5D_CHUNKED) << obj;
    H5Pclose(dcpl);
    H5Dclose(ds);
  }
  H5Fclose(file);
  // Raw bytes of the interaction arrays alone exceed the whole file.
  const sr_csr *parts[] = {&d.d.train, &d.d.valid.foldin, &d.d.valid.heldout, &d.d.test.foldin, &d.d.test.heldout};
  int64_t raw = 0;
  for (const sr_csr *m : parts) raw += (m->n_rows + 1) * 8 + m->nnz * 4;
  EXPECT_LT(file_size(path), raw * 6 / 10) << "raw " << raw;
}

TEST(Dataset, ValidateRejectsInconsistentMemory) {
  Dataset d;
  build_tiny(&d.d);
  d.d.item_features[0].values.indices[1] = 0;  // fine: single value per row, still valid
  EXPECT_EQ(sr_dataset_validate(&d.d, "mem"), SR_OK) << sr_error_message();
  d.d.valid.user_ids[1] = 4;  // user 4 is a test user
  EXPECT_EQ(sr_dataset_validate(&d.d, "mem"), SR_EFORMAT);
  EXPECT_EQ(std::string(sr_error_message()),
            "mem: /splits/test/user_ids: user 4 is also in /splits/valid (the strong protocol needs disjoint users)");
  d.d.protocol = SR_PROTOCOL_WEAK;  // the weak protocol reuses users across splits
  EXPECT_EQ(sr_dataset_validate(&d.d, "mem"), SR_OK) << sr_error_message();
  d.d.valid.user_ids[1] = 8;
  EXPECT_EQ(sr_dataset_validate(&d.d, "mem"), SR_EFORMAT);
  EXPECT_TRUE(contains(sr_error_message(), "/splits/valid/user_ids: row 1 has user 8 outside [0, 8)"));
  d.d.valid.user_ids[1] = 6;
  d.d.n_items = 7;  // CSRs still have 6 columns
  EXPECT_EQ(sr_dataset_validate(&d.d, "mem"), SR_EFORMAT);
  EXPECT_EQ(std::string(sr_error_message()), "mem: /splits/train: 6 columns, expected 7");
  d.d.n_items = 6;
  sr_csr_free(&d.d.user_features[0].values);
  d.d.user_features[0].values = csr_from_rows({{0}, {1}}, 2);
  EXPECT_EQ(sr_dataset_validate(&d.d, "mem"), SR_EFORMAT);
  EXPECT_EQ(std::string(sr_error_message()), "mem: /features/user/age: 2 rows, expected one per user (8)");
  sr_csr_free(&d.d.user_features[0].values);
  d.d.user_features[0].values = csr_from_rows({{0, 1}, {1}, {1}, {0}, {0}, {1}, {0}, {1}}, 2);
  EXPECT_EQ(sr_dataset_validate(&d.d, "mem"), SR_EFORMAT);
  EXPECT_EQ(std::string(sr_error_message()), "mem: /features/user/age: single-valued feature has 2 values in row 0");
}

// A good tiny file, damaged one way per test; reading must fail naming the
// file, the HDF5 object and the problem.
class BadFile : public ::testing::Test {
 protected:
  void SetUp() override {
    path = dir.file("data.h5");
    Dataset d;
    build_tiny(&d.d);
    ASSERT_EQ(sr_dataset_write(path.c_str(), &d.d, kZstd3), SR_OK) << sr_error_message();
  }
  void expect_rejected(int code, const std::vector<std::string> &fragments) {
    Dataset d;
    EXPECT_EQ(sr_dataset_read(path.c_str(), &d.d), code);
    std::string msg = sr_error_message();
    EXPECT_TRUE(contains(msg, path)) << msg;
    for (const auto &f : fragments) EXPECT_TRUE(contains(msg, f)) << "'" << f << "' not in: " << msg;
    EXPECT_EQ(d.d.train.indptr, nullptr) << "nothing is left allocated";
  }
  srtest::TempDir dir;
  std::string path;
};

// train indptr is [0, 3, 5, 8, 9]; indptr[2] = 1 makes row 1 go from 3 back to 1.
TEST_F(BadFile, NonMonotoneIndptr) {
  H5Edit(path).set_int64("/splits/train/indptr", 2, 1);
  expect_rejected(SR_EFORMAT, {path + ": /splits/train: indptr not monotone at row 1"});
}

// train indices are [0 1 2 | 1 3 | 0 4 5 | 2]; entry 4 (row 1) becomes 6 = n_items.
TEST_F(BadFile, IndexOutOfRange) {
  H5Edit(path).set_int32("/splits/train/indices", 4, 6);
  expect_rejected(SR_EFORMAT, {"/splits/train: row 1 has column 6 out of range [0, 6)"});
}

TEST_F(BadFile, DuplicateIndexInRow) {
  H5Edit(path).set_int32("/splits/train/indices", 1, 0);  // row 0 becomes [0 0 2]
  expect_rejected(SR_EFORMAT, {"/splits/train: row 0 columns not strictly increasing", "duplicate"});
}

TEST_F(BadFile, WrongSchemaVersion) {
  H5Edit(path).set_attr_int64("/", "shardrec_schema_version", 2);
  expect_rejected(SR_EFORMAT, {"schema version 2 is not supported (this build reads version 1)"});
}

TEST_F(BadFile, MissingSchemaVersion) {
  H5Edit(path).remove_attr("/", "shardrec_schema_version");
  expect_rejected(SR_EFORMAT, {"not a shardrec dataset", "shardrec_schema_version"});
}

TEST_F(BadFile, MissingDataset) {
  H5Edit(path).remove("/splits/valid/heldout/indices");
  expect_rejected(SR_EFORMAT, {path + ": /splits/valid/heldout/indices: missing dataset"});
}

TEST_F(BadFile, UserInTwoSplits) {
  H5Edit(path).set_int64("/splits/valid/user_ids", 0, 5);  // 5 is a training user
  expect_rejected(SR_EFORMAT, {"/splits/valid/user_ids: user 5 is also in /splits/train"});
}

// valid row 0: fold-in [0 2], held-out [3] -> [2]. The rank reading row 0
// refuses it too (issue 13: sharded reads skipped this check).
TEST_F(BadFile, FoldinAndHeldoutOverlap) {
  H5Edit(path).set_int32("/splits/valid/heldout/indices", 0, 2);
  expect_rejected(SR_EFORMAT, {"/splits/valid: row 0 (user 1): item 2 is both fold-in and held-out"});
  Dataset d;
  EXPECT_EQ(sr_dataset_read_shard(path.c_str(), 0, 2, &d.d), SR_EFORMAT);
  EXPECT_TRUE(contains(sr_error_message(), "/splits/valid: row 0 (user 1): item 2 is both fold-in and held-out"))
      << sr_error_message();
}

TEST_F(BadFile, FeatureWithWrongRowCount) {
  H5Edit(path).set_attr_int64("/features/item/genre", "n_rows", 5);
  expect_rejected(SR_EFORMAT, {"/features/item/genre/indptr: has 7 elements, expected 6"});
}

// "tags" has rows of several values; declared single-valued, it is refused by
// a whole read and by every rank's shard read alike (features are read whole).
TEST_F(BadFile, SingleValuedFeatureWithSeveralValuesInAShardedRead) {
  H5Edit(path).set_attr_int64("/features/item/tags", "multi_valued", 0);
  expect_rejected(SR_EFORMAT, {"/features/item/tags: single-valued feature has 2 values in row 0"});
  for (int part = 0; part < 2; part++) {
    Dataset d;
    EXPECT_EQ(sr_dataset_read_shard(path.c_str(), part, 2, &d.d), SR_EFORMAT) << "part " << part;
    EXPECT_TRUE(contains(sr_error_message(), "/features/item/tags: single-valued feature has 2 values in row 0"))
        << sr_error_message();
  }
}

// Every rank checks what it reads (issue 13): ids out of range in its rows,
// absurd sizes in the header; rows are numbered as in the whole split.
TEST_F(BadFile, ShardedReadsCheckUserIdsAndSizes) {
  int64_t n_valid = 0, n_test = 0;
  {
    Dataset whole;
    ASSERT_EQ(sr_dataset_read(path.c_str(), &whole.d), SR_OK) << sr_error_message();
    n_valid = whole.d.valid.n_users;
    n_test = whole.d.test.n_users;
  }
  H5Edit(path).set_int64("/splits/valid/user_ids", 0, 1000000000);  // held by part 0
  H5Edit(path).set_int64("/splits/test/user_ids", n_test - 1, -3);  // held by part 1
  const std::string messages[2] = {
      "/splits/valid/user_ids: row 0 has user 1000000000 outside [0, 8)",
      "/splits/test/user_ids: row " + std::to_string(n_test - 1) + " has user -3 outside [0, 8)"};
  for (int part = 0; part < 2; part++) {
    Dataset d;
    EXPECT_EQ(sr_dataset_read_shard(path.c_str(), part, 2, &d.d), SR_EFORMAT) << "part " << part;
    EXPECT_TRUE(contains(sr_error_message(), messages[part])) << sr_error_message();
  }
  EXPECT_GE(n_valid, 2);
  H5Edit(path).set_attr_int64("/", "n_users", (int64_t)1 << 62);
  Dataset d;
  EXPECT_EQ(sr_dataset_read_shard(path.c_str(), 1, 2, &d.d), SR_EFORMAT);
  EXPECT_TRUE(contains(sr_error_message(), "bad sizes (4611686018427387904 users, 6 items; each at most 2147483647)"))
      << sr_error_message();
}

// Crafted ~100 KB files that declared sizes would turn into huge allocations
// (issue 13): each is a one-line error naming the object, on one rank and on
// two, never an abort.
TEST_F(BadFile, FeatureNameOf300Characters) {
  H5Edit(path).rename("/features/item/genre", "/features/item/" + std::string(300, 'g'));
  expect_rejected(SR_EFORMAT, {"/features/item/ggg", "feature name longer than 63 bytes"});
  Dataset d;
  EXPECT_EQ(sr_dataset_read_shard(path.c_str(), 1, 2, &d.d), SR_EFORMAT);
  EXPECT_TRUE(contains(sr_error_message(), "feature name longer than 63 bytes")) << sr_error_message();
}

TEST_F(BadFile, ChunkedArrayDeclaringTwoToTheFortyElements) {
  H5Edit(path).set_extent("/splits/train/indices", (hsize_t)1 << 40);
  expect_rejected(SR_EFORMAT,
                  {"/splits/train/indices: declares 1099511627776 elements but the file stores 9 of them"});
  SetUp();  // a good file again (shrinking the extent back would visit 2^40 / 9 chunk slots)
  H5Edit(path).set_extent("/splits/valid/user_ids", (hsize_t)1 << 40);
  for (int part = 0; part < 2; part++) {
    Dataset d;
    EXPECT_EQ(sr_dataset_read_shard(path.c_str(), part, 2, &d.d), SR_EFORMAT) << part;
    EXPECT_TRUE(contains(sr_error_message(), "/splits/valid/user_ids: declares 1099511627776 elements"))
        << sr_error_message();
  }
}

TEST_F(BadFile, UserCountOfTwoToTheSixtyTwo) {
  H5Edit(path).set_attr_int64("/", "n_users", (int64_t)1 << 62);
  expect_rejected(SR_EFORMAT, {"bad sizes (4611686018427387904 users, 6 items; each at most 2147483647)"});
  Dataset d;
  EXPECT_EQ(sr_dataset_read_features(path.c_str(), &d.d), SR_EFORMAT);
  EXPECT_TRUE(contains(sr_error_message(), "bad sizes (4611686018427387904 users")) << sr_error_message();
}

// train indptr is [0, 3, 5, 8, 9]: its end and its start must match the
// indices the file holds, whichever rank reads which rows.
TEST_F(BadFile, ShardedReadsCheckIndptrAgainstTheStoredIndices) {
  H5Edit(path).set_int64("/splits/train/indptr", 4, (int64_t)1 << 40);
  expect_rejected(SR_EFORMAT, {"/splits/train"});
  for (int part = 0; part < 2; part++) {
    Dataset d;
    EXPECT_EQ(sr_dataset_read_shard(path.c_str(), part, 2, &d.d), SR_EFORMAT) << part;
    EXPECT_TRUE(
        contains(sr_error_message(), "/splits/train: indptr ends at 1099511627776 but indices has 9 elements"))
        << sr_error_message();
  }
  H5Edit(path).set_int64("/splits/train/indptr", 4, 9);
  H5Edit(path).set_int64("/splits/train/indptr", 0, 1);
  Dataset d;
  EXPECT_EQ(sr_dataset_read_shard(path.c_str(), 0, 2, &d.d), SR_EFORMAT);
  EXPECT_TRUE(contains(sr_error_message(), "/splits/train: indptr starts at 1, expected 0")) << sr_error_message();
}

TEST_F(BadFile, IndicesStoredAsFloats) {
  const float f[9] = {0, 1, 2, 1, 3, 0, 4, 5, 2};
  H5Edit(path).replace("/splits/train/indices", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, f, 9);
  expect_rejected(SR_EFORMAT, {"/splits/train/indices: stored as floating point, expected integers"});
}

TEST_F(BadFile, IndexTooLargeForInt32) {
  const int64_t v[9] = {0, 1, 2, 1, (int64_t)1 << 33, 0, 4, 5, 2};
  H5Edit(path).replace("/splits/train/indices", H5T_STD_I64LE, H5T_NATIVE_INT64, v, 9);
  expect_rejected(SR_EFORMAT, {"/splits/train/indices: a value does not fit int32"});
}

TEST_F(BadFile, TruncatedFile) {
  std::string bytes = srtest::read_file(path);
  srtest::write_file(path, bytes.substr(0, bytes.size() / 2));
  expect_rejected(SR_EFORMAT, {"damaged HDF5 file"});
}

TEST_F(BadFile, GarbageAndMissingFiles) {
  srtest::write_file(path, std::string(4096, '\x5a'));
  expect_rejected(SR_EFORMAT, {path + " is not an HDF5 file"});
  path = dir.file("does_not_exist.h5");
  expect_rejected(SR_EIO, {"No such file or directory"});
}

TEST_F(BadFile, HDF5FileWithoutTheFormat) {
  sr_h5file f;
  const int32_t v[] = {1};
  ASSERT_EQ(sr_h5_create(&f, path.c_str(), kZstd3), SR_OK);
  ASSERT_EQ(sr_h5_write_array(&f, "/something", SR_H5_INT32, v, 1), SR_OK);
  ASSERT_EQ(sr_h5_commit(&f), SR_OK);
  expect_rejected(SR_EFORMAT, {"not a shardrec dataset"});
}

TEST_F(BadFile, RowRangeReadValidatesToo) {
  H5Edit(path).set_int32("/splits/train/indices", 4, 6);
  sr_csr part;
  EXPECT_EQ(sr_dataset_read_csr_rows(path.c_str(), "/splits/train", 1, 3, &part), SR_EFORMAT);
  EXPECT_TRUE(contains(sr_error_message(), "/splits/train rows [1, 3): row 0 has column 6 out of range"))
      << sr_error_message();
  EXPECT_EQ(sr_dataset_read_csr_rows(path.c_str(), "/splits/train", 2, 4, &part), SR_OK) << "rows 2..3 are fine";
  sr_csr_free(&part);
}

// ---- strong-generalisation split -----------------------------------------------------

namespace {

// 40 users x 32 items: user u has (u % 12) + 1 items {(7u + 3j) % 30}, with
// values; item 30 belongs to nobody and item 31 only to user 0.
sr_csr split_input() {
  Rows rows(40);
  for (int u = 0; u < 40; u++) {
    std::set<int32_t> items;
    for (int j = 0; j <= u % 12; j++) items.insert((7 * u + 3 * j) % 30);
    if (u == 0) items.insert(31);
    rows[(size_t)u].assign(items.begin(), items.end());
  }
  return csr_from_rows(rows, 32, true);
}

std::vector<int32_t> old_ids(const sr_csr &m, int64_t r, const int32_t *item_map) {
  std::vector<int32_t> out;
  for (int64_t k = m.indptr[r]; k < m.indptr[r + 1]; k++) out.push_back(item_map[m.indices[k]]);
  return out;
}

}  // namespace

TEST(Split, StrongGeneralisationInvariants) {
  sr_csr full = split_input();
  sr_feature feature;
  Rows feature_rows(32);
  for (int i = 0; i < 32; i++) feature_rows[(size_t)i] = {i % 5};
  set_feature(&feature, "bucket", 0, 5, feature_rows);
  sr_split_opts o;
  sr_split_opts_default(&o);
  o.n_heldout_users = 6;
  Dataset d;
  int32_t *item_map;
  ASSERT_EQ(sr_split_strong(&full, &feature, 1, &o, &d.d, &item_map), SR_OK) << sr_error_message();
  ASSERT_EQ(sr_dataset_validate(&d.d, "split"), SR_OK) << sr_error_message();
  const Rows full_rows = rows_of(full);
  EXPECT_EQ(d.d.protocol, SR_PROTOCOL_STRONG);
  EXPECT_EQ(d.d.n_users, 40);
  ASSERT_EQ(d.d.train.n_rows, 28);
  ASSERT_EQ(d.d.valid.n_users, 6);
  ASSERT_EQ(d.d.test.n_users, 6);

  // Every user in exactly one split.
  std::vector<int64_t> all = ids_of(d.d.train_user_ids, 28);
  for (const sr_eval_split *s : {&d.d.valid, &d.d.test})
    for (int64_t r = 0; r < s->n_users; r++) all.push_back(s->user_ids[r]);
  std::sort(all.begin(), all.end());
  for (int64_t u = 0; u < 40; u++) EXPECT_EQ(all[(size_t)u], u);

  // Items: exactly those of training users, in increasing old-id order.
  std::set<int32_t> train_items;
  for (int64_t r = 0; r < 28; r++)
    for (int32_t c : full_rows[(size_t)d.d.train_user_ids[r]]) train_items.insert(c);
  ASSERT_EQ(d.d.n_items, (int64_t)train_items.size());
  EXPECT_TRUE(std::equal(train_items.begin(), train_items.end(), item_map));
  EXPECT_EQ(train_items.count(30), 0u);

  // Training rows are the users' rows, renumbered, values kept.
  for (int64_t r = 0; r < 28; r++) {
    int64_t u = d.d.train_user_ids[r];
    EXPECT_EQ(old_ids(d.d.train, r, item_map), full_rows[(size_t)u]) << "user " << u;
    for (int64_t k = d.d.train.indptr[r]; k < d.d.train.indptr[r + 1]; k++)
      EXPECT_EQ(d.d.train.values[k], 10.0f * (float)u + (float)item_map[d.d.train.indices[k]] + 0.5f);
  }

  // Evaluation rows: fold-in + held-out = the row restricted to training items;
  // int(0.2 n) held out when n >= 5 (n = 5..9 -> 1, 10..12 -> 2), none below.
  int64_t users_below_min = 0;
  for (const sr_eval_split *s : {&d.d.valid, &d.d.test}) {
    for (int64_t r = 0; r < s->n_users; r++) {
      int64_t u = s->user_ids[r];
      std::vector<int32_t> kept;
      for (int32_t c : full_rows[(size_t)u])
        if (train_items.count(c)) kept.push_back(c);
      std::vector<int32_t> in = old_ids(s->foldin, r, item_map), out = old_ids(s->heldout, r, item_map);
      std::vector<int32_t> both = in;
      both.insert(both.end(), out.begin(), out.end());
      std::sort(both.begin(), both.end());
      EXPECT_EQ(both, kept) << "user " << u;
      size_t n = kept.size();
      EXPECT_EQ(out.size(), n >= 5 ? n / 5 : 0) << "user " << u << " with " << n << " items";
      users_below_min += n < 5;
    }
  }
  EXPECT_GT(users_below_min, 0) << "the input has short rows; some should land in evaluation";

  // The item feature follows the renumbering.
  ASSERT_EQ(d.d.n_item_features, 1);
  const Rows feature_out = rows_of(d.d.item_features[0].values);
  for (int64_t i = 0; i < d.d.n_items; i++) EXPECT_EQ(feature_out[(size_t)i], std::vector<int32_t>{item_map[i] % 5});
  free(item_map);
  sr_csr_free(&feature.values);
  sr_csr_free(&full);
}

TEST(Split, SeedReproducesAndChanges) {
  sr_csr full = split_input();
  sr_split_opts o;
  sr_split_opts_default(&o);
  o.n_heldout_users = 5;
  Dataset a, b, c;
  ASSERT_EQ(sr_split_strong(&full, nullptr, 0, &o, &a.d, nullptr), SR_OK);
  ASSERT_EQ(sr_split_strong(&full, nullptr, 0, &o, &b.d, nullptr), SR_OK);
  expect_same_dataset(a.d, b.d);
  o.seed = 1234;
  ASSERT_EQ(sr_split_strong(&full, nullptr, 0, &o, &c.d, nullptr), SR_OK);
  EXPECT_NE(ids_of(a.d.test.user_ids, 5), ids_of(c.d.test.user_ids, 5));
  sr_csr_free(&full);
}

// The held-out draw is keyed by user id: with the same seed and user count, the
// last 40 shuffled users are test users whether 40 or 80 users are held out,
// and their held-out items must not depend on how many users came before.
TEST(Split, HeldOutItemsDependOnlyOnTheUser) {
  sr_synth_opts so;
  sr_synth_opts_default(&so);
  so.n_users = 600;
  so.n_items = 40;
  so.mean_items_per_user = 15;
  sr_csr full;
  ASSERT_EQ(sr_synth_generate(&so, &full, nullptr, nullptr), SR_OK);
  sr_split_opts o;
  sr_split_opts_default(&o);
  Dataset a, b;
  o.n_heldout_users = 40;
  ASSERT_EQ(sr_split_strong(&full, nullptr, 0, &o, &a.d, nullptr), SR_OK);
  o.n_heldout_users = 80;
  ASSERT_EQ(sr_split_strong(&full, nullptr, 0, &o, &b.d, nullptr), SR_OK);
  ASSERT_EQ(a.d.n_items, 40);  // same item numbering in both
  ASSERT_EQ(b.d.n_items, 40);
  sr_csr tail_in, tail_out;
  sr_csr_slice_rows(&b.d.test.foldin, 40, 80, &tail_in);
  sr_csr_slice_rows(&b.d.test.heldout, 40, 80, &tail_out);
  EXPECT_EQ(ids_of(a.d.test.user_ids, 40), ids_of(b.d.test.user_ids + 40, 40));
  expect_same_csr(a.d.test.foldin, tail_in, "fold-in");
  expect_same_csr(a.d.test.heldout, tail_out, "held-out");
  EXPECT_GT(a.d.test.heldout.nnz, 0);
  sr_csr_free(&tail_in);
  sr_csr_free(&tail_out);
  sr_csr_free(&full);
}

TEST(Split, RejectsBadOptions) {
  sr_csr full = split_input();
  sr_split_opts o;
  sr_split_opts_default(&o);
  EXPECT_EQ(o.heldout_fraction, 0.2);
  EXPECT_EQ(o.min_items_for_heldout, 5);
  EXPECT_EQ(o.seed, 98765u);
  Dataset d;
  EXPECT_EQ(sr_split_strong(&full, nullptr, 0, &o, &d.d, nullptr), SR_EINVAL);  // n_heldout_users unset
  EXPECT_TRUE(contains(sr_error_message(), "n_heldout_users is 0")) << sr_error_message();
  o.n_heldout_users = 20;  // 2 x 20 = all 40 users
  EXPECT_EQ(sr_split_strong(&full, nullptr, 0, &o, &d.d, nullptr), SR_EINVAL);
  EXPECT_TRUE(contains(sr_error_message(), "leave no training user")) << sr_error_message();
  o.n_heldout_users = 19;
  o.heldout_fraction = 1.0;
  EXPECT_EQ(sr_split_strong(&full, nullptr, 0, &o, &d.d, nullptr), SR_EINVAL);
  o.heldout_fraction = 0.2;
  EXPECT_EQ(sr_split_strong(&full, nullptr, 0, &o, &d.d, nullptr), SR_OK) << "one training user is enough";
  sr_csr_free(&full);
}

// ---- synthetic data ------------------------------------------------------------------

namespace {

struct Synth {
  sr_csr full;
  sr_feature *features = nullptr;
  int n_features = 0;
  explicit Synth(const sr_synth_opts &o) {
    EXPECT_EQ(sr_synth_generate(&o, &full, &features, &n_features), SR_OK) << sr_error_message();
  }
  ~Synth() {
    sr_csr_free(&full);
    for (int i = 0; i < n_features; i++) sr_csr_free(&features[i].values);
    free(features);
  }
};

sr_synth_opts synth_opts(int64_t users, int64_t items) {
  sr_synth_opts o;
  sr_synth_opts_default(&o);
  o.n_users = users;
  o.n_items = items;
  return o;
}

}  // namespace

TEST(Synth, DefaultsAndDeterminism) {
  sr_synth_opts o;
  sr_synth_opts_default(&o);
  EXPECT_EQ(o.n_users, 5000);
  EXPECT_EQ(o.n_items, 2000);
  EXPECT_EQ(o.n_factors, 16);
  EXPECT_EQ(o.mean_items_per_user, 25.0);
  EXPECT_EQ(o.popularity_skew, 1.0);
  EXPECT_EQ(o.seed, 98765u);
  o = synth_opts(300, 120);
  Synth a(o), b(o);
  ASSERT_EQ(sr_csr_validate(&a.full, "synth"), SR_OK) << sr_error_message();
  expect_same_csr(a.full, b.full, "same seed");
  expect_same_features(a.features, a.n_features, b.features, b.n_features, "same seed");
  o.seed = 7;
  Synth c(o);
  EXPECT_NE(rows_of(a.full), rows_of(c.full));
}

// Each user's row comes from streams keyed by the user id: the first 70 rows of
// a 100-user dataset are the 70 rows of a 70-user one.
TEST(Synth, RowsDoNotDependOnOtherUsers) {
  Synth small(synth_opts(70, 90)), large(synth_opts(100, 90));
  sr_csr head;
  sr_csr_slice_rows(&large.full, 0, 70, &head);
  expect_same_csr(small.full, head, "first 70 rows");
  sr_csr_free(&head);
}

TEST(Synth, RowLengthsPopularityAndFeatures) {
  sr_synth_opts o = synth_opts(2000, 500);
  Synth s(o);
  int64_t shortest = INT64_MAX;
  for (int64_t r = 0; r < s.full.n_rows; r++) shortest = std::min(shortest, sr_csr_row_len(&s.full, r));
  EXPECT_GE(shortest, 5);
  double mean = (double)s.full.nnz / 2000.0;
  EXPECT_NEAR(mean, 25.0, 2.5);

  ASSERT_EQ(s.n_features, 3);
  const sr_feature &cluster = s.features[0], &tags = s.features[1], &bucket = s.features[2];
  EXPECT_STREQ(cluster.name, "cluster");
  EXPECT_STREQ(tags.name, "tags");
  EXPECT_STREQ(bucket.name, "pop_bucket");
  EXPECT_EQ(cluster.vocab_size, 16);
  EXPECT_EQ(tags.vocab_size, 16);
  EXPECT_EQ(bucket.vocab_size, 10);
  EXPECT_FALSE(cluster.multi_valued);
  EXPECT_TRUE(tags.multi_valued);
  std::vector<int64_t> per_bucket(10), degree(500), bucket_degree(10);
  for (int64_t k = 0; k < s.full.nnz; k++) degree[(size_t)s.full.indices[k]]++;
  for (int64_t i = 0; i < 500; i++) {
    ASSERT_EQ(sr_csr_row_len(&cluster.values, i), 1);
    ASSERT_EQ(sr_csr_row_len(&bucket.values, i), 1);
    int64_t n_tags = sr_csr_row_len(&tags.values, i);
    EXPECT_GE(n_tags, 2);
    EXPECT_LE(n_tags, 4);
    // The top factor is always among the tags.
    const int32_t *t = tags.values.indices + tags.values.indptr[i];
    EXPECT_TRUE(std::count(t, t + n_tags, cluster.values.indices[i]) == 1) << "item " << i;
    int32_t b = bucket.values.indices[i];
    per_bucket[(size_t)b]++;
    bucket_degree[(size_t)b] += degree[(size_t)i];
  }
  for (int b = 0; b < 10; b++) EXPECT_EQ(per_bucket[(size_t)b], 50) << "deciles of 500 items";
  // Zipf skew 1: the top decile's items draw far more clicks than the bottom's
  // (measured 6.0x); with skew 0 popularity does not depend on the bucket (1.17x).
  EXPECT_GT(bucket_degree[0], 3 * bucket_degree[9]);
  o.popularity_skew = 0.0;
  Synth flat(o);
  std::vector<int64_t> flat_degree(10);
  for (int64_t k = 0; k < flat.full.nnz; k++) {
    int32_t item = flat.full.indices[k];
    flat_degree[(size_t)flat.features[2].values.indices[item]]++;
  }
  EXPECT_LT(flat_degree[0], 2 * flat_degree[9]);
  EXPECT_GT(flat_degree[0] * 2, flat_degree[9]);
}

namespace {

// P(two clicks of one user share their item's cluster) / P(two independent
// clicks on distinct items do). Distinct, because a row never repeats an item:
// with cluster shares c and item shares q, chance = (sum c^2 - sum q^2) / (1 - sum q^2).
double same_cluster_lift(const sr_synth_opts &o) {
  Synth s(o);
  const int32_t *cluster = s.features[0].values.indices;
  std::vector<double> cluster_share((size_t)o.n_factors), item_share((size_t)o.n_items);
  for (int64_t k = 0; k < s.full.nnz; k++) {
    cluster_share[(size_t)cluster[s.full.indices[k]]] += 1.0 / (double)s.full.nnz;
    item_share[(size_t)s.full.indices[k]] += 1.0 / (double)s.full.nnz;
  }
  double c2 = 0.0, q2 = 0.0;
  for (double c : cluster_share) c2 += c * c;
  for (double q : item_share) q2 += q * q;
  double chance = (c2 - q2) / (1.0 - q2);
  double same = 0.0, pairs = 0.0;
  for (int64_t r = 0; r < s.full.n_rows; r++)
    for (int64_t a = s.full.indptr[r]; a < s.full.indptr[r + 1]; a++)
      for (int64_t b = a + 1; b < s.full.indptr[r + 1]; b++) {
        same += cluster[s.full.indices[a]] == cluster[s.full.indices[b]];
        pairs += 1.0;
      }
  return same / pairs / chance;
}

}  // namespace

// Planted structure: a user's clicks cluster by the items' top factor; at a huge
// temperature the factors stop mattering and the lift falls to ~1.
TEST(Synth, ClicksFollowThePlantedFactors) {
  sr_synth_opts o = synth_opts(1000, 400);
  double lift = same_cluster_lift(o);
  o.temperature = 100.0;
  double lift_hot = same_cluster_lift(o);
  EXPECT_GT(lift, 1.2) << "measured 1.42";
  EXPECT_NEAR(lift_hot, 1.0, 0.05);
}

TEST(Synth, OptionsWithoutFeaturesAndBadOptions) {
  sr_synth_opts o = synth_opts(50, 30);
  o.with_item_features = 0;
  Synth s(o);
  EXPECT_EQ(s.n_features, 0);
  EXPECT_EQ(s.features, nullptr);
  sr_csr full;
  o.mean_items_per_user = 3.0;
  EXPECT_EQ(sr_synth_generate(&o, &full, nullptr, nullptr), SR_EINVAL);
  EXPECT_TRUE(contains(sr_error_message(), "mean items per user 3")) << sr_error_message();
  o.mean_items_per_user = 10.0;
  o.temperature = 0.0;
  EXPECT_EQ(sr_synth_generate(&o, &full, nullptr, nullptr), SR_EINVAL);
  // Fewer items than the minimum row length: rows hold every item.
  o = synth_opts(20, 3);
  Synth few(o);
  for (int64_t r = 0; r < 20; r++) EXPECT_EQ(sr_csr_row_len(&few.full, r), 3);
}

// ---- other tools read our files ----------------------------------------------------

TEST(Interop, H5dumpReadsWithThePlugin) {
  if (srtest::run_command("command -v h5dump").exit_code != 0) GTEST_SKIP() << "h5dump not installed (hdf5-tools)";
  srtest::TempDir dir;
  std::string path = dir.file("tiny.h5");
  Dataset d;
  build_tiny(&d.d);
  ASSERT_EQ(sr_dataset_write(path.c_str(), &d.d, kZstd3), SR_OK);
  auto r = srtest::run_command(std::string("HDF5_PLUGIN_PATH='") + SHARDREC_PLUGIN_DIR +
                               "' h5dump -d /splits/train/indices '" + path + "'");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "(0): 0, 1, 2, 1, 3, 0, 4, 5, 2")) << r.output;
  // Without the plugin the data cannot be decoded: the test really used it.
  auto without =
      srtest::run_command("HDF5_PLUGIN_PATH='" + dir.path() + "' h5dump -d /splits/train/indices '" + path + "'");
  EXPECT_FALSE(contains(without.output, "(0): 0, 1, 2, 1, 3, 0, 4, 5, 2")) << without.output;
}

namespace {

// Skips unless /usr/bin/python3 has h5py and hdf5plugin.
bool have_h5py() { return srtest::run_command("/usr/bin/python3 -c 'import h5py, hdf5plugin'").exit_code == 0; }

// Runs a Python script with h5py; HDF5_PLUGIN_PATH supplies our zstd filter when
// hdf5plugin does not embed one (Debian's python3-hdf5plugin does not); when it
// does, hdf5plugin's own registered filter takes precedence.
srtest::CommandResult run_python(const srtest::TempDir &dir, const std::string &script, const std::string &arg) {
  std::string file = dir.file("script.py");
  srtest::write_file(file, script);
  return srtest::run_command(std::string("HDF5_PLUGIN_PATH='") + SHARDREC_PLUGIN_DIR + "' /usr/bin/python3 '" + file +
                             "' '" + arg + "'");
}

const char *const kPythonPrelude = R"(import sys, h5py, hdf5plugin, numpy as np
own = "zstd" in hdf5plugin.get_config().build_config.embedded_filters
print("zstd filter from", "hdf5plugin" if own else "HDF5_PLUGIN_PATH")
)";

}  // namespace

TEST(Interop, H5pyReadsOurFiles) {
  if (!have_h5py()) GTEST_SKIP() << "/usr/bin/python3 lacks h5py or hdf5plugin (python3-h5py python3-hdf5plugin)";
  srtest::TempDir dir;
  std::string path = dir.file("tiny.h5");
  Dataset d;
  build_tiny(&d.d);
  ASSERT_EQ(sr_dataset_write(path.c_str(), &d.d, kZstd3), SR_OK);
  std::string script = std::string(kPythonPrelude) + R"(f = h5py.File(sys.argv[1], "r")
print("indices", list(f["/splits/train/indices"][:]))
print("values", list(f["/splits/train/values"][:]))
print("empty", f["/splits/test/heldout/indices"].shape, f["/splits/test/heldout/indptr"][:].tolist())
print("attrs", f.attrs["protocol"], int(f.attrs["shardrec_schema_version"]), int(f.attrs["n_items"]))
print("features", list(f["/features/item"]), int(f["/features/item/tags"].attrs["vocab_size"]))
)";
  auto r = run_python(dir, script, path);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::cout << r.output.substr(0, r.output.find('\n')) << "\n";
  EXPECT_TRUE(contains(r.output, "indices [0, 1, 2, 1, 3, 0, 4, 5, 2]")) << r.output;
  // values 10 r + c + 0.5 for the rows {0 1 2} {1 3} {0 4 5} {2}
  EXPECT_TRUE(contains(r.output, "values [0.5, 1.5, 2.5, 11.5, 13.5, 20.5, 24.5, 25.5, 32.5]")) << r.output;
  EXPECT_TRUE(contains(r.output, "empty (0,) [0, 0, 0]")) << r.output;
  EXPECT_TRUE(contains(r.output, "attrs strong 1 6")) << r.output;
  EXPECT_TRUE(contains(r.output, "features ['genre', 'tags'] 4")) << r.output;
}

// The format is specified by datasets/README.md, not by our writer: a file
// written independently with h5py (fixed-length and variable-length string
// attributes, zstd through hdf5plugin when it has it) must read back.
TEST(Interop, H5pyWrittenDatasetReadsBack) {
  if (!have_h5py()) GTEST_SKIP() << "/usr/bin/python3 lacks h5py or hdf5plugin (python3-h5py python3-hdf5plugin)";
  srtest::TempDir dir;
  std::string path = dir.file("py.h5");
  std::string script =
      std::string(kPythonPrelude) +
      R"(z = dict(hdf5plugin.Zstd(clevel=4)) if own else dict(compression=32015, compression_opts=(4,))
f = h5py.File(sys.argv[1], "w")
f.attrs["shardrec_schema_version"] = np.int64(1)
f.attrs["protocol"] = np.bytes_("strong")
f.attrs["n_users"] = 5
f.attrs["n_items"] = 4
f.attrs["created_by"] = "a python script"
def csr(group, rows, n_cols):
    g = f.require_group(group)
    g.create_dataset("indptr", data=np.cumsum([0] + [len(r) for r in rows]).astype(np.int64), chunks=True, **z)
    g.create_dataset("indices", data=np.array([c for r in rows for c in r], dtype=np.int32), chunks=True, **z)
    g.attrs["n_rows"] = len(rows)
    g.attrs["n_cols"] = n_cols
csr("/splits/train", [[0, 1], [1, 2, 3], [3]], 4)
f["/splits/train"].create_dataset("user_ids", data=np.array([4, 0, 2], dtype=np.int64), **z)
for name, user, foldin, heldout in (("valid", 1, [[0, 2]], [[3]]), ("test", 3, [[1]], [[]])):
    f.create_dataset(f"/splits/{name}/user_ids", data=np.array([user], dtype=np.int64), **z)
    csr(f"/splits/{name}/foldin", foldin, 4)
    csr(f"/splits/{name}/heldout", heldout, 4)
csr("/features/item/kind", [[1], [0], [1], [2]], 3)
f["/features/item/kind"].attrs["vocab_size"] = 3
f["/features/item/kind"].attrs["multi_valued"] = 0
f.close()
)";
  auto r = run_python(dir, script, path);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::cout << r.output;
  Dataset d;
  ASSERT_EQ(sr_dataset_read(path.c_str(), &d.d), SR_OK) << sr_error_message();
  EXPECT_EQ(d.d.protocol, SR_PROTOCOL_STRONG);
  EXPECT_EQ(rows_of(d.d.train), (Rows{{0, 1}, {1, 2, 3}, {3}}));
  EXPECT_EQ(ids_of(d.d.train_user_ids, 3), (std::vector<int64_t>{4, 0, 2}));
  EXPECT_EQ(rows_of(d.d.valid.heldout), (Rows{{3}}));
  EXPECT_EQ(d.d.test.heldout.nnz, 0);
  ASSERT_EQ(d.d.n_item_features, 1);
  EXPECT_STREQ(d.d.item_features[0].name, "kind");
  EXPECT_EQ(d.d.n_user_features, 0);
}

// ---- the `shardrec data` command ---------------------------------------------------

TEST(DataCommand, SynthInfoValidate) {
  srtest::TempDir dir;
  std::string bin = SHARDREC_BINARY, path = dir.file("s.h5");
  auto synth =
      srtest::run_command(bin + " data synth -o '" + path +
                          "' --users 400 --items 120 --factors 8 --mean-items 12 --seed 5 --compression zstd:7");
  ASSERT_EQ(synth.exit_code, 0) << synth.output;
  EXPECT_TRUE(contains(synth.output, "wrote " + path + ": 400 users")) << synth.output;

  auto info = srtest::run_command(bin + " data info '" + path + "'");
  EXPECT_EQ(info.exit_code, 0) << info.output;
  EXPECT_TRUE(contains(info.output, "protocol strong")) << info.output;
  EXPECT_TRUE(contains(info.output, "train       320 users")) << info.output;  // 400 - 2 x 40 (10%)
  EXPECT_TRUE(contains(info.output, "valid        40 users")) << info.output;
  EXPECT_TRUE(contains(info.output, "tags         multi-valued, vocab 8")) << info.output;

  auto ok = srtest::run_command(bin + " data validate '" + path + "'");
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
  EXPECT_TRUE(contains(ok.output, path + ": OK (400 users")) << ok.output;

  // Deterministic: the same command writes the same arrays.
  std::string again = dir.file("again.h5");
  ASSERT_EQ(srtest::run_command(bin + " data synth -o '" + again +
                                "' --users 400 --items 120 --factors 8 --mean-items 12 --seed 5")
                .exit_code,
            0);
  Dataset a, b;
  ASSERT_EQ(sr_dataset_read(path.c_str(), &a.d), SR_OK);
  ASSERT_EQ(sr_dataset_read(again.c_str(), &b.d), SR_OK);
  expect_same_dataset(a.d, b.d);

  { H5Edit(path).set_int32("/splits/train/indices", 0, 1000); }
  auto bad = srtest::run_command(bin + " data validate '" + path + "'");
  EXPECT_EQ(bad.exit_code, 1) << bad.output;
  EXPECT_TRUE(contains(bad.output, "error: " + path + ": /splits/train: row 0 has column 1000 out of range"))
      << bad.output;
  EXPECT_FALSE(contains(bad.output, "OK"));
  EXPECT_EQ(srtest::run_command(bin + " data info '" + dir.file("none.h5") + "'").exit_code, 1);
}

TEST(DataCommand, UsageErrors) {
  std::string bin = SHARDREC_BINARY;
  auto help = srtest::run_command(bin + " data --help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_TRUE(contains(help.output, "usage: shardrec data synth -o FILE")) << help.output;
  EXPECT_EQ(srtest::run_command(bin + " data synth --help").exit_code, 0);
  EXPECT_EQ(srtest::run_command(bin + " data").exit_code, 2);
  EXPECT_EQ(srtest::run_command(bin + " data frobnicate").exit_code, 2);
  auto missing = srtest::run_command(bin + " data synth --users 10");
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_TRUE(contains(missing.output, "missing -o FILE")) << missing.output;
  auto not_int = srtest::run_command(bin + " data synth -o /tmp/x.h5 --users ten");
  EXPECT_EQ(not_int.exit_code, 2);
  EXPECT_TRUE(contains(not_int.output, "--users: expected an integer")) << not_int.output;
  EXPECT_EQ(srtest::run_command(bin + " data synth -o /tmp/x.h5 --bogus").exit_code, 2);
  EXPECT_EQ(srtest::run_command(bin + " data synth -o /tmp/x.h5 --compression zstd:40").exit_code, 2);
  auto low_mean = srtest::run_command(bin + " data synth -o /tmp/x.h5 --users 20 --mean-items 2");
  EXPECT_EQ(low_mean.exit_code, 2) << low_mean.output;
  EXPECT_TRUE(contains(low_mean.output, "mean items per user 2")) << low_mean.output;
  EXPECT_EQ(srtest::run_command(bin + " data validate a.h5 b.h5").exit_code, 2);
  EXPECT_EQ(srtest::run_command(bin + " data info").exit_code, 2);
}

// ---- the long-tail benchmark: causal features ------------------------------------------

namespace {

sr_synth_opts causal_opts(int64_t users, int64_t items) {
  sr_synth_opts o = synth_opts(users, items);
  o.causal_features = 1;
  return o;
}

// The factors the generator planted for s's items.
std::vector<float> factors_of(const sr_synth_opts &o, const Synth &s) {
  std::vector<float> q((size_t)(o.n_items * o.n_factors));
  sr_synth_item_factors(&o, s.features, q.data());
  return q;
}

// The item's values of feature f, as one key.
std::vector<int32_t> values_of(const sr_feature &f, int64_t item) {
  return std::vector<int32_t>(f.values.indices + f.values.indptr[item], f.values.indices + f.values.indptr[item + 1]);
}

// Share of the factors' variance that grouping the items by their exact value
// set of feature f explains (1 - within-group / total sum of squares).
double explained_by(const sr_synth_opts &o, const std::vector<float> &q, const sr_feature &f) {
  const int k = o.n_factors;
  std::map<std::vector<int32_t>, std::vector<int64_t>> groups;
  for (int64_t i = 0; i < o.n_items; i++) groups[values_of(f, i)].push_back(i);
  double total = 0, within = 0;
  std::vector<double> mean((size_t)k);
  for (int64_t i = 0; i < o.n_items; i++)
    for (int j = 0; j < k; j++) mean[(size_t)j] += q[(size_t)(i * k + j)] / (double)o.n_items;
  for (int64_t i = 0; i < o.n_items; i++)
    for (int j = 0; j < k; j++) total += std::pow(q[(size_t)(i * k + j)] - mean[(size_t)j], 2);
  for (const auto &g : groups) {
    std::vector<double> gm((size_t)k);
    for (int64_t i : g.second)
      for (int j = 0; j < k; j++) gm[(size_t)j] += q[(size_t)(i * k + j)] / (double)g.second.size();
    for (int64_t i : g.second)
      for (int j = 0; j < k; j++) within += std::pow(q[(size_t)(i * k + j)] - gm[(size_t)j], 2);
  }
  return 1.0 - within / total;
}

}  // namespace

TEST(SynthLongTail, FeaturesAreMultiValuedInformativeThenNoise) {
  sr_synth_opts o = causal_opts(200, 300);
  Synth s(o);
  ASSERT_EQ(s.n_features, 5);
  const char *names[] = {"informative_1", "informative_2", "informative_3", "noise_1", "noise_2"};
  for (int f = 0; f < 5; f++) {
    EXPECT_STREQ(s.features[f].name, names[f]);
    EXPECT_TRUE(s.features[f].multi_valued);
    EXPECT_EQ(s.features[f].vocab_size, 24);
    ASSERT_EQ(sr_csr_validate(&s.features[f].values, "feature"), SR_OK) << sr_error_message();
    std::vector<int64_t> per_count(4);
    for (int64_t i = 0; i < 300; i++) {
      const int64_t n = sr_csr_row_len(&s.features[f].values, i);
      ASSERT_GE(n, 1);
      ASSERT_LE(n, 3);
      per_count[(size_t)n]++;
    }
    for (int n = 1; n <= 3; n++) EXPECT_GT(per_count[(size_t)n], 60) << "1 to 3 values, uniformly";
  }
}

// Without factor noise an item's factors are a function of its informative
// features alone: items with the same informative value sets have the same
// factors whatever their noise features and ids.
TEST(SynthLongTail, InformativeFeaturesDetermineTheFactors) {
  sr_synth_opts o = causal_opts(10, 3000);
  o.n_informative_features = 1;
  o.feature_values = 3;  // 7 value sets: many items share one
  o.factor_noise = 0.0;
  Synth s(o);
  const std::vector<float> q = factors_of(o, s);
  const int k = o.n_factors;
  std::map<std::vector<int32_t>, int64_t> first_with;
  int64_t shared = 0, noise_differs = 0;
  for (int64_t i = 0; i < o.n_items; i++) {
    auto it = first_with.emplace(values_of(s.features[0], i), i);
    if (it.second) continue;
    const int64_t j = it.first->second;
    shared++;
    noise_differs += values_of(s.features[1], i) != values_of(s.features[1], j);
    for (int d = 0; d < k; d++)
      ASSERT_EQ(q[(size_t)(i * k + d)], q[(size_t)(j * k + d)]) << "items " << i << ", " << j;
  }
  EXPECT_EQ(first_with.size(), 7u);
  EXPECT_GT(noise_differs, shared / 2);
  // With factor noise, the factors of items sharing their features differ.
  o.factor_noise = 0.2;
  EXPECT_NE(factors_of(o, s), q);
}

// Grouping the items by their value set of one feature: an informative one
// explains about (1 - rho) / 3 of the factors' variance (3 informative
// features), a noise one only what 41 groups of ~100 items explain by chance
// (about 1 %). The factors keep the law of the feature-free generator
// (variance 1/k per entry).
TEST(SynthLongTail, NoiseFeaturesExplainNothing) {
  sr_synth_opts o = causal_opts(10, 4000);
  o.feature_values = 6;  // 41 value sets: chance explains ~1 %
  Synth s(o);
  const std::vector<float> q = factors_of(o, s);
  double squares = 0;
  for (float v : q) squares += (double)v * v;
  EXPECT_NEAR(squares / (double)q.size(), 1.0 / o.n_factors, 0.15 / o.n_factors);
  for (int f = 0; f < 3; f++) EXPECT_GT(explained_by(o, q, s.features[f]), 0.15) << s.features[f].name;
  for (int f = 3; f < 5; f++) EXPECT_LT(explained_by(o, q, s.features[f]), 0.03) << s.features[f].name;
}

// The popularity law: with the factors nearly irrelevant (a huge
// temperature), the clicks an item draws fall with its popularity rank as
// (1 + rank)^-skew: the log-log slope of the sorted item degrees over ranks 10
// to 300 (below the top items, which every user clicks, and above the ones
// with a handful of clicks) is -skew; and a steep law leaves most items with a
// handful of interactions.
TEST(SynthLongTail, ItemDegreesFollowTheZipfLaw) {
  for (double skew : {0.8, 1.2}) {
    sr_synth_opts o = causal_opts(4000, 2000);
    o.mean_items_per_user = 10;
    o.temperature = 1000;
    o.popularity_skew = skew;
    Synth s(o);
    std::vector<int64_t> degree(2000);
    for (int64_t k = 0; k < s.full.nnz; k++) degree[(size_t)s.full.indices[k]]++;
    std::sort(degree.begin(), degree.end(), std::greater<int64_t>());
    double sx = 0, sy = 0, sxx = 0, sxy = 0, n = 0;
    for (int r = 10; r <= 300; r++) {
      const double x = std::log(1.0 + r), y = std::log((double)degree[(size_t)r]);
      sx += x, sy += y, sxx += x * x, sxy += x * y, n += 1;
    }
    const double slope = (n * sxy - sx * sy) / (n * sxx - sx * sx);
    EXPECT_NEAR(slope, -skew, 0.1) << "skew " << skew;
  }
  sr_synth_opts o = causal_opts(4000, 4000);
  o.mean_items_per_user = 8;
  o.popularity_skew = 1.2;
  Synth s(o);
  std::vector<int64_t> degree(4000);
  for (int64_t k = 0; k < s.full.nnz; k++) degree[(size_t)s.full.indices[k]]++;
  std::sort(degree.begin(), degree.end());
  EXPECT_LE(degree[2000], 5) << "median item degree";
  int64_t top = 0;
  for (int i = 0; i < 40; i++) top += degree[(size_t)(3999 - i)];
  EXPECT_GT((double)top / (double)s.full.nnz, 0.3) << "the top 1 % of items";
}

TEST(SynthLongTail, BadCausalOptions) {
  sr_synth_opts o = causal_opts(20, 30);
  sr_csr full;
  o.feature_values = 2;
  EXPECT_EQ(sr_synth_generate(&o, &full, nullptr, nullptr), SR_EINVAL);
  EXPECT_TRUE(contains(sr_error_message(), "feature values 2")) << sr_error_message();
  o.feature_values = 10;
  o.factor_noise = 1.5;
  EXPECT_EQ(sr_synth_generate(&o, &full, nullptr, nullptr), SR_EINVAL);
  o.factor_noise = 0.2;
  o.n_informative_features = 0;
  EXPECT_EQ(sr_synth_generate(&o, &full, nullptr, nullptr), SR_EINVAL);
}

// ---- cold-start items ------------------------------------------------------------------

namespace {

// The old ids of the dataset's cold-start items.
std::set<int32_t> cold_old_ids(const sr_dataset &d, const int32_t *item_map) {
  std::set<int32_t> out;
  for (int64_t k = 0; k < d.n_cold_items; k++) out.insert(item_map[d.cold_items[k]]);
  return out;
}

}  // namespace

// split_input has 31 items with an interaction: int(0.25 x 31) = 7 become
// cold-start items. They stay in the catalogue, no training row has them,
// and an evaluation row holds them out (never folds them in); the other
// items split as without cold items, and training rows keep their other items.
TEST(Split, ColdItemsAreHeldOutOfTrainingEntirely) {
  sr_csr full = split_input();
  const Rows full_rows = rows_of(full);
  sr_split_opts o;
  sr_split_opts_default(&o);
  o.n_heldout_users = 6;
  o.cold_item_fraction = 0.25;
  Dataset d;
  int32_t *item_map;
  ASSERT_EQ(sr_split_strong(&full, nullptr, 0, &o, &d.d, &item_map), SR_OK) << sr_error_message();
  ASSERT_EQ(sr_dataset_validate(&d.d, "split"), SR_OK) << sr_error_message();
  ASSERT_EQ(d.d.n_cold_items, 7);
  const std::set<int32_t> cold = cold_old_ids(d.d, item_map);
  ASSERT_EQ(cold.size(), 7u);
  EXPECT_EQ(cold.count(30), 0u) << "an item without interactions is not a candidate";
  std::set<int32_t> warm_train;
  for (int64_t r = 0; r < d.d.train.n_rows; r++) {
    std::vector<int32_t> expected;
    for (int32_t c : full_rows[(size_t)d.d.train_user_ids[r]])
      if (!cold.count(c)) expected.push_back(c);
    EXPECT_EQ(old_ids(d.d.train, r, item_map), expected) << "user " << d.d.train_user_ids[r];
    warm_train.insert(expected.begin(), expected.end());
  }
  EXPECT_EQ(d.d.n_items, (int64_t)(warm_train.size() + cold.size()));
  // A training user whose items are all cold keeps no (empty) training row.
  std::set<int64_t> placed(d.d.train_user_ids, d.d.train_user_ids + d.d.train.n_rows);
  for (const sr_eval_split *s : {&d.d.valid, &d.d.test}) placed.insert(s->user_ids, s->user_ids + s->n_users);
  for (int64_t u = 0; u < 40; u++) {
    if (placed.count(u)) continue;
    for (int32_t c : full_rows[(size_t)u]) EXPECT_EQ(cold.count(c), 1u) << "user " << u << " lost item " << c;
  }
  for (int64_t r = 0; r < d.d.train.n_rows; r++) EXPECT_GT(sr_csr_row_len(&d.d.train, r), 0);
  int64_t cold_held_out = 0;
  for (const sr_eval_split *s : {&d.d.valid, &d.d.test})
    for (int64_t r = 0; r < s->n_users; r++) {
      std::vector<int32_t> in = old_ids(s->foldin, r, item_map), out = old_ids(s->heldout, r, item_map);
      std::vector<int32_t> cold_of_row, warm_of_row, warm_out;
      for (int32_t c : full_rows[(size_t)s->user_ids[r]]) {
        if (cold.count(c)) cold_of_row.push_back(c);
        if (warm_train.count(c)) warm_of_row.push_back(c);
      }
      for (int32_t c : in) EXPECT_EQ(cold.count(c), 0u) << "cold item " << c << " folded in";
      for (int32_t c : cold_of_row) EXPECT_EQ(std::count(out.begin(), out.end(), c), 1) << "cold item " << c;
      cold_held_out += (int64_t)cold_of_row.size();
      for (int32_t c : out)
        if (!cold.count(c)) warm_out.push_back(c);
      const size_t n = warm_of_row.size();
      EXPECT_EQ(warm_out.size(), n >= 5 ? n / 5 : 0) << "the warm items split as without cold items";
      EXPECT_EQ(in.size() + warm_out.size(), n);
    }
  EXPECT_GT(cold_held_out, 0);
  // The same items whatever the protocol (one draw over the items).
  Dataset weak;
  int32_t *weak_map;
  ASSERT_EQ(sr_split_weak(&full, SR_HOLDOUT_RANDOM, nullptr, nullptr, 0, &o, &weak.d, &weak_map), SR_OK)
      << sr_error_message();
  EXPECT_EQ(cold_old_ids(weak.d, weak_map), cold);
  free(weak_map);
  free(item_map);
  sr_csr_free(&full);
}

// Weak protocol: a user's interactions with cold items are validation or
// test items (each one of them), never training; the others split as usual.
TEST(Split, ColdItemsUnderTheWeakProtocolAreValidationOrTestItems) {
  sr_csr full = split_input();
  const Rows full_rows = rows_of(full);
  sr_split_opts o;
  sr_split_opts_default(&o);
  o.cold_item_fraction = 0.25;
  Dataset d;
  int32_t *item_map;
  ASSERT_EQ(sr_split_weak(&full, SR_HOLDOUT_RANDOM, nullptr, nullptr, 0, &o, &d.d, &item_map), SR_OK)
      << sr_error_message();
  ASSERT_EQ(sr_dataset_validate(&d.d, "weak split"), SR_OK) << sr_error_message();
  const std::set<int32_t> cold = cold_old_ids(d.d, item_map);
  ASSERT_EQ(cold.size(), 7u);
  for (int64_t k = 0; k < d.d.train.nnz; k++) EXPECT_EQ(cold.count(item_map[d.d.train.indices[k]]), 0u);
  // user -> its held-out items of each split
  std::map<int64_t, std::vector<int32_t>> valid, test;
  for (int64_t r = 0; r < d.d.valid.n_users; r++)
    valid[d.d.valid.user_ids[r]] = old_ids(d.d.valid.heldout, r, item_map);
  for (int64_t r = 0; r < d.d.test.n_users; r++) test[d.d.test.user_ids[r]] = old_ids(d.d.test.heldout, r, item_map);
  int64_t in_valid = 0, in_test = 0;
  for (int64_t u = 0; u < 40; u++)
    for (int32_t c : full_rows[(size_t)u]) {
      if (!cold.count(c)) continue;
      const int v = (int)std::count(valid[u].begin(), valid[u].end(), c),
                t = (int)std::count(test[u].begin(), test[u].end(), c);
      EXPECT_EQ(v + t, 1) << "user " << u << " cold item " << c;
      in_valid += v;
      in_test += t;
    }
  EXPECT_GT(in_valid, 0);
  EXPECT_GT(in_test, 0);
  free(item_map);
  sr_csr_free(&full);
}

// The list travels in the file (/splits/cold_items) to whole and shard reads;
// a file whose cold item is in a training row is refused.
TEST(Split, ColdItemsAreWrittenReadAndChecked) {
  srtest::TempDir dir;
  sr_csr full = split_input();
  sr_split_opts o;
  sr_split_opts_default(&o);
  o.n_heldout_users = 6;
  o.cold_item_fraction = 0.25;
  Dataset d;
  ASSERT_EQ(sr_split_strong(&full, nullptr, 0, &o, &d.d, nullptr), SR_OK) << sr_error_message();
  const std::string path = dir.file("cold.h5");
  ASSERT_EQ(sr_dataset_write(path.c_str(), &d.d, kZstd3), SR_OK) << sr_error_message();
  const std::vector<int32_t> written(d.d.cold_items, d.d.cold_items + d.d.n_cold_items);
  Dataset whole, shard, features;
  ASSERT_EQ(sr_dataset_read(path.c_str(), &whole.d), SR_OK) << sr_error_message();
  ASSERT_EQ(sr_dataset_read_shard(path.c_str(), 1, 2, &shard.d), SR_OK) << sr_error_message();
  ASSERT_EQ(sr_dataset_read_features(path.c_str(), &features.d), SR_OK) << sr_error_message();
  for (const Dataset *r : {&whole, &shard, &features})
    EXPECT_EQ(std::vector<int32_t>(r->d.cold_items, r->d.cold_items + r->d.n_cold_items), written);
  d.d.cold_items[0] = d.d.train.indices[0];
  std::sort(d.d.cold_items, d.d.cold_items + d.d.n_cold_items);
  d.d.n_cold_items = std::unique(d.d.cold_items, d.d.cold_items + d.d.n_cold_items) - d.d.cold_items;
  EXPECT_EQ(sr_dataset_validate(&d.d, "bad"), SR_EFORMAT);
  EXPECT_TRUE(contains(sr_error_message(), "/splits/cold_items: cold-start item")) << sr_error_message();
  sr_csr_free(&full);
}
