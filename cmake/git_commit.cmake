# Writes OUTPUT (a C header defining SHARDREC_GIT_COMMIT) from the git commit
# of SOURCE_DIR, "+dirty" when tracked files differ from it, "unknown" outside
# a git checkout. Run at every build (cmake -P), the file is rewritten only
# when the value changes, so that an unchanged commit recompiles nothing.
execute_process(COMMAND git -C ${SOURCE_DIR} rev-parse --short=12 HEAD
                OUTPUT_VARIABLE commit OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE failed ERROR_QUIET)
if(failed OR commit STREQUAL "")
  set(commit "unknown")
else()
  execute_process(COMMAND git -C ${SOURCE_DIR} diff --quiet HEAD -- RESULT_VARIABLE dirty ERROR_QUIET)
  if(dirty)
    set(commit "${commit}+dirty")
  endif()
endif()
set(text "#define SHARDREC_GIT_COMMIT \"${commit}\"\n")
if(EXISTS ${OUTPUT})
  file(READ ${OUTPUT} old)
endif()
if(NOT old STREQUAL text)
  file(WRITE ${OUTPUT} "${text}")
endif()
