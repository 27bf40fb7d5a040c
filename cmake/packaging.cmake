# The Debian package (issue 27): `cmake --build --preset release --target package` writes
# build/release/llm-caching_<version>_<arch>.deb with the program, the library with its headers,
# CMake config and pkg-config file, the default price table, man pages made from --help, bash and
# zsh completions, and a systemd unit that runs the gateway as its own user.

# pkg-config, for builds without CMake: `g++ -std=c++20 app.cpp $(pkg-config --cflags --libs
# llm_caching)`.
configure_file(${CMAKE_CURRENT_SOURCE_DIR}/packaging/llm_caching.pc.in
               ${CMAKE_CURRENT_BINARY_DIR}/llm_caching.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/llm_caching.pc
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# The price table the library embeds, as a file to read and to copy for a --prices override.
install(FILES ${CMAKE_CURRENT_SOURCE_DIR}/data/model_costs.json
        DESTINATION ${CMAKE_INSTALL_DATADIR}/llm-caching)

install(FILES ${CMAKE_CURRENT_SOURCE_DIR}/packaging/completions/llm-caching.bash
        DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions RENAME llm-caching)
install(FILES ${CMAKE_CURRENT_SOURCE_DIR}/packaging/completions/_llm-caching
        DESTINATION ${CMAKE_INSTALL_DATADIR}/zsh/vendor-completions)
install(FILES ${CMAKE_CURRENT_SOURCE_DIR}/packaging/llm-caching.service
        DESTINATION lib/systemd/system)
install(FILES ${CMAKE_CURRENT_SOURCE_DIR}/packaging/gateway.json DESTINATION /etc/llm-caching)
install(FILES LICENSE README.md CHANGELOG.md SECURITY.md
        DESTINATION ${CMAKE_INSTALL_DOCDIR})

# Man pages from each command's --help (help2man, a Debian package), so they never drift.
find_program(HELP2MAN_PROGRAM help2man)
if(HELP2MAN_PROGRAM)
  set(llmc_man_pages "")
  foreach(page "llm-caching|" "llm-caching-serve|serve " "llm-caching-ask|ask "
               "llm-caching-cache|cache ")
    string(REPLACE "|" ";" parts "${page}")
    list(GET parts 0 name)
    list(GET parts 1 command)
    set(out ${CMAKE_CURRENT_BINARY_DIR}/man/${name}.1)
    add_custom_command(
      OUTPUT ${out}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_CURRENT_BINARY_DIR}/man
      COMMAND ${HELP2MAN_PROGRAM} --no-info --no-discard-stderr --section 1
              "--help-option=${command}--help" --version-option=--version
              "--name=${name}: a cache for LLM calls" --output ${out} $<TARGET_FILE:llm-caching>
      DEPENDS llm-caching
      COMMENT "Man page ${name}(1) from --help")
    list(APPEND llmc_man_pages ${out})
  endforeach()
  add_custom_target(llmc_man_pages ALL DEPENDS ${llmc_man_pages})
  install(FILES ${llmc_man_pages} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
endif()

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME llm-caching)
set(CPACK_PACKAGE_VENDOR "The llm-caching authors")
set(CPACK_PACKAGE_CONTACT "llm-caching maintainers <maintainers@llm-caching.invalid>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "cache for LLM calls with cost tracking and rate-limit handling")
set(CPACK_PACKAGE_DESCRIPTION
    "A caching gateway that speaks the OpenAI, Anthropic and Gemini wire formats, a CLI and a C++20 library: repeated calls are answered from a cache, every call is costed, and provider rate limits are ridden out.")
set(CPACK_RESOURCE_FILE_LICENSE ${CMAKE_CURRENT_SOURCE_DIR}/LICENSE)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
# What a program built against the installed library needs besides this package.
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS
    "libboost1.81-dev, libboost-json1.81-dev, libboost-url1.81-dev, libssl-dev, libsqlite3-dev, libzstd-dev, libhiredis-dev, libspdlog-dev, libfmt-dev, pkg-config")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_CURRENT_SOURCE_DIR}/packaging/debian/postinst
    ${CMAKE_CURRENT_SOURCE_DIR}/packaging/debian/prerm
    ${CMAKE_CURRENT_SOURCE_DIR}/packaging/debian/postrm
    ${CMAKE_CURRENT_BINARY_DIR}/conffiles)
file(WRITE ${CMAKE_CURRENT_BINARY_DIR}/conffiles "/etc/llm-caching/gateway.json\n")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
