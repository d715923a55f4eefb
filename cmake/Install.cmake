# What `cmake --install` puts where (README, "Running MultiStack as a service"): the daemon
# in sbin; msctl and the example programs in bin; the preload library; the libraries an
# application links (libmultistack's session and port, UTCP, and its event loop) in
# one shared library, libmultistack.so, with their headers in INCLUDEDIR/multistack and a pkg-config file
# (`pkg-config --cflags --libs multistack`); and the systemd unit, one instance per
# interface (multistackd@IFACE.service). Every program prints its manual with --help.
include(GNUInstallDirs)

install(TARGETS multistackd RUNTIME DESTINATION ${CMAKE_INSTALL_SBINDIR})
install(TARGETS msctl ms-httpd utcp-echo ms-udp-echo ms-pktgen RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS multistack-preload LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})

# libmultistack.so: the session and its port, UTCP and its event loop, whole (their static
# libraries linked into one shared library, as the preload library links its own).
file(WRITE ${PROJECT_BINARY_DIR}/dist/multistack_library.cpp "// libmultistack.so: made of whole static libraries.\n")
pkg_check_modules(INSTALL_SODIUM REQUIRED IMPORTED_TARGET libsodium)  # UTCP's (src/CMakeLists.txt)
add_library(multistack SHARED ${PROJECT_BINARY_DIR}/dist/multistack_library.cpp)
set(MS_LIBRARY_PARTS ms_loop ms_client ms_ctl ms_utcp ms_ring ms_wire)
set(MS_LIBRARY_ARCHIVES "")
foreach(part ${MS_LIBRARY_PARTS})
  list(APPEND MS_LIBRARY_ARCHIVES "$<TARGET_FILE:${part}>")
endforeach()
add_dependencies(multistack ${MS_LIBRARY_PARTS})
target_link_libraries(multistack PRIVATE -Wl,--whole-archive ${MS_LIBRARY_ARCHIVES} -Wl,--no-whole-archive
                      PkgConfig::INSTALL_SODIUM Threads::Threads)
target_link_options(multistack PRIVATE -Wl,-z,defs)
set_target_properties(multistack PROPERTIES VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR})
install(TARGETS multistack LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
foreach(folder base wire ring ctl utcp client loop)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/src/${folder} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/multistack
          FILES_MATCHING PATTERN "*.hpp")
endforeach()
# The pkg-config file finds the prefix from where it lies, so that it holds wherever
# `cmake --install --prefix` put it.
file(RELATIVE_PATH MS_PC_TO_PREFIX "/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/")
configure_file(${PROJECT_SOURCE_DIR}/dist/multistack.pc.in ${PROJECT_BINARY_DIR}/dist/multistack.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/dist/multistack.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# The unit names the daemon and the documents by their installed paths, which the prefix
# given at install time decides.
install(CODE "
  file(READ \"${PROJECT_SOURCE_DIR}/dist/multistackd@.service.in\" unit)
  string(REPLACE \"@SBINDIR@\" \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_SBINDIR}\" unit \"\${unit}\")
  string(REPLACE \"@DOCDIR@\" \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_DOCDIR}\" unit \"\${unit}\")
  set(path \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/lib/systemd/system/multistackd@.service\")
  message(STATUS \"Installing: \${path}\")
  file(WRITE \"\${path}\" \"\${unit}\")
")
install(FILES ${PROJECT_SOURCE_DIR}/README.md ${PROJECT_SOURCE_DIR}/docs/DESIGN.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
