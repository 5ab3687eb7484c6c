# Compiles examples/shape_check.cpp with -DCTNN_SHOW_WRONG_HEAD, requires the
# compiler to refuse it with CTNN_HEAD_IN_FEATURES_MISMATCH, and writes the
# command and its diagnostic into a header for the demo to print.
#   cmake -DCXX=... -DCXX_NAME=... -DSOURCE_ROOT=... -DEXTRA_INCLUDES=a;b -DOUT=... -P capture_diagnostic.cmake
set(_args -std=c++20 -fsyntax-only -fdiagnostics-color=never -Iinclude)
foreach(_dir IN LISTS EXTRA_INCLUDES)
  list(APPEND _args -I${_dir})
endforeach()
list(APPEND _args -DCTNN_SHOW_WRONG_HEAD examples/shape_check.cpp)

# Relative paths and the C locale: the diagnostic then reads as it would in
# the reader's own terminal, with plain quotes.
execute_process(
  COMMAND ${CMAKE_COMMAND} -E env LC_ALL=C ${CXX} ${_args}
  WORKING_DIRECTORY ${SOURCE_ROOT}
  RESULT_VARIABLE _rc OUTPUT_VARIABLE _out ERROR_VARIABLE _out)

get_filename_component(_cxx_name ${CXX} NAME)
string(JOIN " " _command ${_cxx_name} ${_args})
if(_rc EQUAL 0)
  message(FATAL_ERROR "ctnn: `${_command}` compiled, but a 2048-feature head on ResNet18 must not")
endif()
if(NOT _out MATCHES "CTNN_HEAD_IN_FEATURES_MISMATCH")
  message(FATAL_ERROR "ctnn: `${_command}` failed without CTNN_HEAD_IN_FEATURES_MISMATCH:\n${_out}")
endif()
if(_out MATCHES "\\)ctnn_diagnostic\"")
  message(FATAL_ERROR "ctnn: the diagnostic contains the raw-string delimiter")
endif()

file(WRITE ${OUT}.tmp
"// Generated at build time by examples/capture_diagnostic.cmake; do not edit.
#pragma once
namespace generated {
inline constexpr const char* compiler = \"${CXX_NAME}\";
inline constexpr const char* wrong_head_command = R\"ctnn_diagnostic(${_command})ctnn_diagnostic\";
inline constexpr const char* wrong_head_diagnostic = R\"ctnn_diagnostic(${_out})ctnn_diagnostic\";
}  // namespace generated
")
file(RENAME ${OUT}.tmp ${OUT})
