# Install rules, modelled on fmt: headers, the library, a CMake package exporting
# relaycore::relaycore, and a pkg-config file. Included only when RELAYCORE_INSTALL is on.

include(CMakePackageConfigHelpers)

set(RELAYCORE_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/relaycore" CACHE STRING
    "Where relaycore-config.cmake and the exported targets are installed")
set(RELAYCORE_INSTALL_PKGCONFIGDIR "${CMAKE_INSTALL_LIBDIR}/pkgconfig" CACHE STRING
    "Where relaycore.pc is installed")
mark_as_advanced(RELAYCORE_INSTALL_CMAKEDIR RELAYCORE_INSTALL_PKGCONFIGDIR)

# A static relaycore carries its private dependencies into every consumer's link line, so the
# package config and the .pc file must then name them too.
get_target_property(_relaycore_type relaycore TYPE)
if(_relaycore_type STREQUAL "STATIC_LIBRARY")
  set(RELAYCORE_STATIC_LIBRARY ON)
else()
  set(RELAYCORE_STATIC_LIBRARY OFF)
endif()

# relaycore_websocket (relaycore::websocket) and the C API's relaycore_c (relaycore::c) travel
# in the same export set.
install(TARGETS relaycore relaycore_websocket relaycore_c
  EXPORT relaycore-targets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# The optional relaycore::redis (hiredis) travels in the same export set when it was built.
if(TARGET relaycore_redis)
  set(RELAYCORE_WITH_REDIS ON)
  install(TARGETS relaycore_redis
    EXPORT relaycore-targets
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
    RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  install(FILES "${CMAKE_CURRENT_LIST_DIR}/FindHiredis.cmake"
          DESTINATION ${RELAYCORE_INSTALL_CMAKEDIR})
else()
  set(RELAYCORE_WITH_REDIS OFF)
endif()

# The optional relaycore::postgres (libpq) likewise; CMake's own FindPostgreSQL serves
# find_dependency.
if(TARGET relaycore_postgres)
  set(RELAYCORE_WITH_POSTGRES ON)
  install(TARGETS relaycore_postgres
    EXPORT relaycore-targets
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
    RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
else()
  set(RELAYCORE_WITH_POSTGRES OFF)
endif()

install(DIRECTORY "${PROJECT_SOURCE_DIR}/include/relaycore"
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
  FILES_MATCHING PATTERN "*.hpp" PATTERN "*.h")
install(FILES "${PROJECT_BINARY_DIR}/include/relaycore/version.hpp"
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/relaycore)

install(EXPORT relaycore-targets
  NAMESPACE relaycore::
  DESTINATION ${RELAYCORE_INSTALL_CMAKEDIR})

configure_package_config_file(
  "${CMAKE_CURRENT_LIST_DIR}/relaycore-config.cmake.in"
  "${PROJECT_BINARY_DIR}/relaycore-config.cmake"
  INSTALL_DESTINATION ${RELAYCORE_INSTALL_CMAKEDIR})
# A request for 1.2 accepts any 1.x at or above it, never 2.0.
write_basic_package_version_file(
  "${PROJECT_BINARY_DIR}/relaycore-config-version.cmake"
  VERSION ${PROJECT_VERSION}
  COMPATIBILITY SameMajorVersion)

# Secp256k1 and Asio ship no CMake config on Debian, so our find modules travel with the package
# for find_dependency to use.
install(FILES
    "${PROJECT_BINARY_DIR}/relaycore-config.cmake"
    "${PROJECT_BINARY_DIR}/relaycore-config-version.cmake"
    "${CMAKE_CURRENT_LIST_DIR}/FindSecp256k1.cmake"
    "${CMAKE_CURRENT_LIST_DIR}/FindAsio.cmake"
  DESTINATION ${RELAYCORE_INSTALL_CMAKEDIR})

# pkg-config: paths relative to the .pc file (${pcfiledir}) so that `cmake --install --prefix`
# into any directory gives a usable file; absolute install dirs are kept as they are.
function(relaycore_pc_path out dir)
  if(IS_ABSOLUTE "${dir}")
    set(${out} "${dir}" PARENT_SCOPE)
  else()
    set(${out} "\${prefix}/${dir}" PARENT_SCOPE)
  endif()
endfunction()

if(IS_ABSOLUTE "${RELAYCORE_INSTALL_PKGCONFIGDIR}")
  set(RELAYCORE_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
else()
  # e.g. lib/pkgconfig -> ${pcfiledir}/../.., as Meson writes relocatable .pc files.
  file(RELATIVE_PATH _relaycore_pc_up "/root/${RELAYCORE_INSTALL_PKGCONFIGDIR}" "/root")
  string(REGEX REPLACE "/$" "" _relaycore_pc_up "${_relaycore_pc_up}")
  set(RELAYCORE_PC_PREFIX "\${pcfiledir}/${_relaycore_pc_up}")
endif()
relaycore_pc_path(RELAYCORE_PC_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
relaycore_pc_path(RELAYCORE_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")

# Threads is a public dependency (empty on glibc >= 2.34). The private ones all ship .pc files,
# so Requires.private names them and `pkg-config --static` adds their flags.
set(RELAYCORE_PC_LIBS "${CMAKE_THREAD_LIBS_INIT}")
set(RELAYCORE_PC_CFLAGS "")
if(RELAYCORE_STATIC_LIBRARY)
  set(RELAYCORE_PC_CFLAGS "-DRELAYCORE_STATIC")
endif()

configure_file("${CMAKE_CURRENT_LIST_DIR}/relaycore.pc.in" "${PROJECT_BINARY_DIR}/relaycore.pc"
               @ONLY)
install(FILES "${PROJECT_BINARY_DIR}/relaycore.pc" DESTINATION ${RELAYCORE_INSTALL_PKGCONFIGDIR})
