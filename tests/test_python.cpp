// test_python.cpp — the Python package (python/shardrec, run with
// /usr/bin/python3 over Debian's h5py and numpy) against the C library: the
// metrics of `shardrec eval` to 1e-6 for every model type, and its readers of
// datasets, checkpoints and exports. Skipped where that Python lacks h5py,
// numpy or yaml (cluster/install-deps.sh installs them).
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <sstream>

#include "test_util.h"

extern "C" {
#include "shardrec/checkpoint.h"
#include "shardrec/error.h"
#include "shardrec/evaluate.h"
#include "shardrec/metrics.h"
#include "shardrec/model.h"
}

namespace {

std::string bin() { return SHARDREC_BINARY; }

bool contains(const std::string &text, const std::string &part) { return text.find(part) != std::string::npos; }

bool have_python() { return srtest::run_command("/usr/bin/python3 -c 'import h5py, numpy, yaml'").exit_code == 0; }

// /usr/bin/python3 with the package on its path; `plugin`: shardrec's zstd
// filter plugin made known (SHARDREC_PLUGIN_DIR), else no plugin at all.
srtest::CommandResult python(const std::string &args, bool plugin = true) {
  std::string env =
      std::string("env -u HDF5_PLUGIN_PATH -u SHARDREC_PLUGIN_DIR PYTHONPATH='") + SHARDREC_SOURCE_DIR + "/python' ";
  if (plugin) env += std::string("SHARDREC_PLUGIN_DIR='") + SHARDREC_PLUGIN_DIR + "' ";
  return srtest::run_command(env + "/usr/bin/python3 " + args);
}

// "name value" pairs of an eval line: "test  recall@5 0.1  ndcg@10 0.2  (60 users)".
std::map<std::string, double> parse_metrics(const std::string &output) {
  std::map<std::string, double> m;
  std::istringstream in(output.substr(output.find("test")));
  std::string word, value;
  in >> word;  // the split
  while (in >> word && word[0] != '(' && in >> value) m[word] = std::stod(value);
  return m;
}

const char *const kMetrics = "recall@5,recall@20,recall_plain@10,ndcg@10,ndcg@50,mrr@20";

class PythonPackage : public ::testing::TestWithParam<std::string> {
 protected:
  static void SetUpTestSuite() {
    if (!have_python()) return;
    tmp_ = new srtest::TempDir();
    auto synth = srtest::run_command(bin() + " data synth -o " + data() + " --users 400 --items 90 --heldout 60");
    ASSERT_EQ(synth.exit_code, 0) << synth.output;
    srtest::train_every_model_type(bin(), *tmp_, data(),
                                   "hidden: [16], latent_dim: 6, query_features: [history, user_id],"
                                   " item_features: [item_id, all], feature_dim: 4, tower_hidden: [8],"
                                   " embedding_dim: 6",
                                   "epochs: 1, batch_size: 32, max_steps: 8, select_metric: ndcg@10}\n"
                                   "eval: {metrics: [recall@5, ndcg@10]");
  }
  static void TearDownTestSuite() {
    delete tmp_;
    tmp_ = nullptr;
  }
  void SetUp() override {
    if (!have_python())
      GTEST_SKIP() << "/usr/bin/python3 lacks h5py, numpy or yaml (python3-h5py python3-numpy "
                      "python3-yaml)";
  }
  static std::string data() { return tmp_->file("d.h5"); }
  static std::string model(const std::string &type) { return tmp_->file(type + "/model.h5"); }
  static srtest::TempDir *tmp_;
};
srtest::TempDir *PythonPackage::tmp_ = nullptr;

// The package scores the test users in its own batches (17 users) and ranks
// them as metrics.h does; the library's sums (what `shardrec eval` prints,
// rounded) are the reference.
TEST_P(PythonPackage, MetricsAgreeWithShardrecEval) {
  srtest::Loaded l(model(GetParam()), data());
  ASSERT_NE(l.model, nullptr);
  std::string list = kMetrics;
  std::vector<std::string> names;
  for (size_t at = 0; at != std::string::npos;) {
    size_t comma = list.find(',', at);
    names.push_back(list.substr(at, comma == std::string::npos ? comma : comma - at));
    at = comma == std::string::npos ? comma : comma + 1;
  }
  std::vector<const char *> cnames;
  for (auto &n : names) cnames.push_back(n.c_str());
  sr_metrics metrics;
  ASSERT_EQ(sr_metrics_init(&metrics, cnames.data(), (int)cnames.size()), SR_OK);
  sr_evaluate_rows(l.model, &l.data.test, 0, l.data.test.n_users, 64, &metrics);

  auto py = python("-m shardrec eval " + model(GetParam()) + " --data " + data() + " --split test --batch 17" +
                   " --metrics " + kMetrics);
  ASSERT_EQ(py.exit_code, 0) << py.output;
  auto c_eval =
      srtest::run_command(bin() + " eval " + model(GetParam()) + " --data " + data() + " --metrics " + kMetrics);
  ASSERT_EQ(c_eval.exit_code, 0) << c_eval.output;
  std::map<std::string, double> got = parse_metrics(py.output), printed = parse_metrics(c_eval.output);
  EXPECT_TRUE(contains(py.output, "(" + std::to_string(metrics.n_users) + " users)")) << py.output;
  double spread = 0;
  for (int i = 0; i < metrics.n; i++) {
    const double want = sr_metrics_mean(&metrics, i);
    ASSERT_TRUE(got.count(names[i])) << py.output;
    EXPECT_NEAR(got[names[i]], want, 1e-6) << names[i] << "\n" << py.output;
    EXPECT_NEAR(printed[names[i]], want, 5e-5) << names[i] << "\n" << c_eval.output;
    spread += std::fabs(want - sr_metrics_mean(&metrics, 0));
  }
  EXPECT_GT(spread, 0.0) << "metrics that all agree by accident prove little";
}

INSTANTIATE_TEST_SUITE_P(EveryModel, PythonPackage, ::testing::Values("multvae", "multdae", "twotower"));

// The readers: a dataset's splits, ids and features, a checkpoint's
// parameters, config and history, an export (gzip: no plugin needed), each
// checked against what the library reads.
TEST_F(PythonPackage, ReadsDatasetsCheckpointsAndExports) {
  const std::string exported = tmp_->file("emb.h5");
  auto exp = srtest::run_command(bin() + " export " + model("twotower") + " -o " + exported);
  ASSERT_EQ(exp.exit_code, 0) << exp.output;
  srtest::write_file(tmp_->file("read.py"), R"(import sys, numpy as np, shardrec
d = shardrec.open_dataset(sys.argv[1])
print("dataset", d.n_users, d.n_items, d.protocol, d.train.nnz, d.train.n_rows, int(d.train_user_ids.sum()),
      d.test.n_users, d.test.foldin.nnz, d.test.heldout.nnz, int(d.valid.user_ids.sum()))
print("row3", list(d.train.row(3)))
print("features", " ".join("%s:%d:%d" % (f.name, f.values.shape[1], f.multi_valued) for f in d.item_features.values()))
c = shardrec.open_checkpoint(sys.argv[2])
print("checkpoint", c.model, c.n_items, c.cfg("model", "type"), c.cfg("train", "max_steps"), len(c.params))
print("param", c.params["encoder.0.weight"].shape, float(c.params["encoder.0.weight"][2, 1]))
t = shardrec.open_checkpoint(sys.argv[3])
print("training", t.step, len(t.history) > 0, all(k in t.history[-1] for k in ("epoch", "step", "best")) if t.history else None)
)");
  srtest::write_file(tmp_->file("export.py"), R"(import sys, numpy as np, shardrec
e = shardrec.open_export(sys.argv[1])
print("export", e.item_embeddings.shape, e.user_embeddings.shape, len(e.users_of("test")), e.attrs["model"])
print("norms", bool(np.allclose(np.linalg.norm(e.item_embeddings, axis=1), 1, atol=1e-5)))
)");
  const std::string latest = srtest::read_file(tmp_->file("multvae/checkpoints/latest"));
  auto r = python(tmp_->file("read.py") + " " + data() + " " + model("multvae") + " " +
                  tmp_->file("multvae/checkpoints/") + latest.substr(0, latest.find('\n')));
  ASSERT_EQ(r.exit_code, 0) << r.output;

  sr_dataset d;
  sr_dataset_init(&d);
  ASSERT_EQ(sr_dataset_read(data().c_str(), &d), SR_OK);
  int64_t train_ids = 0, valid_ids = 0;
  for (int64_t i = 0; i < d.train.n_rows; i++) train_ids += d.train_user_ids[i];
  for (int64_t i = 0; i < d.valid.n_users; i++) valid_ids += d.valid.user_ids[i];
  std::ostringstream want;
  want << "dataset " << d.n_users << " " << d.n_items << " strong " << d.train.nnz << " " << d.train.n_rows << " "
       << train_ids << " " << d.test.n_users << " " << d.test.foldin.nnz << " " << d.test.heldout.nnz << " "
       << valid_ids << "\nrow3 [";
  for (int64_t k = d.train.indptr[3]; k < d.train.indptr[4]; k++)
    want << (k > d.train.indptr[3] ? ", " : "") << d.train.indices[k];
  want << "]\nfeatures";
  for (int f = 0; f < d.n_item_features; f++)
    want << (f ? " " : " ") << d.item_features[f].name << ":" << d.item_features[f].vocab_size << ":"
         << d.item_features[f].multi_valued;
  EXPECT_TRUE(contains(r.output, want.str())) << r.output << "\nwanted\n" << want.str();

  sr_params ps;
  ASSERT_EQ(sr_checkpoint_read_tensors(model("multvae").c_str(), &ps), SR_OK) << sr_error_message();
  const sr_param *w = nullptr;
  for (int i = 0; i < ps.count; i++)
    if (std::string(ps.items[i].name) == "encoder.0.weight") w = &ps.items[i];
  ASSERT_NE(w, nullptr);
  std::ostringstream param;
  param.precision(17);
  param << "checkpoint multvae " << d.n_items << " multvae 8 " << ps.count << "\nparam (" << w->shape[0] << ", "
        << w->shape[1] << ") " << (double)ps.values[w->offset + 2 * w->shape[1] + 1];
  EXPECT_TRUE(contains(r.output, param.str())) << r.output << "\nwanted\n" << param.str();
  EXPECT_TRUE(contains(r.output, "training 8 True True")) << r.output;
  sr_params_free(&ps);

  auto e = python(tmp_->file("export.py") + " " + exported, /*plugin=*/false);  // gzip: any h5py reads it
  ASSERT_EQ(e.exit_code, 0) << e.output;
  EXPECT_TRUE(contains(e.output, "export (" + std::to_string(d.n_items) + ", 6) (400, 6) 60 twotower")) << e.output;
  EXPECT_TRUE(contains(e.output, "norms True")) << e.output;
  sr_dataset_free(&d);
}

// Without any zstd filter (no plugin, Debian's hdf5plugin registers none),
// reading a zstd dataset fails with a message that says zstd and what to do.
TEST_F(PythonPackage, MissingZstdFilterIsNamed) {
  auto r = python(
      "-c 'import sys, h5py, shardrec; h5py.h5z.filter_avail(32015) and sys.exit(3); "
      "shardrec.open_dataset(\"" +
          data() + "\")'",
      /*plugin=*/false);
  if (r.exit_code == 3) GTEST_SKIP() << "this Python has a zstd filter of its own (PyPI hdf5plugin)";
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(contains(r.output, "is compressed with zstd (HDF5 filter 32015)")) << r.output;
  EXPECT_TRUE(contains(r.output, "HDF5_PLUGIN_PATH")) << r.output;
}

}  // namespace
