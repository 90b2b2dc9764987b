// mpi_main.h — the entry point shared by the multi-rank test executables
// (mpi_main.cpp): it initialises MPI, runs every test on every rank (the
// tests are collective), and fails the job if any rank failed.
#pragma once

extern "C" {
#include "shardrec/dist.h"
}

namespace srtest {

// The world context, set up by main before the first test runs.
extern sr_dist world;

}  // namespace srtest
