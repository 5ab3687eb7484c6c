# Configures the project in a nested build folder with AddressSanitizer and
# UndefinedBehaviorSanitizer (-fno-sanitize-recover=all: the first report
# fails), builds the chosen test executables and runs each of them.
#   cmake -DSOURCE_DIR=... -DBUILD_DIR=... -DCXX=clang++-14 "-DTARGETS=a;b" -DJOBS=2
#         -P run_sanitized.cmake
# Without a compiler that can link -fsanitize=address,undefined it prints
# "CTNN_TEST_SKIPPED: <why>" (ctest marks the test skipped).
cmake_minimum_required(VERSION 3.25)

if(NOT CXX OR NOT EXISTS "${CXX}")
  message("CTNN_TEST_SKIPPED: sanitize: no C++ compiler for the sanitizer build (set CTNN_SANITIZE_CXX)")
  return()
endif()
set(flags "-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all")
file(MAKE_DIRECTORY "${BUILD_DIR}")
file(WRITE "${BUILD_DIR}/probe.cpp" "int main() { return 0; }\n")
separate_arguments(flag_list UNIX_COMMAND "${flags}")
execute_process(COMMAND "${CXX}" ${flag_list} "${BUILD_DIR}/probe.cpp" -o "${BUILD_DIR}/probe"
                RESULT_VARIABLE rc OUTPUT_QUIET ERROR_QUIET)
if(NOT rc EQUAL 0)
  message("CTNN_TEST_SKIPPED: sanitize: ${CXX} cannot link -fsanitize=address,undefined (g++: libasan8 and libubsan1; clang: libclang-rt-14-dev)")
  return()
endif()

function(step what)
  string(TIMESTAMP t0 "%s")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  string(TIMESTAMP t1 "%s")
  math(EXPR secs "${t1} - ${t0}")
  if(NOT rc EQUAL 0)
    string(LENGTH "${out}" len)
    math(EXPR from "${len} - 8000")
    if(from LESS 0)
      set(from 0)
    endif()
    string(SUBSTRING "${out}" ${from} -1 tail)
    message(FATAL_ERROR "sanitize: ${what} failed (exit ${rc}, ${secs} s):\n${tail}")
  endif()
  message(STATUS "sanitize: ${what}: ${secs} s")
endfunction()

step("configure (${CXX})" ${CMAKE_COMMAND} -S "${SOURCE_DIR}" -B "${BUILD_DIR}/build"
     -DCMAKE_BUILD_TYPE=Debug "-DCMAKE_CXX_COMPILER=${CXX}" "-DCMAKE_CXX_FLAGS_DEBUG=${flags}"
     -DCTNN_BUILD_TESTS=ON -DCTNN_BUILD_EXAMPLES=OFF -DCTNN_BUILD_BENCHMARKS=OFF -DCTNN_INSTALL=OFF -DCTNN_CUDA=OFF)
step("build ${TARGETS}" ${CMAKE_COMMAND} --build "${BUILD_DIR}/build" --target ${TARGETS} -j ${JOBS})

set(ENV{ASAN_OPTIONS} "detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1")
set(ENV{UBSAN_OPTIONS} "print_stacktrace=1:halt_on_error=1")
set(ENV{OMP_NUM_THREADS} "1")
foreach(t IN LISTS TARGETS)
  file(GLOB_RECURSE exe LIST_DIRECTORIES false "${BUILD_DIR}/build/*/${t}")
  list(FILTER exe EXCLUDE REGEX "\\.dir/")
  if(NOT exe)
    message(FATAL_ERROR "sanitize: ${t} was built but not found under ${BUILD_DIR}/build")
  endif()
  list(GET exe 0 exe)
  step("run ${t}" "${exe}" --no-intro=true --minimal=true)
endforeach()
message(STATUS "sanitize: ${TARGETS}: no sanitizer report")
