# The optional CUDA backend (include/ctnn/backend/cuda, header-only .cuh).
#
#   CTNN_CUDA            ON by default when a CUDA compiler is found. Adds the
#                        INTERFACE target ctnn::cuda (ctnn + CUDA::cudart), the
#                        installed `cuda` package component, and with tests the
#                        ctnn-cuda-tests executable and its ctest entry.
#   CMAKE_CUDA_ARCHITECTURES defaults to 90 (sm_90 code + compute_90 PTX),
#                        which covers H100/H200 and keeps CI compile time low.
#
# Only targets that compile .cu files need nvcc; nothing else in the project
# depends on this file. Include it after the tests folder (it reuses doctest)
# and after the CTNN_INSTALL option.

include(CheckLanguage)
check_language(CUDA)
set(_ctnn_cuda_default OFF)
if(CMAKE_CUDA_COMPILER)
  set(_ctnn_cuda_default ON)
endif()
option(CTNN_CUDA "Build the CUDA backend's tests and install its package component (needs nvcc)" ${_ctnn_cuda_default})

if(NOT CTNN_CUDA)
  message(STATUS "ctnn: CUDA backend disabled (CTNN_CUDA=OFF)")
  return()
endif()
if(NOT CMAKE_CUDA_COMPILER)
  message(FATAL_ERROR "ctnn: CTNN_CUDA=ON but no CUDA compiler was found. Put nvcc on the PATH, set "
                      "CMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc, or configure with -DCTNN_CUDA=OFF.")
endif()

if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES AND NOT DEFINED ENV{CUDAARCHS})
  set(CMAKE_CUDA_ARCHITECTURES 90 CACHE STRING "CUDA architectures (90 = sm_90 code + compute_90 PTX)")
endif()
enable_language(CUDA)
find_package(CUDAToolkit REQUIRED)
message(STATUS "ctnn: CUDA backend enabled (nvcc ${CMAKE_CUDA_COMPILER_VERSION}, architectures ${CMAKE_CUDA_ARCHITECTURES})")

add_library(ctnn_cuda INTERFACE)
add_library(ctnn::cuda ALIAS ctnn_cuda)
set_target_properties(ctnn_cuda PROPERTIES EXPORT_NAME cuda)
target_link_libraries(ctnn_cuda INTERFACE ctnn CUDA::cudart)
# The .cuh headers are C++20. CMake 3.25 knows no C++20 mode for nvcc
# (cuda_std_20 is "not known"), so pass the flag itself there; nvcc accepts
# a repeated identical -std, and a later different one wins with a warning.
if("cuda_std_20" IN_LIST CMAKE_CUDA_COMPILE_FEATURES)
  target_compile_features(ctnn_cuda INTERFACE cuda_std_20)
else()
  target_compile_options(ctnn_cuda INTERFACE $<$<COMPILE_LANGUAGE:CUDA>:-std=c++20>)
endif()
target_compile_definitions(ctnn_cuda INTERFACE CTNN_HAS_CUDA=1)

if(CTNN_INSTALL)
  install(TARGETS ctnn_cuda EXPORT ctnnCudaTargets)
  install(EXPORT ctnnCudaTargets NAMESPACE ctnn:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/ctnn)
endif()

# Flags for the project's own CUDA binaries. #554: tensor.hpp's const-view
# conversion operator is (correctly) never used for T = const float; nvcc
# warns about it, g++ does not.
add_library(ctnn_cuda_project_flags INTERFACE)
target_compile_options(ctnn_cuda_project_flags INTERFACE
  $<$<COMPILE_LANGUAGE:CUDA>:-diag-suppress=554 -Xcompiler=-Wall>
  $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra>)

if(CTNN_BUILD_TESTS)
  find_package(doctest REQUIRED)  # imported targets are directory-scoped: tests/ found its own
  # Three nvcc translation units (parity, run time, training) and a g++ main:
  # CI on two cores compiles them in parallel.
  add_executable(ctnn-cuda-tests
    ${PROJECT_SOURCE_DIR}/tests/cuda/main.cpp
    ${PROJECT_SOURCE_DIR}/tests/cuda/alloc_count.cpp
    ${PROJECT_SOURCE_DIR}/tests/cuda/parity.cu
    ${PROJECT_SOURCE_DIR}/tests/cuda/runtime.cu
    ${PROJECT_SOURCE_DIR}/tests/cuda/training.cu)
  target_link_libraries(ctnn-cuda-tests PRIVATE ctnn::cuda doctest::doctest ctnn_cuda_project_flags)
  target_include_directories(ctnn-cuda-tests PRIVATE
    ${PROJECT_SOURCE_DIR}/tests/support ${PROJECT_SOURCE_DIR}/tests/parity)
  target_compile_definitions(ctnn-cuda-tests PRIVATE
    CTNN_TEST_DATA_DIR="${PROJECT_SOURCE_DIR}/tests/data" CTNN_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  # Exit code 77 = no GPU: ctest shows the test as skipped, and the output
  # carries the explicit "SKIPPED: no CUDA GPU" line.
  add_test(NAME cuda COMMAND ctnn-cuda-tests)
  set_tests_properties(cuda PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 1200 LABELS cuda)

  # The benchmark gpu-check.sh runs; not part of `all` so CI stays short.
  add_executable(ctnn-cuda-bench EXCLUDE_FROM_ALL ${PROJECT_SOURCE_DIR}/tests/cuda/bench/bench.cu)
  target_link_libraries(ctnn-cuda-bench PRIVATE ctnn::cuda ctnn_cuda_project_flags)
endif()
