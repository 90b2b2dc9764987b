// mpi_main.cpp — GoogleTest entry point of the multi-rank test executables
// (see mpi_main.h). Only rank 0 prints results.
#include "mpi_main.h"

#include <gtest/gtest.h>
#include <mpi.h>
#include <unistd.h>

extern "C" {
#include "shardrec/log.h"
}

namespace srtest {
sr_dist world;
static long job_pid; /* rank 0's pid, learnt by every rank at start */

std::string job_file(const std::string &stem) { return stem + "-" + std::to_string(job_pid); }
}  // namespace srtest

int main(int argc, char **argv) {
  testing::InitGoogleTest(&argc, argv);
  if (sr_dist_init(&argc, &argv, &srtest::world) != 0) return 1;
  sr_log_set_level(SR_LOG_WARN);
  srtest::job_pid = (long)getpid();
  MPI_Bcast(&srtest::job_pid, 1, MPI_LONG, 0, MPI_COMM_WORLD);
  // Only rank 0 reports, but every rank runs every test (they are collective).
  if (srtest::world.rank != 0) {
    testing::TestEventListeners &listeners = testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  int rc = RUN_ALL_TESTS();
  // A failure on any rank fails the job.
  MPI_Allreduce(MPI_IN_PLACE, &rc, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  sr_dist_finalize();
  return rc;
}
