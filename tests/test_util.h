// test_util.h — helpers shared by the test files: scratch directories, running
// the shardrec binary, reading files.
#pragma once

#include <string>

namespace srtest {

// A fresh directory under $TMPDIR (or /tmp), removed when the object dies.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string &path() const { return path_; }
  std::string file(const std::string &name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

struct CommandResult {
  int exit_code;       // exit status, or 128 + signal
  std::string output;  // stdout and stderr together
};

// Runs `command` through /bin/sh, capturing stdout+stderr.
CommandResult run_command(const std::string &command);
std::string read_file(const std::string &path);
void write_file(const std::string &path, const std::string &content);

}  // namespace srtest
