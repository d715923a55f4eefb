# ms_bpf_program(NAME SOURCE OUT_VAR): compiles SOURCE (a .bpf.c) for the BPF target and
# turns the object into a C++ source defining ms::nic::NAME[] and NAME_size (EmbedFile.cmake),
# whose path it sets in OUT_VAR, so that a program needs no file at run time.
find_program(MS_BPF_CLANG NAMES clang-16 clang REQUIRED)
function(ms_bpf_program name source out_var)
  set(obj ${CMAKE_CURRENT_BINARY_DIR}/${name}.o)
  set(cpp ${CMAKE_CURRENT_BINARY_DIR}/${name}.cpp)
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${MS_BPF_CLANG} -O2 -g -Wall -Werror -target bpf -I/usr/include/${CMAKE_LIBRARY_ARCHITECTURE}
            -c ${CMAKE_CURRENT_SOURCE_DIR}/${source} -o ${obj}
    DEPENDS ${source}
    COMMENT "Compiling the BPF program ${source}")
  add_custom_command(
    OUTPUT ${cpp}
    COMMAND ${CMAKE_COMMAND} -DINPUT=${obj} -DOUTPUT=${cpp} -DNAME=${name}
            -P ${PROJECT_SOURCE_DIR}/cmake/EmbedFile.cmake
    DEPENDS ${obj} ${PROJECT_SOURCE_DIR}/cmake/EmbedFile.cmake)
  set(${out_var} ${cpp} PARENT_SCOPE)
endfunction()
