// test_gpu_kernels.cpp — every cu_nn.h kernel against its nn.h (or optim.h)
// CPU kernel on random inputs. Tolerances are relative, |gpu - cpu| <=
// tol (1 + |cpu|): 1e-6 for elementwise kernels (the same float operations;
// tanhf/expf may differ by an ulp), 1e-5 for reductions and products (another
// summation order), exact equality for dropout masks (the same Philox draws).
#include <cmath>
#include <vector>

#include "../kernel_check.h"
#include "../test_util.h"
#include "gpu_test.h"

#include "cu_nn.h"  // C linkage of its own (and C++ CUDA headers)

extern "C" {
#include "shardrec/nn.h"
#include "shardrec/optim.h"
#include "shardrec/params.h"
}

namespace {

using gputest::DeviceVec;
using gputest::expect_close;
using kcheck::Vec;

class GpuKernels : public gputest::Gpu {
 protected:
  void SetUp() override {
    gputest::Gpu::SetUp();
    if (IsSkipped()) return;
    cu_ctx_init(&ctx, SR_PRECISION_FP32);
  }
  void TearDown() override {
    if (ctx.stream) cu_ctx_free(&ctx);
  }
  cu_ctx ctx{};
};

// A random sparse batch: row r has up to (r * 7) % 23 entries (some rows
// empty) over C columns; values (csr_from_rows') when asked.
sr_csr random_batch(int64_t R, int64_t C, bool with_values) {
  std::vector<std::vector<int32_t>> rows((size_t)R);
  sr_rng rng;
  sr_rng_init(&rng, 11, SR_RNG_SYNTH, 0, 0);
  for (int64_t r = 0; r < R; r++) {
    std::vector<char> used((size_t)C, 0);
    for (int64_t k = 0; k < (r * 7) % 23; k++) used[sr_rng_below(&rng, (uint64_t)C)] = 1;
    for (int64_t c = 0; c < C; c++)
      if (used[(size_t)c]) rows[(size_t)r].push_back((int32_t)c);
  }
  return srtest::csr_from_rows(rows, C, with_values);
}

// The batch on the device (32-bit offsets) and, separately, its transpose.
struct DeviceCsr {
  explicit DeviceCsr(const sr_csr &x)
      : indptr(std::vector<int32_t>(x.indptr, x.indptr + x.n_rows + 1)),
        indices(std::vector<int32_t>(x.indices, x.indices + x.nnz)),
        values(x.values ? std::vector<float>(x.values, x.values + x.nnz) : std::vector<float>()) {
    csr = cu_csr{x.n_rows, x.n_cols, x.nnz, indptr.get(), indices.get(), x.values ? values.get() : nullptr};
  }
  DeviceVec<int32_t> indptr, indices;
  DeviceVec<float> values;
  cu_csr csr;
};

sr_csr transpose(const sr_csr &x) {
  std::vector<std::vector<int32_t>> cols((size_t)x.n_cols);
  for (int64_t r = 0; r < x.n_rows; r++)
    for (int64_t k = x.indptr[r]; k < x.indptr[r + 1]; k++) cols[(size_t)x.indices[k]].push_back((int32_t)r);
  sr_csr t = srtest::csr_from_rows(cols, x.n_rows);
  if (x.values) {
    t.values = (float *)malloc((size_t)(t.nnz > 0 ? t.nnz : 1) * sizeof(float));
    std::vector<int64_t> next(t.indptr, t.indptr + t.n_rows);
    for (int64_t r = 0; r < x.n_rows; r++)
      for (int64_t k = x.indptr[r]; k < x.indptr[r + 1]; k++) t.values[next[(size_t)x.indices[k]]++] = x.values[k];
  }
  return t;
}

TEST_F(GpuKernels, SparseTimesDenseAndItsWeightGradient) {
  const int64_t R = 37, C = 300, H = 65;
  sr_csr x = random_batch(R, C, true), xt = transpose(x);
  Vec w = kcheck::uniform((size_t)(C * H), -1, 1, 1), dout = kcheck::uniform((size_t)(R * H), -1, 1, 2);
  Vec out((size_t)(R * H)), dw = kcheck::uniform((size_t)(C * H), -1, 1, 3), dw_cpu = dw;
  sr_spmm_forward(out.data(), &x, nullptr, w.data(), H);
  sr_spmm_backward_weight(dw_cpu.data(), &x, nullptr, dout.data(), H);
  DeviceCsr dx(x), dxt(xt);
  DeviceVec<float> d_w(w), d_out(out), d_dout(dout), d_dw(dw);
  cu_spmm_forward(&ctx, d_out.get(), &dx.csr, dx.values.get(), d_w.get(), H);
  cu_spmm_backward_weight(&ctx, d_dw.get(), &dxt.csr, dxt.values.get(), d_dout.get(), H);
  expect_close("spmm forward", d_out.host(), out, 1e-5);
  expect_close("spmm weight gradient", d_dw.host(), dw_cpu, 1e-5);
  sr_csr_free(&x);
  sr_csr_free(&xt);
}

TEST_F(GpuKernels, LinearForwardAndBackward) {
  const int64_t B = 29, IN = 70, OUT = 45;
  Vec in = kcheck::uniform((size_t)(B * IN), -1, 1, 1), w = kcheck::uniform((size_t)(IN * OUT), -1, 1, 2);
  Vec b = kcheck::uniform((size_t)OUT, -1, 1, 3), dout = kcheck::uniform((size_t)(B * OUT), -1, 1, 4);
  Vec out((size_t)(B * OUT)), din = kcheck::uniform((size_t)(B * IN), -1, 1, 5);
  Vec dw = kcheck::uniform((size_t)(IN * OUT), -1, 1, 6), db = kcheck::uniform((size_t)OUT, -1, 1, 7);
  DeviceVec<float> d_in(in), d_w(w), d_b(b), d_dout(dout), d_out(out), d_din(din), d_dw(dw), d_db(db);
  sr_linear_forward(out.data(), in.data(), w.data(), b.data(), B, IN, OUT);
  sr_linear_backward(din.data(), dw.data(), db.data(), dout.data(), in.data(), w.data(), B, IN, OUT);
  cu_linear_forward(&ctx, d_out.get(), d_in.get(), d_w.get(), d_b.get(), B, IN, OUT);
  cu_linear_backward(&ctx, d_din.get(), d_dw.get(), d_db.get(), d_dout.get(), d_in.get(), d_w.get(), B, IN, OUT);
  expect_close("linear out", d_out.host(), out, 1e-5);
  expect_close("linear din", d_din.host(), din, 1e-5);
  expect_close("linear dW", d_dw.host(), dw, 1e-5);
  expect_close("linear db", d_db.host(), db, 1e-5);
}

TEST_F(GpuKernels, TanhAxpyAndSumOfSquares) {
  const int64_t n = 10007;
  Vec x = kcheck::uniform((size_t)n, -3, 3, 1), g = kcheck::uniform((size_t)n, -1, 1, 2);
  Vec y((size_t)n), dx = kcheck::uniform((size_t)n, -1, 1, 3);
  DeviceVec<float> d_x(x), d_g(g), d_y(y), d_dx(dx);
  sr_tanh_forward(y.data(), x.data(), n);
  sr_tanh_backward(dx.data(), g.data(), y.data(), n);
  cu_tanh_forward(&ctx, d_y.get(), d_x.get(), n);
  cu_tanh_backward(&ctx, d_dx.get(), d_g.get(), d_y.get(), n);
  expect_close("tanh", d_y.host(), y, 1e-6);
  expect_close("tanh backward", d_dx.host(), dx, 1e-6);
  sr_axpy(dx.data(), 0.75f, x.data(), n);
  cu_axpy(&ctx, d_dx.get(), 0.75f, d_x.get(), n);
  expect_close("axpy", d_dx.host(), dx, 1e-6);
  const double cpu = sr_sum_squares(x.data(), n), gpu = cu_sum_squares(&ctx, d_x.get(), n);
  EXPECT_NEAR(gpu, cpu, 1e-12 * cpu);  // both in double
}

TEST_F(GpuKernels, InputNormalisationAndDropoutDrawTheCpuMasks) {
  for (bool with_values : {false, true}) {
    sr_csr x = random_batch(41, 200, with_values);
    std::vector<int64_t> ids((size_t)x.n_rows);
    for (size_t r = 0; r < ids.size(); r++) ids[r] = 1000 + 37 * (int64_t)r;  // global sample ids
    Vec values((size_t)(x.nnz > 0 ? x.nnz : 1));
    sr_csr_l2norm_values(values.data(), &x);
    DeviceCsr dx(x);
    DeviceVec<float> d_values(values);
    DeviceVec<int64_t> d_ids(ids);
    cu_csr_l2norm_values(&ctx, d_values.get(), &dx.csr);
    expect_close("l2norm values", d_values.host(), values, 1e-6);
    sr_csr_dropout_values(values.data(), &x, 0.5f, 98765, SR_RNG_DROPOUT, 77, ids.data());
    cu_csr_dropout_values(&ctx, d_values.get(), &dx.csr, 0.5f, cu_rng_key_for(98765, SR_RNG_DROPOUT), 77,
                          d_ids.get());
    Vec gpu = d_values.host();
    int dropped = 0;
    for (int64_t k = 0; k < x.nnz; k++) {
      EXPECT_EQ(gpu[(size_t)k] == 0.0f, values[(size_t)k] == 0.0f) << "mask differs at entry " << k;
      dropped += values[(size_t)k] == 0.0f;
    }
    EXPECT_GT(dropped, x.nnz / 4);  // p = 0.5 did drop entries
    expect_close("dropped-out values", gpu, values, 1e-6);
    sr_csr_free(&x);
  }
}

TEST_F(GpuKernels, FusedSoftmaxNllMatchesTheCpuLossAndGradient) {
  const int64_t R = 23, C = 20108;  // ML-20M's item count
  sr_csr targets = random_batch(R, C, false);
  Vec logits = kcheck::uniform((size_t)(R * C), -8, 8, 1), d((size_t)(R * C));
  const float norm = 500;
  const double cpu = sr_softmax_nll(d.data(), logits.data(), &targets, R, C, norm);
  DeviceCsr dt(targets);
  DeviceVec<float> d_logits(logits);
  DeviceVec<double> rows(std::vector<double>((size_t)R));
  cu_softmax_nll(&ctx, d_logits.get(), d_logits.get(), &dt.csr, R, C, norm, rows.get());  // in place
  double gpu = 0;
  for (double r : rows.host()) gpu += r;
  EXPECT_NEAR(gpu / norm, cpu, 1e-5 * std::fabs(cpu));
  expect_close("dlogits", d_logits.host(), d, 1e-6);
  sr_csr_free(&targets);
}

TEST_F(GpuKernels, GaussianKlAndReparameterisationDrawTheCpuNoise) {
  const int64_t R = 19, K = 201;  // odd K: the last Box-Muller pair is half used
  Vec mu = kcheck::uniform((size_t)(R * K), -1, 1, 1), lv = kcheck::uniform((size_t)(R * K), -2, 1, 2);
  Vec dmu = kcheck::uniform((size_t)(R * K), -1, 1, 3), dlv = kcheck::uniform((size_t)(R * K), -1, 1, 4);
  Vec dz = kcheck::uniform((size_t)(R * K), -1, 1, 5), z((size_t)(R * K)), eps((size_t)(R * K));
  std::vector<int64_t> ids((size_t)R);
  for (size_t r = 0; r < ids.size(); r++) ids[r] = (int64_t)(r * r) + (1LL << 33);  // ids beyond 32 bits
  DeviceVec<float> d_mu(mu), d_lv(lv), d_dmu(dmu), d_dlv(dlv), d_dz(dz), d_z(z), d_eps(eps);
  DeviceVec<int64_t> d_ids(ids);
  DeviceVec<double> rows(std::vector<double>((size_t)R));
  const double cpu = sr_gaussian_kl(dmu.data(), dlv.data(), mu.data(), lv.data(), R, K, 500, 0.2f);
  cu_gaussian_kl(&ctx, d_dmu.get(), d_dlv.get(), d_mu.get(), d_lv.get(), R, K, 500, 0.2f, rows.get());
  double gpu = 0;
  for (double r : rows.host()) gpu += r;
  EXPECT_NEAR(gpu / 500, cpu, 1e-5 * std::fabs(cpu));
  expect_close("dmu (kl)", d_dmu.host(), dmu, 1e-6);
  expect_close("dlogvar (kl)", d_dlv.host(), dlv, 1e-6);
  sr_reparam_forward(z.data(), eps.data(), mu.data(), lv.data(), R, K, 98765, 12, ids.data());
  cu_reparam_forward(&ctx, d_z.get(), d_eps.get(), d_mu.get(), d_lv.get(), R, K, cu_rng_key_for(98765, SR_RNG_NOISE),
                     12, d_ids.get());
  expect_close("eps", d_eps.host(), eps, 1e-6);
  expect_close("z", d_z.host(), z, 1e-6);
  sr_reparam_backward(dmu.data(), dlv.data(), dz.data(), eps.data(), lv.data(), R, K);
  cu_reparam_backward(&ctx, d_dmu.get(), d_dlv.get(), d_dz.get(), d_eps.get(), d_lv.get(), R, K);
  expect_close("dmu (reparam)", d_dmu.host(), dmu, 1e-6);
  expect_close("dlogvar (reparam)", d_dlv.host(), dlv, 1e-6);
}

TEST_F(GpuKernels, BiasRowsAndColumnSums) {
  const int64_t R = 33, D = 517;
  Vec x = kcheck::uniform((size_t)(R * D), -1, 1, 1), b = kcheck::uniform((size_t)D, -1, 1, 2);
  Vec sums = kcheck::uniform((size_t)D, -1, 1, 3);
  DeviceVec<float> d_x(x), d_b(b), d_sums(sums);
  sr_column_sums_acc(sums.data(), x.data(), R, D);
  cu_column_sums_acc(&ctx, d_sums.get(), d_x.get(), R, D);
  expect_close("column sums", d_sums.host(), sums, 1e-6);  // same order: row by row
  for (int64_t r = 0; r < R; r++) sr_axpy(x.data() + r * D, 1.0f, b.data(), D);
  cu_add_bias_rows(&ctx, d_x.get(), d_b.get(), R, D);
  expect_close("bias rows", d_x.host(), x, 1e-6);
}

TEST_F(GpuKernels, FusedAdamAndAdamWMatchTheCpuOptimizer) {
  for (sr_optim_kind kind : {SR_OPTIM_ADAM, SR_OPTIM_ADAMW}) {
    sr_params ps;
    sr_params_init(&ps);
    const int64_t shape[2] = {37, 29};
    sr_params_add(&ps, "w", SR_PARAM_WEIGHT, 2, shape);
    sr_params_finalize(&ps);
    const size_t n = (size_t)ps.total;
    Vec w = kcheck::uniform(n, -1, 1, 1), m = kcheck::uniform(n, -0.1f, 0.1f, 2), v = kcheck::uniform(n, 0, 0.1f, 3);
    Vec g = kcheck::uniform(n, -1, 1, 4);
    DeviceVec<float> d_w(w), d_m(m), d_v(v), d_g(g);
    DeviceVec<unsigned long long> bad(std::vector<unsigned long long>(1, 0));
    std::copy(w.begin(), w.end(), ps.values);
    std::copy(m.begin(), m.end(), ps.adam_m);
    std::copy(v.begin(), v.end(), ps.adam_v);
    std::copy(g.begin(), g.end(), ps.grads);
    sr_optim o;
    sr_optim_init(&o, kind);
    o.weight_decay = 0.01f;
    o.step = 6;
    EXPECT_EQ(sr_optim_step(&o, &ps), 0);  // the 7th update
    cu_adam_args a{o.lr,
                   o.beta1,
                   o.beta2,
                   o.eps,
                   (float)(1.0 - std::pow(0.9, 7)),
                   (float)(1.0 - std::pow(0.999, 7)),
                   kind == SR_OPTIM_ADAM ? 0.01f : 0.0f,
                   kind == SR_OPTIM_ADAMW ? 1.0f - o.lr * 0.01f : 1.0f};
    cu_adam(&ctx, d_w.get(), d_m.get(), d_v.get(), d_g.get(), (int64_t)n, a, bad.get());
    expect_close("adam weights", d_w.host(), Vec(ps.values, ps.values + n), 1e-6);
    expect_close("adam m", d_m.host(), Vec(ps.adam_m, ps.adam_m + n), 1e-6);
    expect_close("adam v", d_v.host(), Vec(ps.adam_v, ps.adam_v + n), 1e-6);
    expect_close("gradients consumed", d_g.host(), Vec(n, 0.0f), 0);
    EXPECT_EQ(bad.host()[0], 0u);
    sr_params_free(&ps);
  }
}

}  // namespace
