# Runs one packaging test step; tests/packaging/CMakeLists.txt registers one ctest per STEP.
#   cmake -DSTEP=install|find_package|add_subdirectory|pkg-config|shared -D... -P run.cmake
# Every step works in its own directory under WORK_DIR and wipes it first, so steps never share
# state except the install prefix, which ctest orders through a fixture.
cmake_minimum_required(VERSION 3.25)

foreach(var STEP WORK_DIR CXX_COMPILER)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run.cmake: ${var} is not set")
  endif()
endforeach()

# Lists travel from the ctest command line joined by '|', since ';' would split the argument.
string(REPLACE "|" ";" cxx_flags "${CXX_FLAGS}")
string(REPLACE "|" ";" link_flags "${LINK_FLAGS}")
string(REPLACE ";" " " cxx_flags_string "${cxx_flags}")
string(REPLACE ";" " " link_flags_string "${link_flags}")

set(config_args "")
if(CONFIG)
  set(config_args --config "${CONFIG}")
endif()

# The add_subdirectory step compiles all of relaycore again, so use every core unless told.
if(DEFINED ENV{CMAKE_BUILD_PARALLEL_LEVEL})
  set(jobs $ENV{CMAKE_BUILD_PARALLEL_LEVEL})
else()
  cmake_host_system_information(RESULT jobs QUERY NUMBER_OF_LOGICAL_CORES)
endif()

function(run)
  string(REPLACE ";" " " shown "${ARGN}")
  message(STATUS "run: ${shown}")
  execute_process(COMMAND ${ARGN} COMMAND_ERROR_IS_FATAL ANY)
endfunction()

# Configures and builds the project in `source` into `dir` the way relaycore itself was built
# (generator, compiler, flags, configuration); extra arguments go to the configure step.
function(configure_and_build source dir)
  set(args
    -S "${source}" -B "${dir}"
    -G "${GENERATOR}"
    "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}"
    "-DCMAKE_CXX_FLAGS=${cxx_flags_string}"
    "-DCMAKE_EXE_LINKER_FLAGS=${link_flags_string}"
    "-DCMAKE_SHARED_LINKER_FLAGS=${link_flags_string}"
    ${ARGN})
  if(CONFIG)
    list(APPEND args "-DCMAKE_BUILD_TYPE=${CONFIG}")
  endif()
  if(MAKE_PROGRAM)
    list(APPEND args "-DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM}")
  endif()
  run("${CMAKE_COMMAND}" ${args})
  run("${CMAKE_COMMAND}" --build "${dir}" ${config_args} --parallel ${jobs})
endfunction()

# Configures, builds and runs tests/packaging/consumer in one mode, in WORK_DIR/<name>.
function(cmake_consumer mode name)
  set(dir "${WORK_DIR}/${name}")
  file(REMOVE_RECURSE "${dir}")
  configure_and_build("${CMAKE_CURRENT_LIST_DIR}/consumer" "${dir}"
                      "-DRELAYCORE_CONSUMER_MODE=${mode}" ${ARGN})
  # Multi-config generators put the programs in a per-config directory.
  foreach(program consumer c_consumer)
    set(exe "${dir}/${program}")
    if(NOT EXISTS "${exe}")
      set(exe "${dir}/${CONFIG}/${program}")
    endif()
    run("${exe}")
  endforeach()
endfunction()

set(prefix "${WORK_DIR}/prefix")

if(STEP STREQUAL "install")
  file(REMOVE_RECURSE "${prefix}")
  run("${CMAKE_COMMAND}" --install "${BUILD_DIR}" ${config_args} --prefix "${prefix}")
  # The layout consumers rely on.
  foreach(pattern
      "include/relaycore/event.hpp" "include/relaycore/export.hpp" "include/relaycore/relaycore.h"
      "include/relaycore/version.hpp" "include/relaycore/sqlite.hpp"
      "lib*/librelaycore.*" "lib*/*/librelaycore.*" "lib*/librelaycore_c.*" "lib*/*/librelaycore_c.*"
      "lib*/cmake/relaycore/relaycore-config.cmake" "lib*/*/cmake/relaycore/relaycore-config.cmake"
      "lib*/cmake/relaycore/FindSecp256k1.cmake" "lib*/*/cmake/relaycore/FindSecp256k1.cmake"
      "lib*/pkgconfig/relaycore.pc" "lib*/*/pkgconfig/relaycore.pc")
    file(GLOB found "${prefix}/${pattern}")
    list(APPEND found_all ${found})
  endforeach()
  foreach(name event.hpp export.hpp relaycore.h version.hpp sqlite.hpp librelaycore librelaycore_c relaycore-config.cmake
          FindSecp256k1.cmake relaycore.pc)
    if(NOT found_all MATCHES "/${name}")
      message(FATAL_ERROR "install: no ${name} under ${prefix}")
    endif()
  endforeach()
