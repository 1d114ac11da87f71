# Compiler settings shared by every relaycore target: strict warnings, optional -Werror, and the
# sanitizer builds that CI runs.

set(CMAKE_CXX_STANDARD 20)
set(CMAKE_CXX_STANDARD_REQUIRED ON)
set(CMAKE_CXX_EXTENSIONS OFF)
set(CMAKE_POSITION_INDEPENDENT_CODE ON)

add_library(relaycore_warnings INTERFACE)
target_compile_options(relaycore_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast -Wcast-align
  -Wunused -Woverloaded-virtual -Wnull-dereference -Wimplicit-fallthrough
  # GCC 12 at -O3 reports -Wrestrict inside libstdc++'s std::string operator+ (GCC bug 105329,
  # a false positive fixed in GCC 13); with -Werror it breaks Release builds of correct code.
  $<$<AND:$<CXX_COMPILER_ID:GNU>,$<VERSION_LESS:$<CXX_COMPILER_VERSION>,13>>:-Wno-restrict>
  $<$<BOOL:${RELAYCORE_WERROR}>:-Werror>)

if(RELAYCORE_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer
                      -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()
if(RELAYCORE_TSAN)
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer)
  # Asio's fenced blocks use std::atomic_thread_fence, which TSan does not model (GCC warns with
  # -Wtsan). Its scheduler already synchronises handlers through mutexes, so the fences are
  # redundant here; turning them off keeps the build warning-free and TSan's view exact.
  add_compile_definitions(ASIO_DISABLE_FENCED_BLOCK)
  add_link_options(-fsanitize=thread)
endif()

# libFuzzer builds (clang only). Every target gets coverage instrumentation (fuzzer-no-link) and
# ASan+UBSan, so the fuzzer is guided by the library's own branches and a memory or UB error
# aborts the run instead of passing silently. Only tests/fuzz targets link libFuzzer's driver.
if(RELAYCORE_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "RELAYCORE_FUZZ needs clang: configure with CC=clang CXX=clang++")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
                      -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()
