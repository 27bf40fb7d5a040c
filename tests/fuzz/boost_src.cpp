// Boost.JSON and Boost.URL compiled into the fuzz targets, instrumented like our own code (the
// shared libraries Debian ships are not), so the fuzzer's coverage reaches into the parsers.
#include <boost/json/src.hpp>
#include <boost/url/src.hpp>
