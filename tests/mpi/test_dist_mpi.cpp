// test_dist_mpi.cpp — run under mpiexec with P ranks (ctest does P = 2 and 4,
// and once over TCP). The runtime's agreement on failures: every failed
// rank's message reaches rank 0, naming the rank, and the error is known to
// be agreed on every rank (so the job ends without MPI_Abort).
#include <gtest/gtest.h>

#include <string>

#include "mpi_main.h"

extern "C" {
#include "shardrec/error.h"
}

using srtest::world;

TEST(DistMpi, AgreementCollectsEveryFailedRanksMessageOnRankZero) {
  // Rank 1 fails with its own message, ranks 2 and 3 (P = 4) with one message.
  int local = SR_OK;
  sr_error_clear();
  if (world.rank == 1) local = SR_FAIL(SR_EIO, "cannot read shard 1");
  if (world.rank >= 2) local = SR_FAIL(SR_EFORMAT, "bad rows");
  const int rc = sr_dist_agree(&world, local);
  EXPECT_NE(rc, SR_OK);
  EXPECT_TRUE(sr_error_agreed());
  const std::string msg = sr_error_message();
  if (world.rank == 0) {
    const std::string expected =
        world.size == 2 ? "rank 1: cannot read shard 1" : "rank 1: cannot read shard 1; ranks 2, 3: bad rows";
    EXPECT_EQ(msg, expected);
    EXPECT_EQ(rc, SR_EDIST);
  } else if (world.rank == 1) {
    EXPECT_EQ(msg, "cannot read shard 1");  // its own
    EXPECT_EQ(rc, SR_EIO);
  }
  // Passed on through a later agreement, the failure is not reported twice.
  EXPECT_EQ(sr_dist_agree(&world, rc), rc);
  EXPECT_EQ(std::string(sr_error_message()), msg);
  EXPECT_TRUE(sr_error_agreed());
  // A new failure is not agreed until it is agreed on.
  SR_FAIL(SR_EIO, "later");
  EXPECT_FALSE(sr_error_agreed());
  // Success leaves no error behind.
  sr_error_clear();
  EXPECT_EQ(sr_dist_agree(&world, SR_OK), SR_OK);
  EXPECT_FALSE(sr_error_agreed());
}
