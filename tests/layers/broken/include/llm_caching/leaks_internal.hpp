// A fixture, never compiled: a public header that includes an internal one.
#pragma once

#include "core/entry.hpp"
