# Helpers shared by every target of ours: warnings, sanitizers, test
# registration. Third-party code never gets our warning flags.

set(RP_WARNINGS -Wall -Wextra -Wshadow -Wstrict-prototypes
    -Wmissing-prototypes -Wformat=2 -Wvla -Werror)

function(rp_link_sanitizers target)
  if(RP_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=${RP_SANITIZE}
                           -fno-omit-frame-pointer -fno-sanitize-recover=all)
    target_link_options(${target} PRIVATE -fsanitize=${RP_SANITIZE})
  endif()
endfunction()

function(rp_target_defaults target)
  target_compile_definitions(${target} PRIVATE _GNU_SOURCE)
  # Thread-ownership checks (RP_ASSERT_THREAD, src/core/assert.h) stay on
  # in sanitizer builds even where NDEBUG is set (make tsan).
  if(RP_SANITIZE)
    target_compile_definitions(${target} PRIVATE RP_CHECK_THREADS)
  endif()
  target_compile_options(${target} PRIVATE ${RP_WARNINGS})
  rp_link_sanitizers(${target})
endfunction()

# A program of ours linked against the static core library; one that uses
# the metrics endpoint or the config reader links ringport_extras_static too.
function(rp_program target)
  add_executable(${target} ${ARGN})
  target_link_libraries(${target} PRIVATE ringport_static)
  rp_target_defaults(${target})
endfunction()

# One configure-time line for a target skipped because a package outside the
# build set is missing, naming the scripts/deps.sh set that brings it. The
# quick start (scripts/deps.sh build) must never need more than the build set.
function(rp_skip_optional target what set)
  message(NOTICE "ringport: skipping ${target}: ${what} not found "
                 "(scripts/deps.sh ${set} installs it)")
endfunction()

# A program or test that includes the engine's internal headers ("core/
# pool.h", "proto/frame.h"): src/ is private to the libraries, so it is
# given explicitly, and the program must link the static archive (the .so
# exports only the RP_API names).
function(rp_use_internals target)
  target_include_directories(${target} PRIVATE ${PROJECT_SOURCE_DIR}/src)
endfunction()

# libnats, the NATS C client (optional): ringport-game's cluster group
# (--cluster) and its tests are built only when it is found, by pkg-config
# (libnats.pc) or else by its header and library. Sets RP_HAVE_NATS and
# the target rp_nats; one NOTICE line (rp_skip_optional) when missing.
macro(rp_find_nats)
  set(RP_HAVE_NATS OFF)
  pkg_check_modules(NATS QUIET IMPORTED_TARGET libnats)
  if(NATS_FOUND)
    add_library(rp_nats INTERFACE IMPORTED)
    target_link_libraries(rp_nats INTERFACE PkgConfig::NATS)
    set(RP_HAVE_NATS ON)
  else()
    find_path(RP_NATS_INCLUDE nats/nats.h)
    find_library(RP_NATS_LIB nats)
    if(RP_NATS_INCLUDE AND RP_NATS_LIB)
      add_library(rp_nats INTERFACE IMPORTED)
      target_include_directories(rp_nats INTERFACE ${RP_NATS_INCLUDE})
      target_link_libraries(rp_nats INTERFACE ${RP_NATS_LIB})
      set(RP_HAVE_NATS ON)
    else()
      rp_skip_optional("the game's cluster mode (--cluster)" "libnats"
                       cluster)
    endif()
  endif()
endmacro()
