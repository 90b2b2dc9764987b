// test_stall.cpp — the stall watchdog (dist.stall_timeout_s, watchdog.h) on
// real ranks: a rank made to stop (a test hook holds it as stuck I/O would)
// ends the job with exit status 124 and a report naming the rank, its step
// and phase, and where the others wait. The test waits for the job to end.
#include <gtest/gtest.h>

#include <string>

#include "test_util.h"

namespace {

const std::string mpiexec = "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "
                            "OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_hwloc_base_binding_policy=none mpiexec ";

std::string small_config(const srtest::TempDir &tmp) {
  return srtest::tiny_training_config(tmp, SHARDREC_BINARY, "warn",
                                      "train: {batch_size: 50, epochs: 3}\ndist: {stall_timeout_s: 5}\n");
}

}  // namespace

TEST(Stall, ARankThatStopsEndsTheJobNamingIt) {
  srtest::TempDir tmp;
  const std::string cfg = small_config(tmp);
  auto r = srtest::run_command("SHARDREC_TEST_HOLD_AT_STEP=3 SHARDREC_TEST_HOLD_RANK=1 " + mpiexec + "-n 2 " +
                               SHARDREC_BINARY + " train " + cfg + " --run-dir " + tmp.file("run"));
  EXPECT_EQ(r.exit_code, 124) << r.output;
  EXPECT_NE(r.output.find("test hook: rank 1 holding after 3 steps"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("[rank 0/2] error: training stalled: no progress for "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("(dist.stall_timeout_s: 5); rank 0 reached step 4 gradient reduction; behind them: "
                          "rank 1 is at step 4 forward/backward (no progress for "),
            std::string::npos)
      << r.output;
}

// One process: the watchdog reports its own rank and ends it.
TEST(Stall, OneProcessThatStopsEnds) {
  srtest::TempDir tmp;
  const std::string cfg = small_config(tmp);
  auto r = srtest::run_command("SHARDREC_TEST_HOLD_AT_STEP=2 " + std::string(SHARDREC_BINARY) + " train " + cfg +
                               " --run-dir " + tmp.file("run"));
  EXPECT_EQ(r.exit_code, 124) << r.output;
  EXPECT_NE(r.output.find("error: training stalled: rank 0 made no progress for "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(" at step 3 forward/backward (dist.stall_timeout_s: 5); aborting the job"),
            std::string::npos)
      << r.output;
}
