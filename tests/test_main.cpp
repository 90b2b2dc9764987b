// test_main.cpp — GoogleTest entry point. Selects the OpenBLAS kernel the same
// way the shardrec binary does, so the tests prove correctness of the kernels
// that production runs actually use.
#include <gtest/gtest.h>

extern "C" {
#include "shardrec/blas.h"
}

int main(int argc, char **argv) {
  sr_blas_configure_process(argv);
  testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