elseif(STEP STREQUAL "find_package")
  cmake_consumer(find_package find_package "-DCMAKE_PREFIX_PATH=${prefix}")
elseif(STEP STREQUAL "add_subdirectory")
  cmake_consumer(add_subdirectory add_subdirectory "-DRELAYCORE_SOURCE_DIR=${SOURCE_DIR}")
elseif(STEP STREQUAL "shared")
  # relaycore built as shared libraries (BUILD_SHARED_LIBS), library targets only, installed to
  # a prefix of its own; the consumer must find, link and run against it. With hidden
  # visibility, a public function missing RELAYCORE_API fails here as an undefined reference.
  set(build "${WORK_DIR}/shared-build")
  set(shared_prefix "${WORK_DIR}/shared-prefix")
  file(REMOVE_RECURSE "${build}" "${shared_prefix}")
  configure_and_build("${SOURCE_DIR}" "${build}"
                      -DBUILD_SHARED_LIBS=ON -DRELAYCORE_TESTS=OFF -DRELAYCORE_EXAMPLES=OFF
                      -DRELAYCORE_BENCHMARKS=OFF -DRELAYCORE_INSTALL=ON)
  run("${CMAKE_COMMAND}" --install "${build}" ${config_args} --prefix "${shared_prefix}")
  file(GLOB_RECURSE shared_libs "${shared_prefix}/librelaycore.so*")
  if(NOT shared_libs)
    message(FATAL_ERROR "shared: no librelaycore.so under ${shared_prefix}")
  endif()
  cmake_consumer(find_package shared "-DCMAKE_PREFIX_PATH=${shared_prefix}"
                 -DRELAYCORE_CONSUMER_EXPECT_TYPE=SHARED_LIBRARY)
elseif(STEP STREQUAL "pkg-config")
  set(dir "${WORK_DIR}/pkg-config")
  file(REMOVE_RECURSE "${dir}")
  file(MAKE_DIRECTORY "${dir}")
  file(GLOB_RECURSE pc LIST_DIRECTORIES false "${prefix}/relaycore.pc")
  if(NOT pc)
    message(FATAL_ERROR "pkg-config: no relaycore.pc under ${prefix}")
  endif()
  get_filename_component(pc_dir "${pc}" DIRECTORY)
  if(DEFINED ENV{PKG_CONFIG_PATH})
    set(ENV{PKG_CONFIG_PATH} "${pc_dir}:$ENV{PKG_CONFIG_PATH}")
  else()
    set(ENV{PKG_CONFIG_PATH} "${pc_dir}")
  endif()
  execute_process(
    COMMAND "${PKG_CONFIG}" --cflags --libs --static relaycore
    OUTPUT_VARIABLE pc_flags OUTPUT_STRIP_TRAILING_WHITESPACE
    COMMAND_ERROR_IS_FATAL ANY)
  message(STATUS "pkg-config --cflags --libs --static relaycore: ${pc_flags}")
  separate_arguments(pc_flags UNIX_COMMAND "${pc_flags}")
  set(defines "")
  if(STATIC_LIBRARY)
    set(defines -DRELAYCORE_CONSUMER_STATIC=1)
  endif()
  run("${CXX_COMPILER}" -std=c++20 ${cxx_flags} ${defines}
      "${CMAKE_CURRENT_LIST_DIR}/consumer/main.cpp" ${link_flags} ${pc_flags}
      -o "${dir}/consumer")
  # Found at run time if relaycore was built shared.
  get_filename_component(lib_dir "${pc_dir}" DIRECTORY)
  set(ENV{LD_LIBRARY_PATH} "${lib_dir}:$ENV{LD_LIBRARY_PATH}")
  run("${dir}/consumer")
else()
  message(FATAL_ERROR "run.cmake: unknown STEP '${STEP}'")
endif()
