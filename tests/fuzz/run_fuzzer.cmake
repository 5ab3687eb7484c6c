# Builds one libFuzzer target with clang (-fsanitize=fuzzer,address,undefined)
# and runs it for a bounded time from its seed corpus. Run by ctest:
#   cmake -DCLANGXX=... -DNAME=npy -DSOURCE=.../fuzz_npy.cpp -DINCLUDE_DIR=.../include
#         -DWORK_DIR=... -DSEEDS=.../corpus/npy [-DDICT=...] [-DLIBS=-lz] -DSECONDS=20
#         [-DEXTRA_SOURCE=... "-DEXTRA_FLAGS=..."] -P run_fuzzer.cmake
# EXTRA_SOURCE is a second translation unit compiled with EXTRA_FLAGS added
# (the image fuzzer's stb_image, with some UBSan checks off).
# The main build uses g++; clang is only needed here. Without clang or its
# libFuzzer runtime the test prints "CTNN_TEST_SKIPPED: <why>" and ctest marks
# it skipped (SKIP_REGULAR_EXPRESSION). A finding fails the test and leaves the
# reproducer under WORK_DIR/artifacts/: fix the parser, then commit the file to
# tests/fuzz/crashes/<target>/ so the replay test keeps it fixed.
cmake_minimum_required(VERSION 3.25)

function(skip why)
  message("CTNN_TEST_SKIPPED: fuzz ${NAME}: ${why}")
  # cmake -P cannot choose its exit code before CMake 3.29; the skip is
  # recognised from the output instead.
endfunction()

if(NOT CLANGXX OR NOT EXISTS "${CLANGXX}")
  skip("clang++ was not found at configure time (install clang-14 and libclang-rt-14-dev, then re-run cmake)")
  return()
endif()

file(MAKE_DIRECTORY "${WORK_DIR}/corpus" "${WORK_DIR}/artifacts")
set(exe "${WORK_DIR}/fuzz_${NAME}")
set(flags -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
          -fno-omit-frame-pointer -I${INCLUDE_DIR})
separate_arguments(libs UNIX_COMMAND "${LIBS}")

# Rebuild when the source or any ctnn/io header changed.
set(stale TRUE)
if(EXISTS "${exe}")
  set(stale FALSE)
  file(GLOB deps "${INCLUDE_DIR}/ctnn/io/*.hpp" "${INCLUDE_DIR}/ctnn/core/tensor.hpp")
  foreach(dep IN LISTS deps SOURCE EXTRA_SOURCE)
    if("${dep}" IS_NEWER_THAN "${exe}")
      set(stale TRUE)
    endif()
  endforeach()
endif()
if(stale)
  string(TIMESTAMP t0 "%s")
  set(objects "")
  set(rc 0)
  if(EXTRA_SOURCE)
    separate_arguments(extra_flags UNIX_COMMAND "${EXTRA_FLAGS}")
    execute_process(COMMAND "${CLANGXX}" ${flags} ${extra_flags} -c "${EXTRA_SOURCE}" -o "${WORK_DIR}/extra.o"
                    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
    set(objects "${WORK_DIR}/extra.o")
  endif()
  if(rc EQUAL 0)
    execute_process(COMMAND "${CLANGXX}" ${flags} "${SOURCE}" ${objects} -o "${exe}" ${libs}
                    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  endif()
  string(TIMESTAMP t1 "%s")
  if(NOT rc EQUAL 0)
    # Tell a toolchain without libFuzzer apart from code that does not compile.
    file(WRITE "${WORK_DIR}/probe.cpp"
         "#include <cstddef>\n#include <cstdint>\nextern \"C\" int LLVMFuzzerTestOneInput(const std::uint8_t*, std::size_t) { return 0; }\n")
    execute_process(COMMAND "${CLANGXX}" -fsanitize=fuzzer,address,undefined "${WORK_DIR}/probe.cpp" -o "${WORK_DIR}/probe"
                    RESULT_VARIABLE probe_rc OUTPUT_QUIET ERROR_QUIET)
    if(NOT probe_rc EQUAL 0)
      skip("${CLANGXX} cannot link -fsanitize=fuzzer,address,undefined (install libclang-rt-14-dev)")
      return()
    endif()
    message(FATAL_ERROR "fuzz ${NAME}: ${SOURCE} does not compile with ${CLANGXX}:\n${out}")
  endif()
  math(EXPR secs "${t1} - ${t0}")
  message(STATUS "fuzz ${NAME}: built with ${CLANGXX} in ${secs} s")
endif()

set(args -max_total_time=${SECONDS} -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024 -print_final_stats=1
         -artifact_prefix=${WORK_DIR}/artifacts/)
if(DICT)
  list(APPEND args -dict=${DICT})
endif()
set(ENV{ASAN_OPTIONS} "detect_leaks=1:allocator_may_return_null=0:abort_on_error=0")
set(ENV{UBSAN_OPTIONS} "print_stacktrace=1:halt_on_error=1")
execute_process(COMMAND "${exe}" ${args} "${WORK_DIR}/corpus" "${SEEDS}"
                RESULT_VARIABLE rc OUTPUT_VARIABLE log ERROR_VARIABLE log)
file(WRITE "${WORK_DIR}/last_run.log" "${log}")

# One summary line: runs, coverage, corpus size.
set(summary "")
if(log MATCHES "Done ([0-9]+) runs in ([0-9]+) second")
  set(summary "${CMAKE_MATCH_1} runs in ${CMAKE_MATCH_2} s")
endif()
string(REGEX MATCHALL "cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9]+[a-zA-Z]*" progress "${log}")
list(LENGTH progress n)
if(n GREATER 0)
  list(GET progress -1 last)
  string(APPEND summary ", ${last}")
endif()
if(NOT rc EQUAL 0)
  file(GLOB found "${WORK_DIR}/artifacts/*")
  string(LENGTH "${log}" len)
  math(EXPR from "${len} - 6000")
  if(from LESS 0)
    set(from 0)
  endif()
  string(SUBSTRING "${log}" ${from} -1 tail)
  message(FATAL_ERROR "fuzz ${NAME}: FINDING (exit ${rc}; ${summary}).\n${tail}\nReproducer(s): ${found}\n"
                      "Fix the parser, then copy the reproducer into tests/fuzz/crashes/${NAME}/ (replayed by "
                      "ctnn-test-fuzz-replay). Full log: ${WORK_DIR}/last_run.log")
endif()
message(STATUS "fuzz ${NAME}: no finding; ${summary}")
