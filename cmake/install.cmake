# Install rules (cmake --install BUILD --prefix P; GNU install directories).
# Kept in one file, included last by the top-level CMakeLists.txt, so the
# component folders keep their own build rules untouched; install(TARGETS)
# may name targets of any folder (CMake >= 3.13).
#
# Layout (doc/install.md, nstack(7)):
#   LIBDIR/libnStackAPI.so, LIBDIR/libdmm_rsocket.so   the preload, the module
#   LIBDIR/nstack/softrdma/lib{ibverbs,rdmacm}.so.1    the software device: its
#                                                      own directory, never on
#                                                      the default search path
#   BINDIR/nstack-route, nstack-stat, nstack-check, nstack-run
#   LIBEXECDIR/nstack/                                 the DMM regression apps
#   INCLUDEDIR/nstack/nstack_module.h, nstack_stats.h, LIBDIR/pkgconfig/nstack.pc
#   DATADIR/nstack/{kernel,rsocket}/*.json             example configurations
#   DATADIR/nstack/*.schema.json                       their JSON Schemas
#   DOCDIR (share/doc/nstack), MANDIR/man1, man7
#
# Components = Debian packages (tools/package.sh): nstack (runtime), dev,
# softrdma.
include(GNUInstallDirs)

set(NSTACK_VERSION "0.1.0" CACHE STRING "Version of the installed files and packages")
file(STRINGS "${CMAKE_SOURCE_DIR}/include/nstack/nstack_module.h" _abi_lines
     REGEX "^#define NSTACK_MODULE_ABI_(MAJOR|MINOR) [0-9]+")
foreach(_l ${_abi_lines})
  if(_l MATCHES "ABI_(MAJOR|MINOR) ([0-9]+)")
    set(NSTACK_ABI_${CMAKE_MATCH_1} ${CMAKE_MATCH_2})
  endif()
endforeach()
set(NSTACK_SOFTRDMA_DIR "${CMAKE_INSTALL_LIBDIR}/nstack/softrdma")

# ---- runtime (package nstack) -------------------------------------------
foreach(t nStackAPI dmm_rsocket)
  if(TARGET ${t})
    install(TARGETS ${t} LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT runtime)
  endif()
endforeach()
foreach(t nstack-route nstack-stat nstack-check)
  if(TARGET ${t})
    install(TARGETS ${t} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT runtime)
  endif()
endforeach()
foreach(t vs_epoll vs_select vs_poll vs_common vc_common fork_server fork_client
          vc_serv_file vc_cli_file)
  if(TARGET ${t})
    install(TARGETS ${t} RUNTIME DESTINATION ${CMAKE_INSTALL_LIBEXECDIR}/nstack
            COMPONENT runtime)
  endif()
endforeach()

# nstack-run learns the layout (relative to its own directory) at build time.
file(RELATIVE_PATH NSTACK_RUN_TO_PREFIX "/p/${CMAKE_INSTALL_BINDIR}" "/p")
set(NSTACK_RUN_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
set(NSTACK_RUN_DATADIR "${CMAKE_INSTALL_DATADIR}")
configure_file(${CMAKE_SOURCE_DIR}/tools/nstack-run
               ${CMAKE_BINARY_DIR}/install/nstack-run @ONLY)
install(PROGRAMS ${CMAKE_BINARY_DIR}/install/nstack-run
        DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT runtime)

install(FILES ${CMAKE_SOURCE_DIR}/config/module_config.json
              ${CMAKE_SOURCE_DIR}/config/rd_config.json
        DESTINATION ${CMAKE_INSTALL_DATADIR}/nstack/kernel COMPONENT runtime)
# The JSON Schemas of both files (doc/configuration.md, nstack-route(1)).
install(FILES ${CMAKE_SOURCE_DIR}/config/module_config.schema.json
              ${CMAKE_SOURCE_DIR}/config/rd_config.schema.json
        DESTINATION ${CMAKE_INSTALL_DATADIR}/nstack COMPONENT runtime)
install(FILES ${CMAKE_SOURCE_DIR}/stacks/rsocket/config/module_config.json
              ${CMAKE_SOURCE_DIR}/stacks/rsocket/config/rd_config.json
        DESTINATION ${CMAKE_INSTALL_DATADIR}/nstack/rsocket COMPONENT runtime)

install(FILES ${CMAKE_SOURCE_DIR}/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR}
        COMPONENT runtime)
install(DIRECTORY ${CMAKE_SOURCE_DIR}/doc/ DESTINATION ${CMAKE_INSTALL_DOCDIR}
        COMPONENT runtime FILES_MATCHING PATTERN "*.md" PATTERN "*.svg" PATTERN "man" EXCLUDE)
foreach(page nstack-run.1 nstack-route.1 nstack-stat.1 nstack-check.1 nstack.7)
  string(REGEX REPLACE ".*\\." "" _sec "${page}")
  install(FILES ${CMAKE_SOURCE_DIR}/doc/man/${page}
          DESTINATION ${CMAKE_INSTALL_MANDIR}/man${_sec} COMPONENT runtime)
endforeach()

# ---- dev (package nstack-dev) -----------------------------------------------
install(FILES ${CMAKE_SOURCE_DIR}/include/nstack/nstack_module.h
              ${CMAKE_SOURCE_DIR}/include/nstack/nstack_stats.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/nstack COMPONENT dev)
# nstack.pc is written at install time, so it names the prefix actually
# installed to (cmake --install --prefix P), not the configure-time one.
install(CODE "
  set(_p \"\${CMAKE_INSTALL_PREFIX}\")
  file(READ \"${CMAKE_SOURCE_DIR}/tools/nstack.pc.in\" _pc)
  string(REPLACE \"@prefix@\" \"\${_p}\" _pc \"\${_pc}\")
  string(REPLACE \"@libdir@\" \"${CMAKE_INSTALL_LIBDIR}\" _pc \"\${_pc}\")
  string(REPLACE \"@includedir@\" \"${CMAKE_INSTALL_INCLUDEDIR}\" _pc \"\${_pc}\")
  string(REPLACE \"@datadir@\" \"${CMAKE_INSTALL_DATADIR}\" _pc \"\${_pc}\")
  string(REPLACE \"@version@\" \"${NSTACK_VERSION}\" _pc \"\${_pc}\")
  string(REPLACE \"@abi_major@\" \"${NSTACK_ABI_MAJOR}\" _pc \"\${_pc}\")
  string(REPLACE \"@abi_minor@\" \"${NSTACK_ABI_MINOR}\" _pc \"\${_pc}\")
  file(WRITE \"${CMAKE_BINARY_DIR}/install/nstack.pc\" \"\${_pc}\")
" COMPONENT dev)
install(FILES ${CMAKE_BINARY_DIR}/install/nstack.pc
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT dev)

# ---- softrdma (package nstack-softrdma) ---------------------------------------
# Only the run-time names (libibverbs.so.1 -> .so.1.14.44.0); no .so
# development links, which would shadow Debian's libibverbs-dev for linkers
# pointed at this directory.
foreach(t softrdma_ibverbs softrdma_rdmacm)
  if(TARGET ${t})
    install(TARGETS ${t} LIBRARY DESTINATION ${NSTACK_SOFTRDMA_DIR}
            COMPONENT softrdma NAMELINK_SKIP)
  endif()
endforeach()
