# Turns a binary file into a C++ source that defines it as a byte array:
#   cmake -DINPUT=f.o -DOUTPUT=f.cpp -DNAME=symbol -P EmbedFile.cmake
# Used for the compiled XDP program, so that the daemon needs no file at run time.
file(READ ${INPUT} hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
file(WRITE ${OUTPUT}
  "// Generated from ${INPUT} by cmake/EmbedFile.cmake. Do not edit.\n"
  "#include <cstddef>\n#include <cstdint>\n"
  "namespace ms::nic {\n"
  "extern const std::uint8_t ${NAME}[] = {${bytes}};\n"
  "extern const std::size_t ${NAME}_size = sizeof(${NAME});\n"
  "}\n")
