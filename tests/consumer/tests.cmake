# Packaging tests: install this build tree into a scratch prefix and build a
# consumer against it with find_package, and build the same consumer with
# add_subdirectory and FetchContent (from a local archive: no network).
# Included from tests/CMakeLists.txt. Each configures a fresh CMake project,
# so they are slow-ish: a generous timeout, and one at a time.
if(NOT CTNN_INSTALL)
  return()
endif()

set(_consumer_work ${CMAKE_CURRENT_BINARY_DIR}/consumer)
set(_consumer_args -DCTNN_SOURCE=${PROJECT_SOURCE_DIR} -DCTNN_BUILD=${PROJECT_BINARY_DIR}
    -DPREFIX=${_consumer_work}/prefix -DCXX=${CMAKE_CXX_COMPILER} "-DGENERATOR=${CMAKE_GENERATOR}")

add_test(NAME "consumer: install"
  COMMAND ${CMAKE_COMMAND} -DMODE=install ${_consumer_args} -DWORK=${_consumer_work}/install
          -P ${CMAKE_CURRENT_LIST_DIR}/run_consumer.cmake)
set_tests_properties("consumer: install" PROPERTIES FIXTURES_SETUP ctnn_installed)

foreach(_mode find_package add_subdirectory fetchcontent)
  add_test(NAME "consumer: ${_mode}"
    COMMAND ${CMAKE_COMMAND} -DMODE=${_mode} ${_consumer_args} -DWORK=${_consumer_work}/${_mode}
            -P ${CMAKE_CURRENT_LIST_DIR}/run_consumer.cmake)
endforeach()
set_tests_properties("consumer: find_package" PROPERTIES FIXTURES_REQUIRED ctnn_installed)

set_tests_properties("consumer: install" "consumer: find_package" "consumer: add_subdirectory"
  "consumer: fetchcontent" PROPERTIES LABELS consumer TIMEOUT 900 RESOURCE_LOCK ctnn_consumer)
