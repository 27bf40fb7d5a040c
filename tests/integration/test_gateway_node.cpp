// The official `openai`, `@anthropic-ai/sdk` and `@google/genai` npm packages (installed from the
// npm registry into the build directory on first run, then reused offline) drive the gateway in
// front of the fake provider, each at its defaults but for the base URL.
#include <gtest/gtest.h>

#include "integration/gateway_harness.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <filesystem>

namespace {

namespace fs = std::filesystem;
using namespace gateway_test;

std::string run(const std::string& command, int& exit_code) {
  llmc_test::ShellResult result = llmc_test::run_shell(command + " 2>&1");
  exit_code = result.exit_code;
  return std::move(result.output);
}

/// build/.../gateway-node with the test scripts and their node_modules. npm runs only when the
/// package.json differs from the one last installed, so later runs need no network.
fs::path prepare_node_project() {
  const fs::path source = fs::path(LLMC_SOURCE_DIR) / "tests" / "gateway-node";
  const fs::path dir = fs::path(LLMC_BINARY_DIR) / "gateway-node";
  fs::create_directories(dir);
  // ctest runs the SDK tests side by side: one npm install in the directory at a time.
  const int lock = ::open((dir / ".lock").c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
  if (lock < 0 || ::flock(lock, LOCK_EX) != 0)
    throw std::runtime_error("cannot lock " + dir.string());
  struct Unlock {
    int fd;
    ~Unlock() { ::close(fd); }
  } unlock{lock};
  for (const char* file :
       {"package.json", "openai_sdk_test.mjs", "anthropic_sdk_test.mjs", "genai_sdk_test.mjs"}) {
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

/// Runs one SDK's script against a fresh gateway and fake provider; its last line says OK.
void run_sdk_script(const std::string& script, const std::string& ok_line) {
  const fs::path project = prepare_node_project();  // before the harness clears proxy variables
  llmc_test::FakeProvider fake;
  GatewayProcess gateway(fake);
  int exit_code = 0;
  const std::string output =
      run("cd '" + project.string() + "' && GATEWAY_URL=" + gateway.base_url() +
              " FAKE_URL=" + fake.base_url() + " node " + script,
          exit_code);
  EXPECT_EQ(exit_code, 0) << output;
  EXPECT_NE(output.find(ok_line), std::string::npos) << output;
}

TEST(GatewayNode, OfficialOpenAiPackageGetsHitsForRepeatedCallsAndStreams) {
  run_sdk_script("openai_sdk_test.mjs", "openai-sdk: OK");
}

TEST(GatewayNode, OfficialAnthropicPackageGetsHitsForRepeatedCallsAndStreams) {
  run_sdk_script("anthropic_sdk_test.mjs", "anthropic-sdk: OK");
}

TEST(GatewayNode, OfficialGoogleGenAiPackageGetsHitsUnderEveryApiVersion) {
  run_sdk_script("genai_sdk_test.mjs", "genai-sdk: OK");
}

}  // namespace
