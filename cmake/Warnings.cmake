# Project-wide compile flags: warnings everywhere, -Werror on request (CI), sanitizers
# and fuzzing instrumentation as options.
add_compile_options(-Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wno-sign-conversion
                    -Wnon-virtual-dtor -Wold-style-cast -Wcast-align -Woverloaded-virtual
                    -Wnull-dereference -Wimplicit-fallthrough
                    # C++20 designated initializers leave members to their defaults on purpose.
                    -Wno-missing-field-initializers)
if(CMAKE_BUILD_TYPE STREQUAL "Release")
  add_compile_options(-march=x86-64-v2)
endif()
if(MS_WERROR)
  add_compile_options(-Werror)
endif()
if(MS_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()
if(MS_FUZZ)
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()
