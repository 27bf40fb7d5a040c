// Helpers shared by the codec tests: recorded provider fixtures and catching ProviderError.
#pragma once

#include "llm_caching/errors.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <string>

namespace llmc_test {

/// A file of tests/data/providers/, whole.
inline std::string fixture(const std::string& name) {
  std::ifstream in(std::string(LLMC_TEST_DATA_DIR) + "/providers/" + name, std::ios::binary);
  EXPECT_TRUE(in.good()) << "missing fixture " << name;
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// The ProviderError `f` throws; a test failure when it throws none.
template <class F>
llm_caching::ProviderError provider_error(F&& f) {
  try {
    f();
  } catch (const llm_caching::ProviderError& e) {
    return e;
  }
  ADD_FAILURE() << "no ProviderError";
  return llm_caching::ProviderError("none", 0, "", "");
}

}  // namespace llmc_test
