// test_gpu_host.cpp — the host side of the GPU backend, which runs (and is
// tested) without a GPU: the draws the dropout and reparameterisation kernels
// make (the same __host__ __device__ functions) against rng.h's streams, bit
// for bit; and the batch transpose that feeds the sparse weight gradient.
#include <gtest/gtest.h>

#include <vector>

#include "../test_util.h"
#include "cu_nn.h"  // C linkage of its own (and C++ CUDA headers)

extern "C" {
#include "shardrec/rng.h"
}

namespace {

TEST(GpuHost, DropoutDrawsAreTheCpuStreamsUniforms) {
  const cu_rng_key key = cu_rng_key_for(98765, SR_RNG_DROPOUT);
  for (uint64_t sample : {0ull, 7ull, (1ull << 33) + 5}) {
    sr_rng r;
    sr_rng_init(&r, 98765, SR_RNG_DROPOUT, 41, sample);
    for (int64_t j = 0; j < 1000; j++) ASSERT_EQ(cu_rng_uniform_at(key, 41, sample, j), sr_rng_uniform(&r)) << j;
  }
}

TEST(GpuHost, NoiseDrawsAreTheCpuStreamsNormals) {
  const cu_rng_key key = cu_rng_key_for(12345, SR_RNG_NOISE);
  for (uint64_t sample : {3ull, (1ull << 40) + 1}) {
    sr_rng r;
    sr_rng_init(&r, 12345, SR_RNG_NOISE, 9, sample);
    for (int64_t i = 0; i < 1001; i++) ASSERT_EQ(cu_rng_normal_at(key, 9, sample, i), sr_rng_normal(&r)) << i;
  }
}

TEST(GpuHost, TransposeListsEveryEntryByColumnWithItsPermutation) {
  sr_csr x = srtest::csr_from_rows({{1, 4, 7}, {}, {0, 4}, {7}, {2, 3, 4, 9}}, 10, true);
  std::vector<int32_t> indptr_t(11), indices_t((size_t)x.nnz), perm((size_t)x.nnz);
  cu_csr_transpose_host(&x, indptr_t.data(), indices_t.data(), perm.data());
  EXPECT_EQ(indptr_t, (std::vector<int32_t>{0, 1, 2, 3, 4, 7, 7, 7, 9, 9, 10}));
  EXPECT_EQ(indices_t, (std::vector<int32_t>{2, 0, 4, 4, 0, 2, 4, 0, 3, 4}));  // rows ascending per column
  for (size_t k = 0; k < perm.size(); k++) {
    const int32_t row = indices_t[k], entry = perm[k];
    EXPECT_GE(entry, x.indptr[row]);
    EXPECT_LT(entry, x.indptr[row + 1]);
    int32_t col = 0;
    while (indptr_t[(size_t)col + 1] <= (int32_t)k) col++;
    EXPECT_EQ(x.indices[entry], col) << "entry " << k;
  }
  sr_csr_free(&x);
}

}  // namespace
