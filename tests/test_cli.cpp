// test_cli.cpp — the command line itself: --version, "did you mean" for
// commands and options, messages for bad enum values, per-subcommand help.
#include <gtest/gtest.h>

#include "test_util.h"

extern "C" {
#include "shardrec/config.h"
}

namespace {

bool contains(const std::string &text, const std::string &part) { return text.find(part) != std::string::npos; }

srtest::CommandResult shardrec(const std::string &args) { return srtest::run_command(SHARDREC_BINARY " " + args); }

TEST(Cli, VersionNamesTheBuildAndItsLibraries) {
  auto r = shardrec("--version");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, std::string("shardrec ") + SHARDREC_VERSION + "\n")) << r.output;
  for (const char *field : {"commit", "build", "MPI", "HDF5", "zstd", "libyaml", "OpenBLAS"})
    EXPECT_TRUE(contains(r.output, std::string("\n  ") + field + " ")) << field << "\n" << r.output;
  EXPECT_TRUE(contains(r.output, "Open MPI")) << r.output;
  EXPECT_TRUE(contains(r.output, "(core ")) << r.output;
  EXPECT_FALSE(contains(r.output, "commit    unknown")) << "built from a git checkout\n" << r.output;
}

TEST(Cli, NearestNameIsATypoAwayOrNothing) {
  const char *const names[] = {"train", "eval", "data", "merge", "inspect", "export", "recommend"};
  EXPECT_STREQ(sr_nearest_name("trian", names, 7), "train");  // transposition
  EXPECT_STREQ(sr_nearest_name("recomend", names, 7), "recommend");
  EXPECT_EQ(sr_nearest_name("fit", names, 7), nullptr);  // nothing close
  EXPECT_EQ(sr_edit_distance("abc", 3, "acb", 3), 1);
  EXPECT_EQ(sr_edit_distance("kitten", 6, "sitting", 7), 3);
}

TEST(Cli, DidYouMean) {
  auto cmd = shardrec("evl x.h5");
  EXPECT_EQ(cmd.exit_code, 2);
  EXPECT_TRUE(contains(cmd.output, "unknown command 'evl' (did you mean 'eval'?)")) << cmd.output;
  auto sub = shardrec("data infp x.h5");
  EXPECT_EQ(sub.exit_code, 2);
  EXPECT_TRUE(contains(sub.output, "unknown subcommand 'infp' (did you mean 'info'?)")) << sub.output;
  auto opt = shardrec("eval x.h5 --splt test");
  EXPECT_EQ(opt.exit_code, 2);
  EXPECT_TRUE(contains(opt.output, "shardrec eval: unknown or ambiguous option '--splt' (did you mean '--split'?)"))
      << opt.output;
  auto far = shardrec("train c.yaml --frobnicate");
  EXPECT_EQ(far.exit_code, 2);
  EXPECT_TRUE(contains(far.output, "unknown or ambiguous option '--frobnicate'\n")) << far.output;
  auto value = shardrec("export m.h5 -o out.h5 --data");
  EXPECT_EQ(value.exit_code, 2);
  EXPECT_TRUE(contains(value.output, "option '--data' needs a value")) << value.output;
  auto synth = shardrec("data synth -o x.h5 --usres 5");
  EXPECT_EQ(synth.exit_code, 2);
  EXPECT_TRUE(contains(synth.output, "(did you mean '--users'?)")) << synth.output;
}

TEST(Cli, BadEnumValuesSayWhatIsExpected) {
  auto split = shardrec("eval x.h5 --split tset");
  EXPECT_EQ(split.exit_code, 2);
  EXPECT_TRUE(contains(split.output, "--split: expected valid or test, got 'tset' (did you mean 'test'?)"))
      << split.output;
  auto far = shardrec("eval x.h5 --split everything");
  EXPECT_TRUE(contains(far.output, "--split: expected valid or test, got 'everything'\n")) << far.output;
}

TEST(Cli, DataInfoAndValidateHaveTheirOwnHelp) {
  auto info = shardrec("data info --help");
  ASSERT_EQ(info.exit_code, 0);
  EXPECT_TRUE(contains(info.output, "usage: shardrec data info FILE")) << info.output;
  EXPECT_FALSE(contains(info.output, "synth options")) << info.output;
  auto validate = shardrec("data validate --help");
  ASSERT_EQ(validate.exit_code, 0);
  EXPECT_TRUE(contains(validate.output, "usage: shardrec data validate FILE")) << validate.output;
  auto two = shardrec("data validate a.h5 b.h5");
  EXPECT_EQ(two.exit_code, 2);
  EXPECT_TRUE(contains(two.output, "shardrec data validate: expected exactly one FILE")) << two.output;
}

}  // namespace
