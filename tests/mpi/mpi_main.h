// mpi_main.h — the entry point shared by the multi-rank test executables
// (mpi_main.cpp): it initialises MPI, runs every test on every rank (the
// tests are collective), and fails the job if any rank failed.
#pragma once

#include <string>

extern "C" {
#include "shardrec/dist.h"
}

namespace srtest {

// The world context, set up by main before the first test runs.
extern sr_dist world;

// A name for files this job writes in the working directory, the same on
// every rank and unique among jobs that run at once (ctest -j runs the 2-rank
// and the TCP variant of a suite side by side): stem-<rank 0's pid>.
std::string job_file(const std::string &stem);

}  // namespace srtest
