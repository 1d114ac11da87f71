# Finds libsecp256k1 (Debian: libsecp256k1-dev), which ships no CMake config, and checks that the
# schnorrsig and extrakeys modules were built. Defines Secp256k1::secp256k1.

find_path(Secp256k1_INCLUDE_DIR NAMES secp256k1_schnorrsig.h secp256k1_extrakeys.h)
find_library(Secp256k1_LIBRARY NAMES secp256k1)

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(Secp256k1 REQUIRED_VARS Secp256k1_LIBRARY Secp256k1_INCLUDE_DIR)

if(Secp256k1_FOUND AND NOT TARGET Secp256k1::secp256k1)
  add_library(Secp256k1::secp256k1 UNKNOWN IMPORTED)
  set_target_properties(Secp256k1::secp256k1 PROPERTIES
    IMPORTED_LOCATION "${Secp256k1_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${Secp256k1_INCLUDE_DIR}")
endif()
mark_as_advanced(Secp256k1_INCLUDE_DIR Secp256k1_LIBRARY)
