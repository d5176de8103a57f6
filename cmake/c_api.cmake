# libkrea2.so.<major>: the C API over the static core, its install rules, CMake package and pkg-config file.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

file(GLOB KREA2_CAPI_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/capi/*.cpp)
add_library(krea2_shared SHARED ${KREA2_CAPI_SOURCES})
add_library(krea2::krea2 ALIAS krea2_shared)
set_target_properties(krea2_shared PROPERTIES
  OUTPUT_NAME krea2
  VERSION ${PROJECT_VERSION}
  SOVERSION ${PROJECT_VERSION_MAJOR}
  CXX_VISIBILITY_PRESET hidden
  VISIBILITY_INLINES_HIDDEN ON
  EXPORT_NAME krea2)
target_link_libraries(krea2_shared PRIVATE krea2core)
# Only the C API leaves the library: every C++ symbol of the core stays local (the version script), so programs
# linking libkrea2.so never see our internals or clash with their own.
set(KREA2_VERSION_SCRIPT ${CMAKE_SOURCE_DIR}/cmake/krea2.map)
target_link_options(krea2_shared PRIVATE "LINKER:--version-script=${KREA2_VERSION_SCRIPT}" "LINKER:--no-undefined")
set_property(TARGET krea2_shared APPEND PROPERTY LINK_DEPENDS ${KREA2_VERSION_SCRIPT})
target_include_directories(krea2_shared INTERFACE
  $<BUILD_INTERFACE:${CMAKE_SOURCE_DIR}/include>
  $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)

install(TARGETS krea2_shared EXPORT krea2Targets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES ${CMAKE_SOURCE_DIR}/include/krea2/krea2.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/krea2)
install(EXPORT krea2Targets NAMESPACE krea2:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/krea2)
configure_package_config_file(${CMAKE_SOURCE_DIR}/cmake/krea2Config.cmake.in
  ${CMAKE_BINARY_DIR}/krea2Config.cmake INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/krea2)
write_basic_package_version_file(${CMAKE_BINARY_DIR}/krea2ConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES ${CMAKE_BINARY_DIR}/krea2Config.cmake ${CMAKE_BINARY_DIR}/krea2ConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/krea2)
# Relocatable: paths relative to the .pc file, so `cmake --install --prefix P` anywhere gives a working file.
file(RELATIVE_PATH KREA2_PC_TO_PREFIX ${CMAKE_INSTALL_FULL_LIBDIR}/pkgconfig ${CMAKE_INSTALL_PREFIX})
configure_file(${CMAKE_SOURCE_DIR}/cmake/krea2.pc.in ${CMAKE_BINARY_DIR}/krea2.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/krea2.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
