# Finds hiredis (Debian: libhiredis-dev) through pkg-config, falling back to a plain search.
# Defines Hiredis::hiredis.

find_package(PkgConfig QUIET)
if(PkgConfig_FOUND)
  pkg_check_modules(PC_Hiredis QUIET hiredis)
endif()

# The include dir is the one holding hiredis/hiredis.h.
find_path(Hiredis_INCLUDE_DIR NAMES hiredis/hiredis.h HINTS ${PC_Hiredis_INCLUDEDIR})
find_library(Hiredis_LIBRARY NAMES hiredis HINTS ${PC_Hiredis_LIBDIR})
set(Hiredis_VERSION "${PC_Hiredis_VERSION}")

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(Hiredis REQUIRED_VARS Hiredis_LIBRARY Hiredis_INCLUDE_DIR
                                  VERSION_VAR Hiredis_VERSION)

if(Hiredis_FOUND AND NOT TARGET Hiredis::hiredis)
  add_library(Hiredis::hiredis UNKNOWN IMPORTED)
  set_target_properties(Hiredis::hiredis PROPERTIES
    IMPORTED_LOCATION "${Hiredis_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${Hiredis_INCLUDE_DIR}")
endif()
mark_as_advanced(Hiredis_INCLUDE_DIR Hiredis_LIBRARY)
