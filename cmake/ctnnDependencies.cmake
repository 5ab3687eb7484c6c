# Finds ctnn's dependencies (xsimd; OpenMP if present). Used by the build tree and by the installed
# ctnnConfig.cmake, so consumers get exactly the same fixes.
include(CMakeFindDependencyMacro)
find_dependency(xsimd 8.1)
# Debian's xsimd 8.1 exports a link to a non-existent "xtl" library (fixed
# upstream in 9.0). Clear it so that nobody linking ctnn gets "cannot find -lxtl".
if(TARGET xsimd)
  get_target_property(_ctnn_xsimd_links xsimd INTERFACE_LINK_LIBRARIES)
  if(_ctnn_xsimd_links STREQUAL "xtl" AND NOT TARGET xtl)
    set_property(TARGET xsimd PROPERTY INTERFACE_LINK_LIBRARIES "")
  endif()
  unset(_ctnn_xsimd_links)
endif()
# OpenMP is optional: the CPU backend runs its own thread pool and only asks
# OpenMP (when a translation unit is compiled with it) for the thread count.
find_package(OpenMP COMPONENTS CXX QUIET)
