// A fixture, never compiled: a cache file that reaches for the providers layer, which DESIGN.md
// §8's arrows forbid. cmake/check_layers.cmake must refuse it (tests/CMakeLists.txt).
#include "providers/http_client.hpp"
