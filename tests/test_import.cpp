// test_import.cpp — `data import`: every input format on tiny made-up files
// (ids, thresholds, minimum counts, duplicates, features), the strong and weak
// splits of imported data, errors naming file and line, atomic output, the
// command line (down to training on a weak-protocol file), memory growth, and
// the paper configs.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <dirent.h>
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "test_util.h"

extern "C" {
#include "shardrec/config.h"
#include "shardrec/dataset.h"
#include "shardrec/error.h"
#include "shardrec/h5io.h"
#include "shardrec/import.h"
#include "shardrec/log.h"
}

namespace {

using Rows = std::vector<std::vector<int32_t>>;
using Strings = std::vector<std::string>;

bool contains(const std::string &text, const std::string &part) { return text.find(part) != std::string::npos; }

Rows rows_of(const sr_csr &m) {
  Rows rows((size_t)m.n_rows);
  for (int64_t r = 0; r < m.n_rows; r++) rows[(size_t)r].assign(m.indices + m.indptr[r], m.indices + m.indptr[r + 1]);
  return rows;
}

std::vector<int64_t> numbers(const sr_raw_ids &ids) {
  return ids.numbers ? std::vector<int64_t>(ids.numbers, ids.numbers + ids.n) : std::vector<int64_t>();
}

Strings strings_of(const char *data, int64_t n, int width) {
  Strings out;
  for (int64_t i = 0; i < n; i++) {
    const char *s = data + i * width;
    out.emplace_back(s, strnlen(s, (size_t)width));
  }
  return out;
}

Strings strings(const sr_raw_ids &ids) { return ids.strings ? strings_of(ids.strings, ids.n, ids.width) : Strings(); }

// Options over a list of input files (the strings outlive the options).
struct Import {
  std::vector<std::string> files;
  std::vector<const char *> paths;
  sr_import_opts o;
  Import(sr_import_format format, std::vector<std::string> inputs) : files(std::move(inputs)) {
    sr_import_opts_default(&o, format);
    for (const auto &f : files) paths.push_back(f.c_str());
    o.inputs = paths.data();
    o.n_inputs = (int)paths.size();
  }
  Import(const Import &) = delete;
};

struct Table {
  sr_import_table t;
  Table() { memset(&t, 0, sizeof t); }
  ~Table() { sr_import_table_free(&t); }
};

struct Dataset {
  sr_dataset d;
  Dataset() { sr_dataset_init(&d); }
  ~Dataset() { sr_dataset_free(&d); }
};

// Loads, expecting success.
#define LOAD(imp, tab) ASSERT_EQ(sr_import_load(&(imp).o, &(tab).t), SR_OK) << sr_error_message()

// The error message of a failing load (and the code it returned).
std::string load_error(Import &imp, int expected_code = SR_EFORMAT) {
  Table tab;
  int rc = sr_import_load(&imp.o, &tab.t);
  EXPECT_EQ(rc, expected_code) << sr_error_message();
  return sr_error_message();
}

const sr_feature *feature(const sr_feature *features, int n, const char *name) {
  for (int i = 0; i < n; i++)
    if (strcmp(features[i].name, name) == 0) return &features[i];
  ADD_FAILURE() << "no feature " << name;
  return nullptr;
}

// The /ids datasets of an imported file (integers or strings).
struct FileIds {
  std::vector<int64_t> users, items;
  Strings user_strings, item_strings;
};

void read_ids(const std::string &path, FileIds *ids, bool string_ids = false) {
  sr_h5file f;
  ASSERT_EQ(sr_h5_open(&f, path.c_str()), SR_OK) << sr_error_message();
  const char *objs[2] = {"/ids/users", "/ids/items"};
  for (int k = 0; k < 2; k++) {
    if (string_ids) {
      char *data;
      int64_t n;
      int width;
      ASSERT_EQ(sr_h5_read_strings(&f, objs[k], &data, &n, &width), SR_OK) << sr_error_message();
      (k ? ids->item_strings : ids->user_strings) = strings_of(data, n, width);
      free(data);
    } else {
      void *data;
      int64_t n;
      ASSERT_EQ(sr_h5_read_array(&f, objs[k], SR_H5_INT64, -1, &data, &n), SR_OK) << sr_error_message();
      (k ? ids->items : ids->users).assign((int64_t *)data, (int64_t *)data + n);
      free(data);
    }
  }
  sr_h5_close(&f);
}

// Imports to `out` and reads the dataset back, expecting both to succeed.
void import_and_read(Import &imp, const std::string &out, Dataset *ds) {
  ASSERT_EQ(sr_import(&imp.o, out.c_str(), nullptr), SR_OK) << sr_error_message();
  ASSERT_EQ(sr_dataset_read(out.c_str(), &ds->d), SR_OK) << sr_error_message();
}

// Raw (user, item) pairs of the rows `rows` of a split, through the file's ids.
using Pairs = std::set<std::pair<int64_t, int64_t>>;
void add_pairs(const sr_csr &m, const int64_t *user_ids, const FileIds &ids, Pairs *out) {
  for (int64_t r = 0; r < m.n_rows; r++)
    for (int64_t k = m.indptr[r]; k < m.indptr[r + 1]; k++)
      out->insert({ids.users[(size_t)user_ids[r]], ids.items[(size_t)m.indices[k]]});
}

// Files in a directory, to see that nothing half-written stays behind.
Strings list_dir(const std::string &dir) {
  Strings names;
  DIR *d = opendir(dir.c_str());
  for (dirent *e; d && (e = readdir(d));)
    if (e->d_name[0] != '.') names.push_back(e->d_name);
  if (d) closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

// ---- h5io additions ------------------------------------------------------------------------

TEST(ImportH5io, StringArraysAndDoubleAttributes) {
  srtest::TempDir tmp;
  std::string path = tmp.file("s.h5");
  sr_h5file f;
  ASSERT_EQ(sr_h5_create(&f, path.c_str(), sr_h5_compression_of(SR_H5_ZSTD)), SR_OK) << sr_error_message();
  const char data[] =
      "abc\0\0"
      "hello"
      "x\0\0\0\0";  // width 5; "hello" fills its slot (no terminator)
  ASSERT_EQ(sr_h5_write_strings(&f, "/g/s", data, 3, 5), SR_OK) << sr_error_message();
  ASSERT_EQ(sr_h5_write_strings(&f, "/g/empty", data, 0, 1), SR_OK) << sr_error_message();
  ASSERT_EQ(sr_h5_write_attr_double(&f, "/g", "x", 3.5), SR_OK) << sr_error_message();
  ASSERT_EQ(sr_h5_write_attr_int64(&f, "/g", "i", 7), SR_OK);
  ASSERT_EQ(sr_h5_commit(&f), SR_OK) << sr_error_message();

  ASSERT_EQ(sr_h5_open(&f, path.c_str()), SR_OK);
  char *out;
  int64_t n;
  int width;
  ASSERT_EQ(sr_h5_read_strings(&f, "/g/s", &out, &n, &width), SR_OK) << sr_error_message();
  EXPECT_EQ(width, 5);
  EXPECT_EQ(strings_of(out, n, width), (Strings{"abc", "hello", "x"}));
  free(out);
  ASSERT_EQ(sr_h5_read_strings(&f, "/g/empty", &out, &n, &width), SR_OK);
  EXPECT_EQ(n, 0);
  free(out);
  double x;
  ASSERT_EQ(sr_h5_read_attr_double(&f, "/g", "x", &x), SR_OK);
  EXPECT_EQ(x, 3.5);
  EXPECT_EQ(sr_h5_read_attr_double(&f, "/g", "i", &x), SR_EFORMAT);  // an integer is not a double
  EXPECT_TRUE(contains(sr_error_message(), "not a single floating-point number")) << sr_error_message();
  EXPECT_EQ(sr_h5_read_strings(&f, "/g/missing", &out, &n, &width), SR_EFORMAT);
  sr_h5_close(&f);
}

// ---- formats ---------------------------------------------------------------------------------

TEST(ImportFormat, DetectedFromFileNames) {
  struct Case {
    std::vector<const char *> inputs;
    sr_import_format format;
  } cases[] = {{{"ml-100k/u.data"}, SR_IMPORT_MOVIELENS},
               {{"ml-1m/ratings.dat"}, SR_IMPORT_MOVIELENS},
               {{"ratings.csv"}, SR_IMPORT_MOVIELENS},
               {{"nf/combined_data_1.txt", "nf/combined_data_2.txt"}, SR_IMPORT_NETFLIX},
               {{"training_set/mv_0000001.txt"}, SR_IMPORT_NETFLIX},
               {{"train_triplets.txt"}, SR_IMPORT_MSD},
               {{"gowalla/train.txt", "gowalla/test.txt"}, SR_IMPORT_LIGHTGCN},
               {{"clicks.tsv"}, SR_IMPORT_CSV}};
  for (const auto &c : cases) {
    sr_import_format f;
    ASSERT_EQ(sr_import_detect_format(c.inputs.data(), (int)c.inputs.size(), &f), SR_OK) << sr_error_message();
    EXPECT_EQ(f, c.format) << c.inputs[0];
  }
  sr_import_format f;
  const char *unknown[] = {"data.bin"}, *mixed[] = {"u.data", "clicks.csv"};
  EXPECT_EQ(sr_import_detect_format(unknown, 1, &f), SR_EINVAL);
  EXPECT_TRUE(contains(sr_error_message(), "cannot tell the format of 'data.bin'")) << sr_error_message();
  EXPECT_EQ(sr_import_detect_format(mixed, 2, &f), SR_EINVAL);
  EXPECT_TRUE(contains(sr_error_message(), "'u.data' looks like movielens but 'clicks.csv' like csv"));
}

// u.data (tab): the default threshold keeps ratings >= 4; a user left with
// fewer than --min-user-items is removed; users and items are numbered in
// increasing raw-id order.
TEST(ImportMovieLens, UDataThresholdAndMinUserItems) {
  srtest::TempDir tmp;
  srtest::write_file(tmp.file("u.data"),
                     "10\t100\t5\t1\n"
                     "10\t200\t3\t2\n"  // below 4
                     "10\t300\t4\t3\n"
                     "20\t100\t4\t5\n"
                     "\n"  // blank lines are ignored
                     "20\t200\t5\t6\n"
                     "30\t300\t2\t7\n"  // below 4: user 30 has nothing left
                     "40\t100\t4\t8\n"
                     "40\t200\t4\t9\n"
                     "40\t300\t5\t10\r\n"  // CRLF
                     "40\t500\t1\t11\n"    // below 4: item 500 never kept
                     "7\t200\t5\t12\n");   // user 7 keeps 1 item < 2
  Import imp(SR_IMPORT_MOVIELENS, {tmp.file("u.data")});
  imp.o.min_user_items = 2;
  Table tab;
  LOAD(imp, tab);
  EXPECT_EQ(numbers(tab.t.users), (std::vector<int64_t>{10, 20, 40}));
  EXPECT_EQ(numbers(tab.t.items), (std::vector<int64_t>{100, 200, 300}));
  // 10: {100, 300}; 20: {100, 200}; 40: {100, 200, 300}
  EXPECT_EQ(rows_of(tab.t.full), (Rows{{0, 2}, {0, 1}, {0, 1, 2}}));
  EXPECT_EQ(tab.t.full.values, nullptr);  // binary
  EXPECT_EQ(tab.t.entry_keys, nullptr);
  const sr_import_stats &s = tab.t.stats;
  EXPECT_EQ(s.lines, 11);
  EXPECT_EQ(s.records, 11);
  EXPECT_EQ(s.below_min_rating, 3);
  EXPECT_EQ(s.users_removed, 1);
  EXPECT_EQ(s.items_removed, 0);
  EXPECT_EQ(s.min_count_passes, 1);

  imp.o.has_min_rating = 0;  // everything counts: user 30 and item 500 stay, user 7 keeps 1 item
  imp.o.min_user_items = 1;
  Table all;
  LOAD(imp, all);
  EXPECT_EQ(numbers(all.t.users), (std::vector<int64_t>{7, 10, 20, 30, 40}));
  EXPECT_EQ(numbers(all.t.items), (std::vector<int64_t>{100, 200, 300, 500}));
  EXPECT_EQ(all.t.full.nnz, 11);
}

// ratings.dat ('::') with movies.dat and users.dat as categorical features.
TEST(ImportMovieLens, RatingsDatWithMovieAndUserFeatures) {
  srtest::TempDir tmp;
  srtest::write_file(tmp.file("ratings.dat"),
                     "1::10::5::978300760\n"
                     "1::20::4::978300761\n"
                     "2::10::4::978300762\n"
                     "2::30::5::978300763\n");
  srtest::write_file(tmp.file("movies.dat"),
                     "10::Toy Story (1995)::Animation|Children's|Comedy\n"
                     "20::Heat (1995)::Action|Crime|Thriller\n"
                     "30::Sabrina, The (1954)::Comedy|Romance\n"
                     "40::Not Rated (2000)::Drama\n");  // not in the ratings: ignored
  srtest::write_file(tmp.file("users.dat"),
                     "1::F::1::10::48067\n"
                     "2::M::56::16::70072-1234\n"
                     "3::M::25::15::55117\n");  // not in the ratings: ignored
  Import imp(SR_IMPORT_MOVIELENS, {tmp.file("ratings.dat")});
  std::string movies = tmp.file("movies.dat"), users = tmp.file("users.dat");
  imp.o.movies_path = movies.c_str();
  imp.o.users_path = users.c_str();
  imp.o.min_user_items = 1;
  Table tab;
  LOAD(imp, tab);
  EXPECT_EQ(numbers(tab.t.items), (std::vector<int64_t>{10, 20, 30}));
  ASSERT_EQ(tab.t.n_item_features, 3);
  // Vocabularies sorted bytewise; rows = items 10, 20, 30.
  const sr_feature *genres = feature(tab.t.item_features, 3, "genres");
  ASSERT_TRUE(genres);
  EXPECT_TRUE(genres->multi_valued);
  EXPECT_EQ(strings(tab.t.item_vocab[0]),
            (Strings{"Action", "Animation", "Children's", "Comedy", "Crime", "Romance", "Thriller"}));
  EXPECT_EQ(rows_of(genres->values), (Rows{{1, 2, 3}, {0, 4, 6}, {3, 5}}));
  const sr_feature *year = feature(tab.t.item_features, 3, "year_bucket");
  ASSERT_TRUE(year);
  EXPECT_FALSE(year->multi_valued);
  EXPECT_EQ(strings(tab.t.item_vocab[1]), (Strings{"1950s", "1990s"}));
  EXPECT_EQ(rows_of(year->values), (Rows{{1}, {1}, {0}}));
  const sr_feature *tokens = feature(tab.t.item_features, 3, "title_tokens");
  ASSERT_TRUE(tokens);
  EXPECT_EQ(strings(tab.t.item_vocab[2]), (Strings{"heat", "sabrina", "story", "the", "toy"}));
  EXPECT_EQ(rows_of(tokens->values), (Rows{{2, 4}, {0}, {1, 3}}));

  ASSERT_EQ(tab.t.n_user_features, 4);
  const char *names[] = {"gender", "age", "occupation", "zip3"};
  const Strings vocab[] = {{"F", "M"}, {"1", "56"}, {"10", "16"}, {"480", "700"}};
  for (int i = 0; i < 4; i++) {
    EXPECT_STREQ(tab.t.user_features[i].name, names[i]);
    EXPECT_EQ(strings(tab.t.user_vocab[i]), vocab[i]) << names[i];
    EXPECT_EQ(rows_of(tab.t.user_features[i].values), (Rows{{0}, {1}})) << names[i];
  }

  // Written: the features and their vocabularies are in the file (with each
  // user rating every movie, so that int(0.4 * 4) = 1 of them is test and 1
  // validation: a split without held-out items is refused).
  std::string all;
  for (const char *user : {"1", "2"})
    for (const char *movie : {"10", "20", "30", "40"}) all += std::string(user) + "::" + movie + "::5::978300760\n";
  srtest::write_file(tmp.file("ratings.dat"), all);
  std::string out = tmp.file("ml.h5");
  imp.o.protocol = SR_PROTOCOL_WEAK;
  imp.o.split.min_items_for_heldout = 1;
  imp.o.split.heldout_fraction = 0.4;
  imp.o.split.keep_all_items = 1;  // held-out movies count even if neither user trains on them
  Dataset ds;
  ASSERT_NO_FATAL_FAILURE(import_and_read(imp, out, &ds));
  EXPECT_EQ(ds.d.n_item_features, 3);
  EXPECT_EQ(ds.d.n_user_features, 4);
  sr_h5file f;
  ASSERT_EQ(sr_h5_open(&f, out.c_str()), SR_OK);
  char *labels;
  int64_t n;
  int width;
  ASSERT_EQ(sr_h5_read_strings(&f, "/features/user/zip3/vocab", &labels, &n, &width), SR_OK) << sr_error_message();
  EXPECT_EQ(strings_of(labels, n, width), (Strings{"480", "700"}));
  free(labels);
  sr_h5_close(&f);
}

// ratings.csv: header, half stars (3.5 is dropped, 4.0 kept), and a
// movies.csv whose quoted titles hold commas.
TEST(ImportMovieLens, RatingsCsvHeaderHalfStarsQuotedTitles) {
  srtest::TempDir tmp;
  srtest::write_file(tmp.file("ratings.csv"),
                     "userId,movieId,rating,timestamp\n"
                     "1,2,3.5,1112486027\n"
                     "1,29,4.0,1112484676\n"
                     "1,32,3.5,1112484819\n"
                     "2,2,4.5,1112484580\n"
                     "2,29,5.0,1112484727\n");
  srtest::write_file(tmp.file("movies.csv"),
                     "movieId,title,genres\n"
                     "2,Jumanji (1995),Adventure|Children|Fantasy\n"
                     "29,\"City of Lost Children, The (Cit\xc3\xa9 des enfants perdus, La) (1995)\",Adventure|Drama\n"
                     "32,Twelve Monkeys (a.k.a. 12 Monkeys) (1995),Mystery|Sci-Fi|Thriller\n");
  Import imp(SR_IMPORT_MOVIELENS, {tmp.file("ratings.csv")});
  std::string movies = tmp.file("movies.csv");
  imp.o.movies_path = movies.c_str();
  imp.o.min_user_items = 1;
  imp.o.keep_values = 1;
  Table tab;
  LOAD(imp, tab);
  EXPECT_EQ(numbers(tab.t.users), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(numbers(tab.t.items), (std::vector<int64_t>{2, 29}));  // 32 only had a 3.5
  EXPECT_EQ(rows_of(tab.t.full), (Rows{{1}, {0, 1}}));
  ASSERT_NE(tab.t.full.values, nullptr);
  EXPECT_EQ(std::vector<float>(tab.t.full.values, tab.t.full.values + 3), (std::vector<float>{4.0f, 4.5f, 5.0f}));
  EXPECT_EQ(tab.t.stats.below_min_rating, 2);
  EXPECT_EQ(tab.t.stats.lines, 6);  // the header counts as a line
  const sr_feature *tokens = feature(tab.t.item_features, tab.t.n_item_features, "title_tokens");
  ASSERT_TRUE(tokens);
  Strings vocab = strings(tab.t.item_vocab[2]);
  Strings of_29;
  for (int64_t k = tokens->values.indptr[1]; k < tokens->values.indptr[2]; k++)
    of_29.push_back(vocab[(size_t)tokens->values.indices[k]]);
  std::sort(of_29.begin(), of_29.end());
  EXPECT_EQ(of_29,
            (Strings{"children", "city", "cit\xc3\xa9", "des", "enfants", "la", "lost", "of", "perdus", "the"}));
}

// Netflix: "MOVIE:" blocks over several files, dates as timestamps.
TEST(ImportNetflix, MovieBlocksOverFilesAndDates) {
  srtest::TempDir tmp;
  srtest::write_file(tmp.file("combined_data_1.txt"),
                     "1:\n"
                     "1488844,3,2005-09-06\n"
                     "822109,5,2005-05-13\n"
                     "2:\n"
                     "822109,4,2005-01-01\n");
  srtest::write_file(tmp.file("combined_data_2.txt"),
                     "3:\n"
                     "1488844,4,1970-01-02\n");
  Import imp(SR_IMPORT_NETFLIX, {tmp.file("combined_data_1.txt"), tmp.file("combined_data_2.txt")});
  imp.o.min_user_items = 1;
  imp.o.protocol = SR_PROTOCOL_WEAK;  // keeps the timestamps for the temporal holdout
  imp.o.holdout = SR_HOLDOUT_TEMPORAL;
  Table tab;
  LOAD(imp, tab);
  EXPECT_EQ(numbers(tab.t.users), (std::vector<int64_t>{822109, 1488844}));
  EXPECT_EQ(numbers(tab.t.items), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(rows_of(tab.t.full), (Rows{{0, 1}, {2}}));
  ASSERT_NE(tab.t.entry_keys, nullptr);
  // 2005-05-13 = 2005-01-01 (1104537600) + 132 days; 1970-01-02 = 86400.
  EXPECT_EQ(std::vector<int64_t>(tab.t.entry_keys, tab.t.entry_keys + 3),
            (std::vector<int64_t>{1104537600 + 132 * 86400, 1104537600, 86400}));
  EXPECT_EQ(tab.t.stats.below_min_rating, 1);
}

// MSD triplets: string ids, and the minimum counts once (the paper: songs,
// then users) or iterated until stable.
TEST(ImportMsd, StringIdsSinglePassVersusIterated) {
  const std::string A = "b80344d063b5ccb3212f76538f3d9e43d87dca9e", B = "85c1f87fea955d09b4bec2e36aee110927aedf9a",
                    C = "bd4c6e843f00bd476847fb75c47b4fb430a06856", E = "4bd88bfb25263a75bbdd467e74018f4ae570e5df";
  const std::string s1 = "SOAKIMP12A8C130995", s2 = "SOAPDEY12A81C210A9", s3 = "SOBBMDR12A8C13253B",
                    s5 = "SOBFNSP12AF72A0E22";
  srtest::TempDir tmp;
  // Songs: s1 {A, C, B}, s2 {A, C}, s3 {B, E}, s5 {E}.
  srtest::write_file(tmp.file("train_triplets.txt"), A + "\t" + s1 + "\t3\n" + A + "\t" + s2 + "\t1\n" + C + "\t" +
                                                         s1 + "\t2\n" + C + "\t" + s2 + "\t5\n" + B + "\t" + s1 +
                                                         "\t1\n" + B + "\t" + s3 + "\t1\n" + E + "\t" + s3 + "\t9\n" +
                                                         E + "\t" + s5 + "\t1\n");
  Import imp(SR_IMPORT_MSD, {tmp.file("train_triplets.txt")});
  imp.o.min_user_items = 2;
  imp.o.min_item_users = 2;
  imp.o.keep_values = 1;
  // Once: s5 (1 user) goes, then E (1 song left) goes; s3 keeps B alone.
  Table once;
  LOAD(imp, once);
  EXPECT_EQ(strings(once.t.users), (Strings{B, A, C}));  // bytewise: "85c1" < "b803" < "bd4c"
  EXPECT_EQ(strings(once.t.items), (Strings{s1, s2, s3}));
  EXPECT_EQ(once.t.users.width, 40);
  EXPECT_EQ(rows_of(once.t.full), (Rows{{0, 2}, {0, 1}, {0, 1}}));
  EXPECT_EQ(std::vector<float>(once.t.full.values, once.t.full.values + 6),
            (std::vector<float>{1, 1, 3, 1, 2, 5}));  // play counts
  EXPECT_EQ(once.t.stats.items_removed, 1);
  EXPECT_EQ(once.t.stats.users_removed, 1);
  EXPECT_EQ(once.t.stats.min_count_passes, 1);
  // Iterated: then s3 (B only) goes, then B (s1 only); a third pass changes nothing.
  imp.o.iterate_min_counts = 1;
  Table iterated;
  LOAD(imp, iterated);
  EXPECT_EQ(strings(iterated.t.users), (Strings{A, C}));
  EXPECT_EQ(strings(iterated.t.items), (Strings{s1, s2}));
  EXPECT_EQ(rows_of(iterated.t.full), (Rows{{0, 1}, {0, 1}}));
  EXPECT_EQ(iterated.t.stats.items_removed, 2);
  EXPECT_EQ(iterated.t.stats.users_removed, 2);
  EXPECT_EQ(iterated.t.stats.min_count_passes, 3);
  // The paper's defaults (users >= 20 songs, songs >= 200 users) leave nothing here.
  Import paper(SR_IMPORT_MSD, {tmp.file("train_triplets.txt")});
  EXPECT_TRUE(contains(load_error(paper, SR_EINVAL), "removed every interaction"));
}

// LightGCN: the given test file is the test split; validation items, when
// asked for, come from the training file of users with >= 5 items; everything
// else is kept as is, every item of either file in the catalogue.
TEST(ImportLightGcn, GivenSplitKeptAsIs) {
  srtest::TempDir tmp;
  srtest::write_file(tmp.file("train.txt"),
                     "0 10 11 12 13 14 15 16 17 18 19\n"
                     "1 10 11 12 13\n"
                     "2 14 15 16 17\n"
                     "3 18 19 20\n");
  srtest::write_file(tmp.file("test.txt"),
                     "0 20\n"
                     "1 14 99\n"  // 99 is in no training row: kept (published denominators)
                     "2 10\n"
                     "4 11\n");  // user 4 has no training items
  std::string out = tmp.file("lg.h5");
  Import imp(SR_IMPORT_LIGHTGCN, {tmp.file("train.txt"), tmp.file("test.txt")});
  imp.o.split.validation_fraction = 0.2;
  Dataset ds;
  ASSERT_NO_FATAL_FAILURE(import_and_read(imp, out, &ds));
  const sr_dataset &d = ds.d;
  FileIds ids;
  read_ids(out, &ids);
  EXPECT_EQ(d.protocol, SR_PROTOCOL_WEAK);
  EXPECT_EQ(ids.users, (std::vector<int64_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(ids.items, (std::vector<int64_t>{10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 99}));  // dense + 10, 99
  // Training rows: users 0-3; user 0 lost int(0.2 * 10) = 2 items to validation.
  ASSERT_EQ(d.train.n_rows, 4);
  EXPECT_EQ(std::vector<int64_t>(d.train_user_ids, d.train_user_ids + 4), (std::vector<int64_t>{0, 1, 2, 3}));
  Rows train = rows_of(d.train);
  EXPECT_EQ(train[1], (std::vector<int32_t>{0, 1, 2, 3}));
  EXPECT_EQ(train[2], (std::vector<int32_t>{4, 5, 6, 7}));
  EXPECT_EQ(train[3], (std::vector<int32_t>{8, 9, 10}));
  ASSERT_EQ(train[0].size(), 8u);
  // Validation: user 0 only; fold-in = the training row; held-out = the 2 others.
  ASSERT_EQ(d.valid.n_users, 1);
  EXPECT_EQ(d.valid.user_ids[0], 0);
  EXPECT_EQ(rows_of(d.valid.foldin)[0], train[0]);
  std::vector<int32_t> valid_items = rows_of(d.valid.heldout)[0], all = train[0];
  ASSERT_EQ(valid_items.size(), 2u);
  all.insert(all.end(), valid_items.begin(), valid_items.end());
  std::sort(all.begin(), all.end());
  EXPECT_EQ(all, (std::vector<int32_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  // Test: exactly test.txt; fold-in = the whole training-file row (training +
  // validation items), as LightGCN evaluates.
  ASSERT_EQ(d.test.n_users, 4);
  EXPECT_EQ(std::vector<int64_t>(d.test.user_ids, d.test.user_ids + 4), (std::vector<int64_t>{0, 1, 2, 4}));
  EXPECT_EQ(rows_of(d.test.heldout), (Rows{{10}, {4, 11}, {0}, {1}}));
  EXPECT_EQ(rows_of(d.test.foldin), (Rows{{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, {0, 1, 2, 3}, {4, 5, 6, 7}, {}}));

  // The validation draw is seeded: same seed, same items; another seed, others.
  auto valid_with_seed = [&](uint64_t seed) {
    imp.o.split.seed = seed;
    EXPECT_EQ(sr_import(&imp.o, out.c_str(), nullptr), SR_OK) << sr_error_message();
    Dataset again;
    EXPECT_EQ(sr_dataset_read(out.c_str(), &again.d), SR_OK) << sr_error_message();
    return rows_of(again.d.valid.heldout);
  };
  EXPECT_EQ(valid_with_seed(98765), rows_of(d.valid.heldout));
  EXPECT_NE(valid_with_seed(1), rows_of(d.valid.heldout));

  // A test file before the training file is refused rather than silently swapped.
  Import swapped(SR_IMPORT_LIGHTGCN, {tmp.file("test.txt"), tmp.file("train.txt")});
  EXPECT_TRUE(contains(load_error(swapped, SR_EINVAL), "give the training file first")) << sr_error_message();
}

// By default the given split trains on the whole training file, as the
// published LightGCN baselines do: no validation split, every training-file
// pair a training interaction, every test-file pair a test one, and items seen
// only in the test file in the catalogue (issue 14).
TEST(ImportLightGcn, DefaultTrainsOnTheWholeTrainingFile) {
  srtest::TempDir tmp;
  srtest::write_file(tmp.file("train.txt"), "0 1 2 3 4 5 6 7\n1 2 3 4 5 6\n2 7\n");
  srtest::write_file(tmp.file("test.txt"), "0 8\n1 9 1\n2 3\n");  // 8 and 9 only here
  std::string out = tmp.file("lg.h5");
  Import imp(SR_IMPORT_LIGHTGCN, {tmp.file("train.txt"), tmp.file("test.txt")});
  Dataset ds;
  ASSERT_NO_FATAL_FAILURE(import_and_read(imp, out, &ds));
  FileIds ids;
  read_ids(out, &ids);
  EXPECT_EQ(ids.items, (std::vector<int64_t>{1, 2, 3, 4, 5, 6, 7, 8, 9}));  // dense = raw - 1
  EXPECT_EQ(ds.d.n_items, 9);
  EXPECT_EQ(rows_of(ds.d.train), (Rows{{0, 1, 2, 3, 4, 5, 6}, {1, 2, 3, 4, 5}, {6}}));
  EXPECT_EQ(ds.d.valid.n_users, 0);
  EXPECT_EQ(rows_of(ds.d.test.heldout), (Rows{{7}, {0, 8}, {2}}));
  EXPECT_EQ(rows_of(ds.d.test.foldin), rows_of(ds.d.train));
  // A validation fraction for another holdout, or out of range, is refused
  // before the input is read, naming the option.
  Import random(SR_IMPORT_LIGHTGCN, {tmp.file("nope.txt")});
  random.o.holdout = SR_HOLDOUT_RANDOM;
  random.o.split.validation_fraction = 0.1;
  EXPECT_TRUE(contains(load_error(random, SR_EINVAL), "--validation-fraction applies to --holdout given"));
  Import whole(SR_IMPORT_LIGHTGCN, {tmp.file("nope.txt")});
  whole.o.split.validation_fraction = 1.0;
  EXPECT_TRUE(contains(load_error(whole, SR_EINVAL), "--validation-fraction 1 outside [0, 1)"));
}

// An import never writes an empty split (issue 13): train.txt given twice (as
// the same file, or as a copy), a test file of users without items, a
// validation split nobody can give items to.
TEST(ImportLightGcn, EmptySplitsAreErrors) {
  srtest::TempDir tmp;
  srtest::write_file(tmp.file("train.txt"), "0 1 2 3\n1 2 3\n");
  srtest::write_file(tmp.file("test.txt"), "0 1 2 3\n1 2 3\n");
  srtest::write_file(tmp.file("users_only.txt"), "0\n1\n");
  const std::string out = tmp.file("lg.h5");
  struct {
    std::string test, message;
  } cases[] = {
      {"train.txt", "is given as the training file and as the test file"},
      {"test.txt", "the training split is empty: every interaction is held out"},
      {"users_only.txt", "the test split has no held-out items: the test file gives no interaction"},
  };
  for (const auto &c : cases) {
    Import imp(SR_IMPORT_LIGHTGCN, {tmp.file("train.txt"), tmp.file(c.test)});
    EXPECT_EQ(sr_import(&imp.o, out.c_str(), nullptr), SR_EINVAL) << c.message;
    EXPECT_TRUE(contains(sr_error_message(), c.message)) << sr_error_message();
  }
  srtest::write_file(tmp.file("test.txt"), "0 4\n1 4\n");
  Import valid(SR_IMPORT_LIGHTGCN, {tmp.file("train.txt"), tmp.file("test.txt")});
  valid.o.split.validation_fraction = 0.2;
  EXPECT_EQ(sr_import(&valid.o, out.c_str(), nullptr), SR_EINVAL);
  EXPECT_TRUE(
      contains(sr_error_message(),
               "the validation split has no held-out items: no user's training row has --heldout-min-items (5)"))
      << sr_error_message();
  EXPECT_EQ(list_dir(tmp.path()), (Strings{"test.txt", "train.txt", "users_only.txt"}));
}

// Generic CSV: numbered columns in any order, or named ones from a header;
// a delimiter of any length; string ids.
TEST(ImportCsv, NumberedAndNamedColumns) {
  srtest::TempDir tmp;
  srtest::write_file(tmp.file("a.txt"),
                     "5;u1;2.5\n"
                     "7;u2;1\n"
                     "5;u2;4\n");
  Import numbered(SR_IMPORT_CSV, {tmp.file("a.txt")});
  numbered.o.columns = "item=0,user=1,weight=2";
  numbered.o.delimiter = ";";
  numbered.o.string_ids = 1;
  numbered.o.keep_values = 1;
  Table a;
  LOAD(numbered, a);
  EXPECT_EQ(strings(a.t.users), (Strings{"u1", "u2"}));
  EXPECT_EQ(strings(a.t.items), (Strings{"5", "7"}));  // strings, sorted bytewise
  EXPECT_EQ(rows_of(a.t.full), (Rows{{0}, {0, 1}}));
  EXPECT_EQ(std::vector<float>(a.t.full.values, a.t.full.values + 3), (std::vector<float>{2.5f, 4.0f, 1.0f}));

  // *.tsv: tabs; named columns; extra columns ignored; quoted fields.
  srtest::write_file(tmp.file("b.tsv"),
                     "ts\titem_id\tscore\tuser_id\tnote\n"
                     "100\t3\t1\t9\t\"a \"\"quoted\"\" note\"\n"
                     "50\t4\t0.5\t9\tx\n"
                     "70\t3\t2\t8\t\n");
  Import named(SR_IMPORT_CSV, {tmp.file("b.tsv")});
  named.o.columns = "user=user_id,item=item_id,rating=score,timestamp=ts";
  named.o.header = 1;
  named.o.has_min_rating = 1;
  named.o.min_rating = 1.0;
  named.o.protocol = SR_PROTOCOL_WEAK;
  named.o.holdout = SR_HOLDOUT_TEMPORAL;
  Table b;
  LOAD(named, b);
  EXPECT_EQ(numbers(b.t.users), (std::vector<int64_t>{8, 9}));
  EXPECT_EQ(numbers(b.t.items), (std::vector<int64_t>{3}));  // item 4 only had 0.5 < 1
  EXPECT_EQ(rows_of(b.t.full), (Rows{{0}, {0}}));
  EXPECT_EQ(std::vector<int64_t>(b.t.entry_keys, b.t.entry_keys + 2), (std::vector<int64_t>{70, 100}));

  // "space": runs of blanks, e.g. whitespace-separated logs.
  srtest::write_file(tmp.file("c.txt"), "  1   2\n1\t3\n");
  Import blanks(SR_IMPORT_CSV, {tmp.file("c.txt")});
  blanks.o.delimiter = " ";
  Table c;
  LOAD(blanks, c);
  EXPECT_EQ(rows_of(c.t.full), (Rows{{0, 1}}));
}

// Duplicated (user, item) lines: the policy decides the value (and timestamp)
// that survives; the threshold applies to each line first.
TEST(ImportCsv, DuplicatePolicies) {
  srtest::TempDir tmp;
  srtest::write_file(tmp.file("d.csv"),
                     "1,5,2.0,100\n"
                     "1,6,1.0,10\n"
                     "1,5,4.0,50\n"
                     "1,5,3.0,200\n");
  struct Case {
    sr_duplicates policy;
    float value;
    int64_t key;
  } cases[] = {{SR_DUPLICATES_LAST, 3.0f, 200},
               {SR_DUPLICATES_FIRST, 2.0f, 100},
               {SR_DUPLICATES_MAX, 4.0f, 50},
               {SR_DUPLICATES_SUM, 9.0f, 200}};  // 2 + 4 + 3, the last line's timestamp
  for (const Case &c : cases) {
    Import imp(SR_IMPORT_CSV, {tmp.file("d.csv")});
    imp.o.columns = "user=0,item=1,rating=2,timestamp=3";
    imp.o.keep_values = 1;
    imp.o.duplicates = c.policy;
    imp.o.protocol = SR_PROTOCOL_WEAK;
    imp.o.holdout = SR_HOLDOUT_TEMPORAL;
    Table tab;
    LOAD(imp, tab);
    const char *name = sr_duplicates_name(c.policy);
    EXPECT_EQ(rows_of(tab.t.full), (Rows{{0, 1}})) << name;
    EXPECT_EQ(tab.t.full.values[0], c.value) << name;
    EXPECT_EQ(tab.t.entry_keys[0], c.key) << name;
    EXPECT_EQ(tab.t.full.values[1], 1.0f) << name;
    EXPECT_EQ(tab.t.stats.duplicates, 2) << name;
  }
  Import first_kept(SR_IMPORT_CSV, {tmp.file("d.csv")});
  first_kept.o.columns = "user=0,item=1,rating=2";
  first_kept.o.keep_values = 1;
  first_kept.o.duplicates = SR_DUPLICATES_FIRST;
  first_kept.o.has_min_rating = 1;
  first_kept.o.min_rating = 2.5;  // drops 2.0 (and 1.0): the first kept line of item 5 has 4.0
  Table tab;
  LOAD(first_kept, tab);
  EXPECT_EQ(tab.t.full.values[0], 4.0f);
  EXPECT_EQ(tab.t.stats.duplicates, 1);
  Import strict(SR_IMPORT_CSV, {tmp.file("d.csv")});
  strict.o.duplicates = SR_DUPLICATES_ERROR;
  EXPECT_TRUE(contains(load_error(strict), "user 1 rated item 5 more than once")) << sr_error_message();
}

// Users and items are numbered by raw id, so the line order changes nothing.
// An already filtered MovieLens log in CSV gets its side files' features too
// (issue 14): its ids are MovieLens ids.
TEST(ImportCsv, MovieLensSideFilesWithACsvLog) {
  srtest::TempDir tmp;
  srtest::write_file(tmp.file("log.csv"), "user,item\n2,30\n1,10\n2,10\n");
  srtest::write_file(tmp.file("movies.dat"), "10::Toy Story (1995)::Animation\n30::Sabrina, The (1954)::Romance\n");
  srtest::write_file(tmp.file("users.dat"), "1::F::1::10::48067\n2::M::56::16::70072\n");
  Import imp(SR_IMPORT_CSV, {tmp.file("log.csv")});
  std::string movies = tmp.file("movies.dat"), users = tmp.file("users.dat");
  imp.o.movies_path = movies.c_str();
  imp.o.users_path = users.c_str();
  imp.o.header = 1;
  imp.o.columns = "user=user,item=item";
  Table tab;
  LOAD(imp, tab);
  EXPECT_EQ(numbers(tab.t.items), (std::vector<int64_t>{10, 30}));
  ASSERT_EQ(tab.t.n_item_features, 3);
  ASSERT_EQ(tab.t.n_user_features, 4);
  const sr_feature *genres = feature(tab.t.item_features, 3, "genres");
  ASSERT_TRUE(genres);
  EXPECT_EQ(rows_of(genres->values), (Rows{{0}, {1}}));  // Animation, Romance
  const sr_feature *gender = feature(tab.t.user_features, 4, "gender");
  ASSERT_TRUE(gender);
  EXPECT_EQ(rows_of(gender->values), (Rows{{0}, {1}}));  // F, M
}

TEST(ImportCsv, LineOrderDoesNotMatter) {
  srtest::TempDir tmp;
  std::vector<std::string> lines;
  for (int u = 0; u < 60; u++)
    for (int i = 0; i < 8 + u % 5; i++)
      lines.push_back(std::to_string(1000 - u) + "," + std::to_string((u * 7 + i * 13) % 97) + "\n");
  std::string forward, backward;
  for (size_t k = 0; k < lines.size(); k++) forward += lines[k], backward += lines[lines.size() - 1 - k];
  srtest::write_file(tmp.file("f.csv"), forward);
  srtest::write_file(tmp.file("b.csv"), backward);
  Dataset datasets[2];
  for (int k = 0; k < 2; k++) {
    Import imp(SR_IMPORT_CSV, {tmp.file(k ? "b.csv" : "f.csv")});
    imp.o.split.n_heldout_users = 10;
    std::string out = tmp.file(k ? "b.h5" : "f.h5");
    ASSERT_EQ(sr_import(&imp.o, out.c_str(), nullptr), SR_OK) << sr_error_message();
    ASSERT_EQ(sr_dataset_read(out.c_str(), &datasets[k].d), SR_OK) << sr_error_message();
  }
  EXPECT_EQ(rows_of(datasets[0].d.train), rows_of(datasets[1].d.train));
  EXPECT_EQ(rows_of(datasets[0].d.test.heldout), rows_of(datasets[1].d.test.heldout));
  EXPECT_EQ(std::vector<int64_t>(datasets[0].d.valid.user_ids, datasets[0].d.valid.user_ids + 10),
            std::vector<int64_t>(datasets[1].d.valid.user_ids, datasets[1].d.valid.user_ids + 10));
}

// ---- splits of imported data ----------------------------------------------------------------------

// Strong generalisation: held-out user counts, disjoint users, every kept
// interaction in exactly one place, 20% of each evaluation row held out
// (none below 5 items), the raw ids map everything back, seeds reproduce.
// ---- published splits, kept as they are (issue 14) -------------------------------------------

namespace {

// The output of the Mult-VAE authors' preprocessing notebook for 7 users and
// 5 movies: uids 0-2 train, 3-4 validation (uid 4 has too few items to hold
// any out: fold-in only), 5-6 test; sid j is line j of unique_sid.txt.
void write_multvae_dir(const std::string &dir) {
  srtest::write_file(dir + "/unique_sid.txt", "1\n32\n50\n110\n260\n");
  srtest::write_file(dir + "/train.csv", "uid,sid\n0,0\n0,3\n1,1\n1,2\n1,4\n2,0\n");
  srtest::write_file(dir + "/validation_tr.csv", "uid,sid\n3,0\n3,1\n3,2\n3,3\n4,2\n");
  srtest::write_file(dir + "/validation_te.csv", "uid,sid\n3,4\n");
  srtest::write_file(dir + "/test_tr.csv", "uid,sid\n5,1\n5,3\n5,4\n5,0\n6,2\n6,0\n6,1\n6,3\n");
  srtest::write_file(dir + "/test_te.csv", "uid,sid\n5,2\n6,4\n");
}

std::vector<int64_t> ids_of(const int64_t *ids, int64_t n) { return std::vector<int64_t>(ids, ids + n); }

}  // namespace

TEST(ImportMultVae, PreprocessingOutputKeptExactly) {
  srtest::TempDir tmp;
  const std::string dir = tmp.file("ml-20m-pro"), out = tmp.file("mv.h5");
  ASSERT_EQ(mkdir(dir.c_str(), 0777), 0);
  write_multvae_dir(dir);
  sr_import_format format;
  const char *inputs[1] = {dir.c_str()};
  ASSERT_EQ(sr_import_detect_format(inputs, 1, &format), SR_OK) << sr_error_message();
  EXPECT_EQ(format, SR_IMPORT_MULTVAE);
  Import imp(SR_IMPORT_MULTVAE, {dir});
  Dataset ds;
  ASSERT_NO_FATAL_FAILURE(import_and_read(imp, out, &ds));
  const sr_dataset &d = ds.d;
  FileIds ids;
  read_ids(out, &ids);
  EXPECT_EQ(d.protocol, SR_PROTOCOL_STRONG);
  EXPECT_EQ(ids.items, (std::vector<int64_t>{1, 32, 50, 110, 260}));  // item j = line j
  EXPECT_EQ(ids.users, (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6}));  // user u = uid u
  EXPECT_EQ(ids_of(d.train_user_ids, d.train.n_rows), (std::vector<int64_t>{0, 1, 2}));
  EXPECT_EQ(rows_of(d.train), (Rows{{0, 3}, {1, 2, 4}, {0}}));
  EXPECT_EQ(ids_of(d.valid.user_ids, d.valid.n_users), (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(rows_of(d.valid.foldin), (Rows{{0, 1, 2, 3}, {2}}));
  EXPECT_EQ(rows_of(d.valid.heldout), (Rows{{4}, {}}));
  EXPECT_EQ(ids_of(d.test.user_ids, d.test.n_users), (std::vector<int64_t>{5, 6}));
  EXPECT_EQ(rows_of(d.test.foldin), (Rows{{0, 1, 3, 4}, {0, 1, 2, 3}}));
  EXPECT_EQ(rows_of(d.test.heldout), (Rows{{2}, {4}}));

  // String sids (the MSD's song ids) stay strings.
  srtest::write_file(dir + "/unique_sid.txt", "SOAAA\nSOBBB\nSOCCC\nSODDD\nSOEEE\n");
  ASSERT_EQ(sr_import(&imp.o, out.c_str(), nullptr), SR_OK) << sr_error_message();
  FileIds strings_ids;
  sr_h5file f;
  ASSERT_EQ(sr_h5_open(&f, out.c_str()), SR_OK);
  char *data;
  int64_t n;
  int width;
  ASSERT_EQ(sr_h5_read_strings(&f, "/ids/items", &data, &n, &width), SR_OK) << sr_error_message();
  EXPECT_EQ(strings_of(data, n, width), (Strings{"SOAAA", "SOBBB", "SOCCC", "SODDD", "SOEEE"}));
  free(data);
  sr_h5_close(&f);
}

TEST(ImportMultVae, Errors) {
  srtest::TempDir tmp;
  const std::string dir = tmp.file("pro"), out = tmp.file("mv.h5");
  ASSERT_EQ(mkdir(dir.c_str(), 0777), 0);
  struct {
    std::string file, content, message;
  } cases[] = {
      {"train.csv", "uid,sid\n0,0\n0,5\n", "train.csv:3: sid '5' is not an item number of unique_sid.txt [0, 5)"},
      {"train.csv", "user,item\n0,0\n", "train.csv:1: expected the header 'uid,sid'"},
      {"train.csv", "uid,sid\n0,0\n4,0\n", "uid 4 is in train.csv and in validation_tr.csv"},
      {"test_te.csv", "uid,sid\n5,1\n", "uid 5, sid 1: given twice (in test_tr.csv and test_te.csv)"},
      {"unique_sid.txt", "1\n32\n1\n", "unique_sid.txt:3: item '1' is listed twice"},
  };
  for (const auto &c : cases) {
    write_multvae_dir(dir);
    srtest::write_file(dir + "/" + c.file, c.content);
    Import imp(SR_IMPORT_MULTVAE, {dir});
    EXPECT_NE(sr_import(&imp.o, out.c_str(), nullptr), SR_OK) << c.message;
    EXPECT_TRUE(contains(sr_error_message(), c.message)) << c.message << "\ngot: " << sr_error_message();
  }
  write_multvae_dir(dir);
  Import filtered(SR_IMPORT_MULTVAE, {dir});
  filtered.o.min_user_items = 5;
  EXPECT_TRUE(contains(load_error(filtered, SR_EINVAL),
                       "the minimum counts: the Mult-VAE split is imported as it is (users, items and splits)"));
  EXPECT_EQ(list_dir(tmp.path()), (Strings{"pro"}));
  // On the command line: the directory is recognised; filtering is refused.
  const std::string bin = SHARDREC_BINARY;
  auto ok = srtest::run_command(bin + " data import -o " + out + " " + dir);
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
  EXPECT_TRUE(contains(ok.output, "wrote " + out +
                                      ": protocol strong, 5 items; train 3 users / 6 interactions; "
                                      "valid 2 users; test 2 users"))
      << ok.output;
  auto refused = srtest::run_command(bin + " data import -o " + out + " --min-rating 4 " + dir);
  EXPECT_EQ(refused.exit_code, 2) << refused.output;
  EXPECT_TRUE(contains(refused.output, "--min-rating: the Mult-VAE split is imported as it is")) << refused.output;
}

namespace {

// RecBole atomic files in ml-100k's layout (tab-separated, typed headers).
const char *const kRecBoleInterHeader = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n";
const char *const kRecBoleItems =
    "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\tprice:float\n"
    "i1\tToy Story\t1995\tAnimation Comedy\t1.5\n"
    "i2\tHeat\t1995\tAction\t2\n"
    "i3\tSabrina\t1954\tComedy Romance\t3\n"
    "i9\tNobody Rated\t2000\tDrama\t1\n";
const char *const kRecBoleUsers =
    "user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token\n"
    "u1\t24\tM\ttechnician\t85711\n"
    "u2\t53\tF\tother\t94043\n"
    "u3\t23\tM\twriter\t32067\n";

}  // namespace

// One NAME.inter: tokens are string ids, float timestamps, NAME.item and
// NAME.user features (token: single-valued, token_seq: multi-valued, float
// fields left out); the split is chosen by the options, as for CSV.
TEST(ImportRecBole, AtomicFilesWithFeatures) {
  srtest::TempDir tmp;
  std::string inter = kRecBoleInterHeader;
  const char *const users[3] = {"u1", "u2", "u3"}, *const items[3] = {"i1", "i2", "i3"};
  for (int u = 0; u < 3; u++)
    for (int i = 0; i < 3; i++)
      inter += std::string(users[u]) + "\t" + items[i] + "\t" + std::to_string(3 + (u + i) % 3) + "\t" +
               std::to_string(881250949 + 10 * ((i + u) % 3)) + ".0\n";
  srtest::write_file(tmp.file("ml.inter"), inter);
  srtest::write_file(tmp.file("ml.item"), kRecBoleItems);
  srtest::write_file(tmp.file("ml.user"), kRecBoleUsers);
  sr_import_format format;
  std::string path = tmp.file("ml.inter");
  const char *inputs[1] = {path.c_str()};
  ASSERT_EQ(sr_import_detect_format(inputs, 1, &format), SR_OK);
  EXPECT_EQ(format, SR_IMPORT_RECBOLE);
  Import imp(SR_IMPORT_RECBOLE, {path});
  imp.o.has_min_rating = 1;
  imp.o.min_rating = 4;  // keeps (u1,i2) (u1,i3) (u2,i1) (u2,i2) (u3,i1) (u3,i3)
  Table tab;
  LOAD(imp, tab);
  EXPECT_EQ(strings(tab.t.users), (Strings{"u1", "u2", "u3"}));
  EXPECT_EQ(strings(tab.t.items), (Strings{"i1", "i2", "i3"}));
  EXPECT_EQ(rows_of(tab.t.full), (Rows{{1, 2}, {0, 1}, {0, 2}}));
  ASSERT_EQ(tab.t.n_item_features, 3);  // price:float is not categorical
  const sr_feature *year = feature(tab.t.item_features, 3, "release_year");
  ASSERT_TRUE(year);
  EXPECT_FALSE(year->multi_valued);
  EXPECT_EQ(rows_of(year->values), (Rows{{1}, {1}, {0}}));  // 1954, 1995
  const sr_feature *cls = feature(tab.t.item_features, 3, "class");
  ASSERT_TRUE(cls);
  EXPECT_TRUE(cls->multi_valued);
  EXPECT_EQ(rows_of(cls->values), (Rows{{1, 2}, {0}, {2, 3}}));  // Action Animation Comedy Romance
  ASSERT_EQ(tab.t.n_user_features, 4);
  const sr_feature *gender = feature(tab.t.user_features, 4, "gender");
  ASSERT_TRUE(gender);
  EXPECT_EQ(rows_of(gender->values), (Rows{{1}, {0}, {1}}));
  // The timestamps (floats) order a temporal split: user u's items i with
  // (i + u) % 3 = 2 (the latest) are test, 1 validation, 0 training.
  Import weak(SR_IMPORT_RECBOLE, {path});
  weak.o.protocol = SR_PROTOCOL_WEAK;
  weak.o.holdout = SR_HOLDOUT_TEMPORAL;
  weak.o.split.min_items_for_heldout = 3;
  weak.o.split.heldout_fraction = 0.34;
  std::string out = tmp.file("rb.h5");
  Dataset ds;
  ASSERT_NO_FATAL_FAILURE(import_and_read(weak, out, &ds));
  EXPECT_EQ(rows_of(ds.d.test.heldout), (Rows{{2}, {1}, {0}}));
  EXPECT_EQ(rows_of(ds.d.valid.heldout), (Rows{{1}, {0}, {2}}));
  EXPECT_EQ(ds.d.n_item_features, 3);
  EXPECT_EQ(ds.d.n_user_features, 4);
  // A header field without its type is refused naming the file and line.
  srtest::write_file(tmp.file("bad.inter"), "user_id\titem_id:token\nu1\ti1\n");
  Import bad(SR_IMPORT_RECBOLE, {tmp.file("bad.inter")});
  EXPECT_TRUE(contains(load_error(bad), "bad.inter:1: header field 'user_id' is not NAME:TYPE"))
      << sr_error_message();
}

// The pre-split benchmark files: a given weak split, kept exactly; the test
// fold-in is training and validation items (RecBole masks both when testing);
// every item of any file is in the catalogue.
TEST(ImportRecBole, PreSplitFilesKeptExactly) {
  srtest::TempDir tmp;
  const std::string h = kRecBoleInterHeader;
  srtest::write_file(tmp.file("ml.train.inter"), h + "u1\ti1\t5\t1\nu1\ti2\t4\t2\nu2\ti2\t3\t1\nu3\ti1\t5\t1\n");
  srtest::write_file(tmp.file("ml.valid.inter"), h + "u1\ti3\t5\t3\nu2\ti1\t4\t2\n");
  srtest::write_file(tmp.file("ml.test.inter"), h + "u1\ti9\t5\t4\nu2\ti3\t5\t3\nu3\ti2\t1\t2\n");
  srtest::write_file(tmp.file("ml.item"), kRecBoleItems);
  Import imp(SR_IMPORT_RECBOLE, {tmp.file("ml.train.inter"), tmp.file("ml.valid.inter"), tmp.file("ml.test.inter")});
  sr_import_set_inputs(&imp.o, imp.paths.data(), 3);
  EXPECT_EQ(imp.o.protocol, SR_PROTOCOL_WEAK);
  EXPECT_EQ(imp.o.holdout, SR_HOLDOUT_GIVEN);
  const std::string out = tmp.file("rb.h5");
  Dataset ds;
  ASSERT_NO_FATAL_FAILURE(import_and_read(imp, out, &ds));
  const sr_dataset &d = ds.d;
  FileIds ids;
  read_ids(out, &ids, true);
  EXPECT_EQ(ids.user_strings, (Strings{"u1", "u2", "u3"}));
  EXPECT_EQ(ids.item_strings, (Strings{"i1", "i2", "i3", "i9"}));  // i9 is only in the test file
  EXPECT_EQ(rows_of(d.train), (Rows{{0, 1}, {1}, {0}}));
  EXPECT_EQ(ids_of(d.valid.user_ids, d.valid.n_users), (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(rows_of(d.valid.foldin), (Rows{{0, 1}, {1}}));
  EXPECT_EQ(rows_of(d.valid.heldout), (Rows{{2}, {0}}));
  EXPECT_EQ(ids_of(d.test.user_ids, d.test.n_users), (std::vector<int64_t>{0, 1, 2}));
  EXPECT_EQ(rows_of(d.test.foldin), (Rows{{0, 1, 2}, {0, 1}, {0}}));
  EXPECT_EQ(rows_of(d.test.heldout), (Rows{{3}, {2}, {1}}));
  ASSERT_EQ(d.n_item_features, 3);
  // Out of order, or asking for a drawn validation split too, is refused.
  Import swapped(SR_IMPORT_RECBOLE,
                 {tmp.file("ml.valid.inter"), tmp.file("ml.train.inter"), tmp.file("ml.test.inter")});
  EXPECT_TRUE(contains(load_error(swapped, SR_EINVAL), "recbole: give NAME.inter, or NAME.train.inter"))
      << sr_error_message();
  imp.o.split.validation_fraction = 0.2;
  EXPECT_TRUE(contains(load_error(imp, SR_EINVAL), "--validation-fraction: NAME.valid.inter gives the validation"));
  // The command line finds the format and the given split from the names.
  auto r =
      srtest::run_command(std::string(SHARDREC_BINARY) + " data import -o " + out + " " + tmp.file("ml.train.inter") +
                          " " + tmp.file("ml.valid.inter") + " " + tmp.file("ml.test.inter"));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "protocol weak, 4 items; train 3 users / 4 interactions; valid 2 users; test 3"))
      << r.output;
}

TEST(ImportSplit, StrongGeneralisation) {
  srtest::TempDir tmp;
  srtest::write_file(tmp.file("ratings.dat"), srtest::movielens_ratings_dat());
  Import imp(SR_IMPORT_MOVIELENS, {tmp.file("ratings.dat")});
  imp.o.split.n_heldout_users = 20;
  Table tab;
  LOAD(imp, tab);
  Pairs expected;  // the kept interactions, as raw ids
  for (int64_t r = 0; r < tab.t.full.n_rows; r++)
    for (int64_t k = tab.t.full.indptr[r]; k < tab.t.full.indptr[r + 1]; k++)
      expected.insert({tab.t.users.numbers[r], tab.t.items.numbers[tab.t.full.indices[k]]});
  for (const auto &p : expected) {  // the threshold and the minimum count, by hand
    int u = (int)(p.first - 5000) / 3, item = (int)p.second / 10;
    EXPECT_GE(1 + (u + item) % 5, 4);
  }

  std::string out = tmp.file("s.h5");
  Dataset ds;
  ASSERT_NO_FATAL_FAILURE(import_and_read(imp, out, &ds));
  const sr_dataset &d = ds.d;
  EXPECT_EQ(d.protocol, SR_PROTOCOL_STRONG);
  EXPECT_EQ(d.n_users, tab.t.full.n_rows);
  EXPECT_EQ(d.valid.n_users, 20);
  EXPECT_EQ(d.test.n_users, 20);
  EXPECT_EQ(d.train.n_rows, d.n_users - 40);
  std::set<int64_t> seen;
  for (int64_t r = 0; r < d.train.n_rows; r++) seen.insert(d.train_user_ids[r]);
  for (const sr_eval_split *s : {&d.valid, &d.test})
    for (int64_t r = 0; r < s->n_users; r++) EXPECT_TRUE(seen.insert(s->user_ids[r]).second) << "user in two splits";
  EXPECT_EQ((int64_t)seen.size(), d.n_users);

  FileIds ids;
  read_ids(out, &ids);
  Pairs found;
  add_pairs(d.train, d.train_user_ids, ids, &found);
  size_t in_train = found.size();
  EXPECT_EQ(in_train, (size_t)d.train.nnz);
  for (const sr_eval_split *s : {&d.valid, &d.test}) {
    add_pairs(s->foldin, s->user_ids, ids, &found);
    add_pairs(s->heldout, s->user_ids, ids, &found);
    for (int64_t r = 0; r < s->n_users; r++) {
      int64_t n = sr_csr_row_len(&s->foldin, r) + sr_csr_row_len(&s->heldout, r);
      EXPECT_EQ(sr_csr_row_len(&s->heldout, r), n < 5 ? 0 : (int64_t)(0.2 * (double)n)) << "row " << r;
    }
  }
  // Missing from the file: exactly the pairs whose item no training user has.
  std::set<int64_t> items(ids.items.begin(), ids.items.end());
  for (const auto &p : expected) EXPECT_EQ(found.count(p), items.count(p.second)) << p.first << " " << p.second;
  for (const auto &p : found) EXPECT_EQ(expected.count(p), 1u) << p.first << " " << p.second;

  // The same seed gives the same file content; another seed another split.
  Dataset again, other;
  ASSERT_EQ(sr_import(&imp.o, out.c_str(), nullptr), SR_OK);
  ASSERT_EQ(sr_dataset_read(out.c_str(), &again.d), SR_OK);
  EXPECT_EQ(rows_of(again.d.train), rows_of(d.train));
  EXPECT_EQ(rows_of(again.d.test.heldout), rows_of(d.test.heldout));
  imp.o.split.seed = 1;
  ASSERT_EQ(sr_import(&imp.o, out.c_str(), nullptr), SR_OK);
  ASSERT_EQ(sr_dataset_read(out.c_str(), &other.d), SR_OK);
  EXPECT_NE(std::vector<int64_t>(other.d.test.user_ids, other.d.test.user_ids + 20),
            std::vector<int64_t>(d.test.user_ids, d.test.user_ids + 20));
}

// ---- the weak split itself -------------------------------------------------------------------------

namespace {

// Users 0-4 hold 3, 5, 7, 10, 12 of items 0..11; users 5-7 hold every item in
// rows of 4 (< 5: nothing held out), so every item stays a training item.
Rows weak_rows() {
  return {{0, 1, 2},
          {0, 2, 4, 6, 8},
          {1, 3, 5, 7, 9, 10, 11},
          {0, 1, 2, 3, 4, 5, 6, 7, 8, 9},
          {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11},
          {0, 1, 2, 3},
          {4, 5, 6, 7},
          {8, 9, 10, 11}};
}

std::vector<int32_t> row(const sr_eval_split &s, int64_t user) {
  for (int64_t r = 0; r < s.n_users; r++)
    if (s.user_ids[r] == user) return rows_of(s.heldout)[(size_t)r];
  return {};
}

}  // namespace

TEST(WeakSplit, RandomProportionsAndFoldins) {
  Rows rows = weak_rows();
  sr_csr full = srtest::csr_from_rows(rows, 12);
  sr_split_opts o;
  sr_split_opts_default(&o);
  Dataset ds;
  ASSERT_EQ(sr_split_weak(&full, SR_HOLDOUT_RANDOM, nullptr, nullptr, 0, &o, &ds.d, nullptr), SR_OK)
      << sr_error_message();
  const sr_dataset &d = ds.d;
  EXPECT_EQ(d.protocol, SR_PROTOCOL_WEAK);
  EXPECT_EQ(d.n_items, 12);
  ASSERT_EQ(d.train.n_rows, 8);  // every user trains
  ASSERT_EQ(sr_dataset_validate(&d, "weak"), SR_OK) << sr_error_message();
  // Test and validation each take int(0.2 n): 3 -> 0, 5 -> 1, 7 -> 1, 10 -> 2, 12 -> 2.
  const int expected_out[8] = {0, 1, 1, 2, 2, 0, 0, 0};
  Rows train = rows_of(d.train);
  for (int u = 0; u < 8; u++) {
    std::vector<int32_t> test = row(d.test, u), valid = row(d.valid, u), all = train[(size_t)u];
    EXPECT_EQ((int)test.size(), expected_out[u]) << u;
    EXPECT_EQ((int)valid.size(), expected_out[u]) << u;
    all.insert(all.end(), test.begin(), test.end());
    all.insert(all.end(), valid.begin(), valid.end());
    std::sort(all.begin(), all.end());
    EXPECT_EQ(all, rows[(size_t)u]) << "user " << u << ": train + valid + test = the row, disjoint";
  }
  // Evaluation users: those with held-out items (1-4); validation fold-in =
  // the training row, test fold-in = training + validation items.
  ASSERT_EQ(d.valid.n_users, 4);
  ASSERT_EQ(d.test.n_users, 4);
  for (int64_t r = 0; r < 4; r++) {
    int64_t u = d.valid.user_ids[r];
    EXPECT_EQ(u, r + 1);
    EXPECT_EQ(rows_of(d.valid.foldin)[(size_t)r], train[(size_t)u]);
    std::vector<int32_t> foldin = train[(size_t)u], v = row(d.valid, u);
    foldin.insert(foldin.end(), v.begin(), v.end());
    std::sort(foldin.begin(), foldin.end());
    EXPECT_EQ(rows_of(d.test.foldin)[(size_t)r], foldin);
  }
  // A user's draw depends on the seed and the user alone.
  Dataset same, other_seed;
  ASSERT_EQ(sr_split_weak(&full, SR_HOLDOUT_RANDOM, nullptr, nullptr, 0, &o, &same.d, nullptr), SR_OK);
  EXPECT_EQ(rows_of(same.d.test.heldout), rows_of(d.test.heldout));
  o.seed = 7;
  ASSERT_EQ(sr_split_weak(&full, SR_HOLDOUT_RANDOM, nullptr, nullptr, 0, &o, &other_seed.d, nullptr), SR_OK);
  EXPECT_NE(rows_of(other_seed.d.test.heldout), rows_of(d.test.heldout));
  sr_csr_free(&full);
}

TEST(WeakSplit, TemporalHoldsOutTheLatest) {
  // User 0 has 10 items, in time order 9 0 1 2 4 5 6 8, then 3 and 7 at the
  // same latest time (the larger item counts as later). Users 1-3 keep every
  // item a training item (rows under 5 items hold nothing out).
  sr_csr full = srtest::csr_from_rows({{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, {0, 1, 2, 3}, {4, 5, 6, 7}, {8, 9}}, 10);
  const int64_t times[10] = {10, 20, 30, 99, 50, 60, 70, 99, 90, 5};
  std::vector<int64_t> keys(times, times + 10);
  keys.resize(20, 0);
  sr_split_opts o;
  sr_split_opts_default(&o);
  Dataset ds;
  ASSERT_EQ(sr_split_weak(&full, SR_HOLDOUT_TEMPORAL, keys.data(), nullptr, 0, &o, &ds.d, nullptr), SR_OK)
      << sr_error_message();
  // Latest: 7 (99, larger id), 3 (99) -> test; then 8 (90), 6 (70) -> validation.
  EXPECT_EQ(row(ds.d.test, 0), (std::vector<int32_t>{3, 7}));
  EXPECT_EQ(row(ds.d.valid, 0), (std::vector<int32_t>{6, 8}));
  EXPECT_EQ(rows_of(ds.d.train)[0], (std::vector<int32_t>{0, 1, 2, 4, 5, 9}));
  sr_csr_free(&full);
}

TEST(WeakSplit, RejectsBadOptions) {
  sr_csr full = srtest::csr_from_rows(weak_rows(), 12);
  sr_split_opts o;
  sr_split_opts_default(&o);
  Dataset ds;
  EXPECT_EQ(sr_split_weak(&full, SR_HOLDOUT_TEMPORAL, nullptr, nullptr, 0, &o, &ds.d, nullptr), SR_EINVAL);
  EXPECT_TRUE(contains(sr_error_message(), "temporal holdout needs a timestamp")) << sr_error_message();
  o.heldout_fraction = 0.5;
  EXPECT_EQ(sr_split_weak(&full, SR_HOLDOUT_RANDOM, nullptr, nullptr, 0, &o, &ds.d, nullptr), SR_EINVAL);
  EXPECT_TRUE(contains(sr_error_message(), "leaves no training items")) << sr_error_message();
  sr_csr_free(&full);
}

// ---- bad input ------------------------------------------------------------------------------------

TEST(ImportErrors, NameTheFileAndTheLine) {
  srtest::TempDir tmp;
  struct Case {
    const char *name, *content;
    sr_import_format format;
    const char *columns;
    std::string expected;
  } cases[] = {
      {"ratings.dat", "1::2::5::1\n1::3::5\n", SR_IMPORT_MOVIELENS, nullptr,
       "ratings.dat:2: expected 4 fields separated by '::', got 3"},
      {"u.data", "1\t2\t5\t1\n\nabc\t2\t5\t1\n", SR_IMPORT_MOVIELENS, nullptr,
       "u.data:3: user id 'abc' is not an integer"},
      {"u.data", "1\t2\tfive\t1\n", SR_IMPORT_MOVIELENS, nullptr, "u.data:1: rating 'five' is not a number"},
      {"u.data", "\n  \n", SR_IMPORT_MOVIELENS, nullptr, "u.data: empty file"},
      {"u.data", "1,2,5,1\n", SR_IMPORT_MOVIELENS, nullptr, "u.data:1: not a MovieLens ratings file"},
      {"ratings.csv", "userId,itemId,rating,timestamp\n1,2,5,1\n", SR_IMPORT_MOVIELENS, nullptr,
       "ratings.csv:1: no column named 'movieId' in the header"},
      {"x.csv", "1,2\n3\n", SR_IMPORT_CSV, nullptr, "x.csv:2: expected at least 2 fields separated by ',', got 1"},
      {"x.csv", "1,2\n", SR_IMPORT_CSV, "user=0,item=1,rating=2", "x.csv:1: expected at least 3 fields"},
      {"x.csv", "1,\"2\n", SR_IMPORT_CSV, nullptr, "x.csv:1: a quoted field is not closed"},
      {"x.csv", "\"1\"2,3\n", SR_IMPORT_CSV, nullptr, "x.csv:1: a quoted field is not closed, or text follows"},
      {"combined_data_1.txt", "1,5,2005-01-01\n", SR_IMPORT_NETFLIX, nullptr,
       "combined_data_1.txt:1: a rating line before any 'MOVIE:' line"},
      {"combined_data_1.txt", "1:\n1,5,2005-13-01\n", SR_IMPORT_NETFLIX, nullptr,
       "combined_data_1.txt:2: date '2005-13-01' is not a date YYYY-MM-DD"},
      {"train_triplets.txt", "u\ts\t1\tx\n", SR_IMPORT_MSD, nullptr,
       "train_triplets.txt:1: expected 3 fields separated by tabs, got 4"},
      {"train.txt", "0 1 x2\n", SR_IMPORT_LIGHTGCN, nullptr, "train.txt:1: item id 'x2' is not an integer"},
  };
  for (const Case &c : cases) {
    srtest::write_file(tmp.file(c.name), c.content);
    Import imp(c.format, {tmp.file(c.name)});
    imp.o.columns = c.columns;
    imp.o.protocol = SR_PROTOCOL_STRONG;
    std::string message = load_error(imp);
    EXPECT_TRUE(contains(message, tmp.file(c.expected))) << "expected: " << c.expected << "\ngot: " << message;
  }
  Import missing(SR_IMPORT_CSV, {tmp.file("nope.csv")});
  EXPECT_TRUE(contains(load_error(missing, SR_EIO), "cannot open " + tmp.file("nope.csv")));
  srtest::write_file(tmp.file("u.data"), "1\t2\t5\t1\n");
  Import temporal(SR_IMPORT_LIGHTGCN, {tmp.file("u.data")});
  temporal.o.holdout = SR_HOLDOUT_TEMPORAL;
  EXPECT_TRUE(contains(load_error(temporal, SR_EINVAL), "--holdout temporal: the lightgcn input has no timestamps"));
  Import threshold(SR_IMPORT_CSV, {tmp.file("u.data")});
  threshold.o.has_min_rating = 1;
  EXPECT_TRUE(contains(load_error(threshold, SR_EINVAL), "--min-rating: the csv input has no rating column"));
}

// Values that used to pass silently are refused with a message naming them
// (issue 13): ids with NUL bytes (they would collide in /ids), a NaN rating
// threshold, a day that does not exist, two keys on one column, a strong
// split whose validation users hold nothing out.
TEST(ImportErrors, RefusedValues) {
  srtest::TempDir tmp;
  srtest::write_file(tmp.file("nul.csv"), std::string("u1,a\nu1,a\0\nu2,b\n", 16));
  Import nul(SR_IMPORT_CSV, {tmp.file("nul.csv")});
  nul.o.string_ids = 1;
  EXPECT_TRUE(contains(load_error(nul), "nul.csv:2: item id contains a NUL byte")) << sr_error_message();

  srtest::write_file(tmp.file("r.csv"), "1,2,5\n");
  Import nan_rating(SR_IMPORT_CSV, {tmp.file("r.csv")});
  nan_rating.o.columns = "user=0,item=1,rating=2";
  nan_rating.o.has_min_rating = 1;
  nan_rating.o.min_rating = NAN;
  EXPECT_TRUE(contains(load_error(nan_rating, SR_EINVAL), "--min-rating: nan is not a finite number"));

  Import same_column(SR_IMPORT_CSV, {tmp.file("r.csv")});
  same_column.o.columns = "user=0,item=0";
  EXPECT_TRUE(contains(load_error(same_column, SR_EINVAL), "--columns 'user=0,item=0': user and item are the same"));
  same_column.o.columns = "user=0,item=1,user=2";
  EXPECT_TRUE(contains(load_error(same_column, SR_EINVAL), "--columns: user is given twice"));

  srtest::write_file(tmp.file("combined_data_1.txt"), "1:\n7,5,2004-02-29\n8,5,2005-02-29\n");
  Import date(SR_IMPORT_NETFLIX, {tmp.file("combined_data_1.txt")});
  EXPECT_TRUE(contains(load_error(date), "combined_data_1.txt:3: date '2005-02-29' is not a date YYYY-MM-DD"));
  srtest::write_file(tmp.file("combined_data_1.txt"), "1:\n7,5,2005-02-31\n");
  EXPECT_TRUE(contains(load_error(date), "combined_data_1.txt:2: date '2005-02-31' is not a date"));

  std::string rows;  // 40 users of 3 items: nobody reaches --heldout-min-items 5
  for (int u = 0; u < 40; u++)
    for (int k = 0; k < 3; k++) rows += std::to_string(u) + "," + std::to_string((u + k) % 7) + "\n";
  srtest::write_file(tmp.file("short.csv"), rows);
  Import strong(SR_IMPORT_CSV, {tmp.file("short.csv")});
  EXPECT_EQ(sr_import(&strong.o, tmp.file("s.h5").c_str(), nullptr), SR_EINVAL);
  EXPECT_TRUE(
      contains(sr_error_message(), "the test split has no held-out items: no test user has --heldout-min-items"))
      << sr_error_message();
  EXPECT_EQ(list_dir(tmp.path()), (Strings{"combined_data_1.txt", "nul.csv", "r.csv", "short.csv"}));
}

TEST(ImportErrors, SkipBadLinesCountsThem) {
  srtest::TempDir tmp;
  srtest::write_file(tmp.file("ratings.dat"),
                     "1::10::5::1\n"
                     "1::11::5\n"     // 3 fields
                     "x::12::5::1\n"  // non-numeric user
                     "1::12::5::1\n"
                     "2::10::bad::1\n"  // rating
                     "2::11::4::1\n");
  srtest::write_file(tmp.file("movies.dat"), "10::A (1990)::Drama\nbroken\n11::B (2001)::Comedy\n");
  Import imp(SR_IMPORT_MOVIELENS, {tmp.file("ratings.dat")});
  std::string movies = tmp.file("movies.dat");
  imp.o.movies_path = movies.c_str();
  imp.o.min_user_items = 1;
  imp.o.skip_bad_lines = 1;
  sr_log_set_level(SR_LOG_ERROR);  // the skipped lines are also warned about
  Table tab;
  LOAD(imp, tab);
  sr_log_set_level(SR_LOG_INFO);
  EXPECT_EQ(tab.t.stats.skipped_lines, 4);  // 3 ratings lines, 1 movies line
  EXPECT_EQ(std::string(tab.t.stats.first_skipped),
            tmp.file("ratings.dat") + ":2: expected 4 fields separated by '::', got 3");
  EXPECT_EQ(tab.t.stats.lines, 6);
  EXPECT_EQ(rows_of(tab.t.full), (Rows{{0, 2}, {1}}));  // 1: {10, 12}; 2: {11}
  // Without the option the first bad line stops the import.
  imp.o.skip_bad_lines = 0;
  EXPECT_TRUE(contains(load_error(imp), "ratings.dat:2: expected 4 fields"));
}

// ---- the command line ---------------------------------------------------------------------------

// A failing import leaves neither an output nor a temporary file, and an
// existing output untouched.
TEST(ImportCommand, NothingHalfWritten) {
  srtest::TempDir tmp;
  const std::string bin = SHARDREC_BINARY;
  srtest::write_file(tmp.file("u.data"), "1\t2\t5\t1\n1\t3\t5\n");
  auto bad = srtest::run_command(bin + " data import -o " + tmp.file("out.h5") + " " + tmp.file("u.data"));
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_TRUE(contains(bad.output, "u.data:2: expected 4 fields separated by tabs, got 3")) << bad.output;
  EXPECT_EQ(list_dir(tmp.path()), (Strings{"u.data"}));
  // A failure after reading (too many held-out users for the split) neither.
  srtest::write_file(tmp.file("u.data"), "1\t2\t5\t1\n2\t3\t5\t1\n");
  auto split = srtest::run_command(bin + " data import -o " + tmp.file("out.h5") + " --min-user-items 1 " +
                                   "--heldout-users 5 " + tmp.file("u.data"));
  EXPECT_EQ(split.exit_code, 2);
  EXPECT_TRUE(contains(split.output, "split: 2 x 5 held-out users leave no training user")) << split.output;
  EXPECT_EQ(list_dir(tmp.path()), (Strings{"u.data"}));
  srtest::write_file(tmp.file("out.h5"), "previous content");
  auto again = srtest::run_command(bin + " data import -o " + tmp.file("out.h5") + " " + tmp.file("u.data") +
                                   " --min-rating 9");
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_TRUE(contains(again.output, "no interactions in the input (2 read, 2 of them below --min-rating)"))
      << again.output;
  EXPECT_EQ(srtest::read_file(tmp.file("out.h5")), "previous content");
  EXPECT_EQ(list_dir(tmp.path()), (Strings{"out.h5", "u.data"}));
  // A failure at the very end (the rename: the output name is a directory)
  // removes the complete temporary file.
  ASSERT_EQ(mkdir(tmp.file("dir.h5").c_str(), 0777), 0);
  std::string ten_users;  // 10 users of the same 5 items: 3 train, 1 validation, 1 test each
  for (int u = 0; u < 10; u++)
    for (int item = 0; item < 5; item++) ten_users += std::to_string(u) + "\t" + std::to_string(item) + "\t5\t1\n";
  srtest::write_file(tmp.file("u.data"), ten_users);
  auto rename = srtest::run_command(bin + " data import -o " + tmp.file("dir.h5") + " --min-user-items 1 " +
                                    "--protocol weak " + tmp.file("u.data"));
  EXPECT_EQ(rename.exit_code, 1);
  EXPECT_TRUE(contains(rename.output, "rename")) << rename.output;
  EXPECT_EQ(list_dir(tmp.path()), (Strings{"dir.h5", "out.h5", "u.data"}));
}

// Format from the file name, defaults of the format, everything recorded in /import.
TEST(ImportCommand, DetectsTheFormatAndRecordsTheOptions) {
  srtest::TempDir tmp;
  const std::string bin = SHARDREC_BINARY, out = tmp.file("ml.h5");
  srtest::write_file(tmp.file("ratings.dat"), srtest::movielens_ratings_dat());
  auto r = srtest::run_command(bin + " data import -o " + out + " " + tmp.file("ratings.dat") +
                               " --heldout-users 15 --seed 7 --iterate-min-counts");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "from 1 movielens file(s)")) << r.output;
  EXPECT_TRUE(contains(r.output, "wrote " + out + ": protocol strong")) << r.output;
  auto v = srtest::run_command(bin + " data validate " + out);
  EXPECT_EQ(v.exit_code, 0) << v.output;
  EXPECT_TRUE(contains(v.output, "valid 15 users, test 15 users")) << v.output;
  sr_h5file f;
  ASSERT_EQ(sr_h5_open(&f, out.c_str()), SR_OK);
  char text[1024];
  ASSERT_EQ(sr_h5_read_attr_string(&f, "/import", "format", text, sizeof text), SR_OK) << sr_error_message();
  EXPECT_STREQ(text, "movielens");
  ASSERT_EQ(sr_h5_read_attr_string(&f, "/import", "command", text, sizeof text), SR_OK);
  EXPECT_TRUE(contains(text, "shardrec data import -o " + out)) << text;
  double min_rating;
  ASSERT_EQ(sr_h5_read_attr_double(&f, "/import", "min_rating", &min_rating), SR_OK);
  EXPECT_EQ(min_rating, 4.0);
  struct {
    const char *name;
    int64_t value;
  } ints[] = {{"min_user_items", 5}, {"min_item_users", 0},        {"iterate_min_counts", 1},
              {"seed", 7},           {"min_items_for_heldout", 5}, {"keep_values", 0}};
  for (const auto &e : ints) {
    int64_t value;
    ASSERT_EQ(sr_h5_read_attr_int64(&f, "/import", e.name, &value), SR_OK) << e.name;
    EXPECT_EQ(value, e.value) << e.name;
  }
  int64_t records;
  ASSERT_EQ(sr_h5_read_attr_int64(&f, "/import", "records", &records), SR_OK);
  int64_t expected_records = 0;
  for (int u = 0; u < 200; u++) expected_records += 2 + u % 30;
  EXPECT_EQ(records, expected_records);
  sr_h5_close(&f);
}

// Both protocols run through train and eval on imported files: the weak one
// (LightGCN files: the evaluation users are training users, their training
// items are the fold-in and are excluded from the ranking), and the strong one
// (the same two files as one log, held-out users).
TEST(ImportCommand, BothProtocolsTrainAndEvaluate) {
  srtest::TempDir tmp;
  const std::string bin = SHARDREC_BINARY, cfg = tmp.file("c.yaml");
  std::string train, test;
  for (int u = 0; u < 300; u++) {  // two taste groups over 60 items
    int base = (u % 2) * 30;
    train += std::to_string(u);
    for (int k = 0; k < 12; k++) train += " " + std::to_string(base + (u * 7 + k) % 30);
    train += "\n";
    test += std::to_string(u) + " " + std::to_string(base + (u * 7 + 15) % 30) + "\n";  // not a training item
  }
  srtest::write_file(tmp.file("train.txt"), train);
  srtest::write_file(tmp.file("test.txt"), test);
  for (std::string protocol : {"weak", "strong"}) {
    const std::string data = tmp.file(protocol + ".h5");
    auto imp = srtest::run_command(bin + " data import -o " + data + " --protocol " + protocol +
                                   (protocol == "strong" ? " --heldout-users 30 " : " --validation-fraction 0.2 ") +
                                   tmp.file("train.txt") + " " + tmp.file("test.txt"));
    ASSERT_EQ(imp.exit_code, 0) << imp.output;
    EXPECT_TRUE(contains(imp.output, "protocol " + protocol)) << imp.output;
    srtest::write_file(cfg, "run: {name: " + protocol + ", out_dir: " + tmp.path() + "}\ndata: {path: " + data +
                                "}\nmodel: {hidden: [32], latent_dim: 8}\ntrain: {epochs: 2, batch_size: 50}\n");
    auto tr = srtest::run_command(bin + " train " + cfg);
    ASSERT_EQ(tr.exit_code, 0) << tr.output;
    EXPECT_TRUE(contains(tr.output, "\ntest recall@20 ")) << tr.output;
    auto ev = srtest::run_command(bin + " eval " + tmp.file(protocol + "/model.h5") + " --split valid");
    EXPECT_EQ(ev.exit_code, 0) << ev.output;
    EXPECT_TRUE(contains(ev.output, "valid ")) << ev.output;
  }
}

// A dataset without a validation split (LightGCN files by default) trains for
// train.epochs epochs and keeps the last one (issue 14).
TEST(ImportCommand, TrainsWithoutAValidationSplit) {
  srtest::TempDir tmp;
  const std::string bin = SHARDREC_BINARY, data = tmp.file("lg.h5"), cfg = tmp.file("c.yaml");
  std::string train, test;
  for (int u = 0; u < 100; u++) {
    train += std::to_string(u);
    for (int k = 0; k < 6; k++) train += " " + std::to_string((u * 3 + k) % 40);
    train += "\n";
    test += std::to_string(u) + " " + std::to_string((u * 3 + 7) % 40) + "\n";
  }
  srtest::write_file(tmp.file("train.txt"), train);
  srtest::write_file(tmp.file("test.txt"), test);
  auto imp =
      srtest::run_command(bin + " data import -o " + data + " " + tmp.file("train.txt") + " " + tmp.file("test.txt"));
  ASSERT_EQ(imp.exit_code, 0) << imp.output;
  EXPECT_TRUE(contains(imp.output, "train 100 users / 600 interactions; valid 0 users; test 100 users"))
      << imp.output;
  srtest::write_file(cfg, "run: {name: lg, out_dir: " + tmp.path() + "}\ndata: {path: " + data +
                              "}\nmodel: {hidden: [16], latent_dim: 8}\ntrain: {epochs: 3, batch_size: 25}\n");
  auto tr = srtest::run_command(bin + " train " + cfg);
  ASSERT_EQ(tr.exit_code, 0) << tr.output;
  EXPECT_TRUE(contains(tr.output, "no validation split: training runs train.epochs epochs")) << tr.output;
  EXPECT_TRUE(contains(tr.output, "kept the last epoch, 3 (step 12; the dataset has no validation split)"))
      << tr.output;
  EXPECT_TRUE(contains(tr.output, "\ntest recall@20 ")) << tr.output;
  auto ev = srtest::run_command(bin + " eval " + tmp.file("lg/model.h5") + " --split test");
  EXPECT_EQ(ev.exit_code, 0) << ev.output;
}

TEST(ImportCommand, UsageErrors) {
  srtest::TempDir tmp;
  const std::string bin = SHARDREC_BINARY, out = " -o " + tmp.file("o.h5") + " ";
  srtest::write_file(tmp.file("train.txt"), "0 1 2\n");
  struct {
    std::string args, message;
  } cases[] = {
      {out + tmp.file("data.bin"), "cannot tell the format of '" + tmp.file("data.bin") + "' from its name"},
      {out + "--format nope x", "unknown format 'nope'"},
      {out, "no input file"},
      {tmp.file("train.txt"), "missing -o FILE"},
      {out + "--duplicates often " + tmp.file("train.txt"), "unknown duplicates policy 'often'"},
      {out + "--protocol medium " + tmp.file("train.txt"), "--protocol: unknown value 'medium'"},
      {out + "--min-user-items -1 " + tmp.file("train.txt"), "--min-user-items: expected an integer"},
      {out + "--holdout temporal " + tmp.file("train.txt"), "the lightgcn input has no timestamps"},
      {out + "--protocol strong --holdout random " + tmp.file("train.txt"), "--holdout applies to --protocol weak"},
      {out + "--heldout-users 3 " + tmp.file("train.txt"), "--heldout-users: the weak protocol holds out items"},
      {out + "--columns user=0 --format csv " + tmp.file("train.txt"), "--columns 'user=0': no item column"},
      {out + "--columns user=id,item=1 --format csv " + tmp.file("train.txt"), "names a column: add --header"},
      {out + "--min-rating nan --format csv " + tmp.file("train.txt"),
       "--min-rating: expected a finite number, got 'nan'"},
      // Option errors come before the input is read (nope.csv does not exist) and name the option.
      {out + "--heldout-fraction 0 " + tmp.file("nope.csv"), "--heldout-fraction 0 outside (0, 1)"},
      {out + "--protocol weak --heldout-fraction 0.5 " + tmp.file("nope.csv"),
       "--heldout-fraction 0.5 outside (0, 0.5)"},
      {out + "--heldout-fraction 0.1 " + tmp.file("train.txt"), "--validation-fraction F draws validation items"},
      {out + "--validation-fraction 0.1 --format csv " + tmp.file("nope.csv"),
       "--validation-fraction applies to --holdout given"},
      {out + "--movies m.dat --format lightgcn " + tmp.file("nope.csv"),
       "--movies and --users describe MovieLens ids"},
      {" -o " + tmp.file("train.txt") + " " + tmp.file("train.txt"),
       "the output " + tmp.file("train.txt") + " is also an input"},
  };
  for (const auto &c : cases) {
    auto r = srtest::run_command(bin + " data import " + c.args);
    EXPECT_EQ(r.exit_code, 2) << c.args << "\n" << r.output;
    EXPECT_TRUE(contains(r.output, c.message)) << c.args << "\n" << r.output;
  }
  EXPECT_EQ(srtest::read_file(tmp.file("train.txt")), "0 1 2\n");  // the input named as output is untouched
  auto help = srtest::run_command(bin + " data import --help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_TRUE(contains(help.output, "--iterate-min-counts")) << help.output;
}

// ---- memory ----------------------------------------------------------------------------------------

// AddressSanitizer's shadow memory and redzones change every footprint.
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

namespace {

// A ratings.csv of n lines (users of ~100 ratings, every rating kept).
void write_ratings(const std::string &path, int64_t n) {
  FILE *f = fopen(path.c_str(), "w");
  ASSERT_TRUE(f);
  fprintf(f, "userId,movieId,rating,timestamp\n");
  for (int64_t k = 0; k < n; k++)
    fprintf(f, "%lld,%lld,4.5,%lld\n", (long long)(k / 100), (long long)(k * 7919 % 5003), (long long)k);
  fclose(f);
}

// Peak resident set size (KiB) of `shardrec data import ...` on `input`.
long import_peak_kib(const std::string &input, const std::string &output) {
  pid_t pid = fork();
  if (pid == 0) {
    int null = open("/dev/null", O_WRONLY);
    dup2(null, 1);
    dup2(null, 2);
    execl(SHARDREC_BINARY, "shardrec", "data", "import", "-o", output.c_str(), "--heldout-users", "100",
          input.c_str(), (char *)nullptr);
    _exit(127);
  }
  int status;
  struct rusage usage;
  if (pid < 0 || wait4(pid, &status, 0, &usage) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return -1;
  return usage.ru_maxrss;
}

}  // namespace

// The import holds a compact log, not the text: peak memory grows by a few
// bytes per line (12 at the peak for binary data, design in import.h), far
// below the ~26 bytes of text per line. Measured at 0.2 M and 1.2 M lines so
// that the fixed cost of the process cancels out.
TEST(ImportScale, PeakMemoryGrowsByAFewBytesPerLine) {
  if (UNDER_ASAN) GTEST_SKIP() << "memory is not measurable under AddressSanitizer";
  srtest::TempDir tmp;
  ASSERT_EQ(mkdir(tmp.file("small").c_str(), 0777), 0);  // the name ratings.csv says the format
  ASSERT_EQ(mkdir(tmp.file("large").c_str(), 0777), 0);
  write_ratings(tmp.file("small/ratings.csv"), 200000);
  write_ratings(tmp.file("large/ratings.csv"), 1200000);
  long small = import_peak_kib(tmp.file("small/ratings.csv"), tmp.file("small.h5"));
  long large = import_peak_kib(tmp.file("large/ratings.csv"), tmp.file("large.h5"));
  ASSERT_GT(small, 0);
  ASSERT_GT(large, 0);
  double bytes_per_line = (double)(large - small) * 1024.0 / 1000000.0;
  std::printf("peak RSS %ld KiB at 0.2 M lines, %ld KiB at 1.2 M lines: %.1f bytes per extra line\n", small, large,
              bytes_per_line);
  EXPECT_LT(bytes_per_line, 24.0);
}

// ---- configs ------------------------------------------------------------------------------------------

// The paper configs load and say how to make their data file.
TEST(Configs, PaperConfigsLoadAndGiveTheirImportCommand) {
  const char *names[] = {"ml20m-multvae",   "ml20m-multdae", "netflix-multvae",
                         "netflix-multdae", "msd-multvae",   "msd-multdae"};
  for (const char *name : names) {
    std::string path = std::string(SHARDREC_SOURCE_DIR) + "/configs/" + name + ".yaml";
    sr_config c;
    sr_config_defaults(&c);
    ASSERT_EQ(sr_config_load_file(&c, path.c_str()), SR_OK) << sr_error_message();
    EXPECT_EQ(sr_config_validate(&c), SR_OK) << name << ": " << sr_error_message();
    std::string text = srtest::read_file(path);
    EXPECT_TRUE(contains(text, "#   shardrec data import -o " + std::string(c.data.path) + " --heldout-users "))
        << name;
    EXPECT_TRUE(contains(text, "NDCG@100 0.")) << name << ": the published figure";
    EXPECT_EQ(c.train.epochs, std::string(name).rfind("ml20m", 0) == 0 ? 200 : 100) << name;
  }
}

// --cold-items (issue 17) holds a share of the items out of training: the
// file lists them and `data info` reports them; a share outside [0, 1) is a
// usage error naming the split option.
TEST(ImportCommand, ColdItemsOption) {
  srtest::TempDir tmp;
  const std::string bin = SHARDREC_BINARY, out = tmp.file("ml.h5");
  srtest::write_file(tmp.file("ratings.dat"), srtest::movielens_ratings_dat());
  auto r = srtest::run_command(bin + " data import -o " + out + " " + tmp.file("ratings.dat") +
                               " --heldout-users 15 --cold-items 0.2");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  sr_dataset d;
  ASSERT_EQ(sr_dataset_read(out.c_str(), &d), SR_OK) << sr_error_message();
  EXPECT_GT(d.n_cold_items, 0);
  sr_dataset_free(&d);
  auto info = srtest::run_command(bin + " data info " + out);
  EXPECT_TRUE(contains(info.output, "cold-start items: ")) << info.output;
  auto bad = srtest::run_command(bin + " data import -o " + tmp.file("bad.h5") + " " + tmp.file("ratings.dat") +
                                 " --heldout-users 15 --cold-items 1");
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  EXPECT_TRUE(contains(bad.output, "cold_item_fraction 1 outside [0, 1)")) << bad.output;
}
