# Every third-party dependency is looked up here, and only here.
# All but civetweb ship pkg-config files; their include directories arrive as -isystem,
# so library headers never trip the project's warnings.
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)

pkg_check_modules(NATS REQUIRED IMPORTED_TARGET libnats>=3.4)
pkg_check_modules(PROTOBUFC REQUIRED IMPORTED_TARGET libprotobuf-c)
pkg_check_modules(HIREDIS REQUIRED IMPORTED_TARGET hiredis)
pkg_check_modules(LIBPQ REQUIRED IMPORTED_TARGET libpq)
pkg_check_modules(CURL REQUIRED IMPORTED_TARGET libcurl)
pkg_check_modules(JANSSON REQUIRED IMPORTED_TARGET jansson)
pkg_check_modules(GLIB REQUIRED IMPORTED_TARGET glib-2.0)
pkg_check_modules(SODIUM REQUIRED IMPORTED_TARGET libsodium)
pkg_check_modules(ZLIB REQUIRED IMPORTED_TARGET zlib)
pkg_check_modules(CRITERION IMPORTED_TARGET criterion)

# civetweb has no .pc file and its CMake config looks for /usr/bin/civetweb.
find_path(CIVETWEB_INCLUDE_DIR civetweb.h REQUIRED)
find_library(CIVETWEB_LIBRARY civetweb REQUIRED)
add_library(eg_civetweb INTERFACE)
target_include_directories(eg_civetweb SYSTEM INTERFACE ${CIVETWEB_INCLUDE_DIR})
target_link_libraries(eg_civetweb INTERFACE ${CIVETWEB_LIBRARY} Threads::Threads ${CMAKE_DL_LIBS})

find_program(PROTOC_C protoc-c REQUIRED)
