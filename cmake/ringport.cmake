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

# A program of ours linked against the static library.
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
