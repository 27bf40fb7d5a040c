// The official `openai` npm package (installed from the npm registry into the build directory
// on first run, then reused offline) drives the gateway in front of the fake provider.
#include <gtest/gtest.h>

#include "integration/gateway_harness.hpp"

#include <filesystem>

namespace {

namespace fs = std::filesystem;
using namespace gateway_test;

std::string run(const std::string& command, int& exit_code) {
  llmc_test::ShellResult result = llmc_test::run_shell(command + " 2>&1");
  exit_code = result.exit_code;
  return std::move(result.output);
}

/// build/.../gateway-node with the test script and node_modules/openai. npm runs only when the
/// package.json differs from the one last installed, so later runs need no network.
fs::path prepare_node_project() {
  const fs::path source = fs::path(LLMC_SOURCE_DIR) / "tests" / "gateway-node";
  const fs::path dir = fs::path(LLMC_BINARY_DIR) / "gateway-node";
  fs::create_directories(dir);
  for (const char* file : {"package.json", "openai_sdk_test.mjs"}) {
    fs::copy_file(source / file, dir / file, fs::copy_options::overwrite_existing);
  }
  const fs::path stamp = dir / "node_modules" / ".llmc-installed-package.json";
  const bool installed = fs::exists(dir / "node_modules" / "openai" / "package.json") &&
                         fs::exists(stamp) &&
                         read_file(stamp.string()) == read_file((dir / "package.json").string());
  if (!installed) {
    int exit_code = 0;
    const std::string output =
        run("cd '" + dir.string() + "' && npm install --no-audit --no-fund --prefer-offline",
            exit_code);
    if (exit_code != 0) throw std::runtime_error("npm install failed:\n" + output);
    fs::copy_file(dir / "package.json", stamp, fs::copy_options::overwrite_existing);
  }
  return dir;
}

TEST(GatewayNode, OfficialOpenAiPackageGetsHitsForRepeatedCallsAndStreams) {
  const fs::path project = prepare_node_project();  // before the harness clears proxy variables
  llmc_test::FakeProvider fake;
  GatewayProcess gateway(fake);
  int exit_code = 0;
  const std::string output =
      run("cd '" + project.string() + "' && GATEWAY_URL=" + gateway.base_url() +
              " FAKE_URL=" + fake.base_url() + " node openai_sdk_test.mjs",
          exit_code);
  EXPECT_EQ(exit_code, 0) << output;
  EXPECT_NE(output.find("openai-sdk: OK"), std::string::npos) << output;
}

}  // namespace
