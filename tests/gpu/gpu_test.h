// gpu_test.h — what the GPU tests share: a fixture that skips (printing why)
// without a usable device, and device buffers filled from / read into host
// vectors.
#pragma once

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

extern "C" {
#include "shardrec/device.h"
#include "shardrec/dist.h"
#include "shardrec/error.h"
}

namespace gputest {

class Gpu : public testing::Test {
 protected:
  void SetUp() override {
    char why[256];
    if (!sr_device_available(why, sizeof why)) GTEST_SKIP() << "no GPU here: " << why;
    sr_dist self;
    sr_dist_self(&self);
    ASSERT_EQ(sr_device_bind(&self), SR_OK) << sr_error_message();
  }
};

// A device copy of a host vector; read back with host().
template <typename T>
class DeviceVec {
 public:
  explicit DeviceVec(const std::vector<T> &v) : n_(v.size()) {
    EXPECT_EQ(cudaMalloc(&p_, (n_ > 0 ? n_ : 1) * sizeof(T)), cudaSuccess);
    if (n_) {
      EXPECT_EQ(cudaMemcpy(p_, v.data(), n_ * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess);
    }
    /* A pageable copy may return before its DMA ends, and the kernels run on
     * a non-blocking stream that does not wait for it. */
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  }
  ~DeviceVec() { cudaFree(p_); }
  DeviceVec(const DeviceVec &) = delete;
  DeviceVec &operator=(const DeviceVec &) = delete;
  T *get() const { return p_; }
  std::vector<T> host() const {
    std::vector<T> v(n_);
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    if (n_) {
      EXPECT_EQ(cudaMemcpy(v.data(), p_, n_ * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
    }
    return v;
  }

 private:
  T *p_ = nullptr;
  size_t n_;
};

// |a - b| <= tol * (1 + |b|) elementwise, b the CPU reference; reports the worst.
inline void expect_close(const char *what, const std::vector<float> &a, const std::vector<float> &b, double tol) {
  ASSERT_EQ(a.size(), b.size()) << what;
  double worst = 0;
  size_t at = 0;
  for (size_t i = 0; i < a.size(); i++) {
    const double err = std::fabs((double)a[i] - b[i]) / (1.0 + std::fabs((double)b[i]));
    if (std::isnan(err) || err > worst) worst = err, at = i;
    if (std::isnan(worst)) break; /* a NaN is the worst error, and fails */
  }
  EXPECT_LE(worst, tol) << what << ": worst relative error at " << at << ": gpu " << a[at] << ", cpu " << b[at];
}

}  // namespace gputest
