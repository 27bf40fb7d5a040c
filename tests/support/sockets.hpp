// Test helper: the TCP connections a process holds open, read from /proc (Linux), to check
// that a process lets go of its sockets (no leak, no idle connection kept past its timeout).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>

namespace llmc_test {

/// TCP sockets that process `pid` holds open (a file descriptor of its own) with the remote
/// port `remote_port`, whatever their state (established, or closed by the peer and not yet by
/// the process). Throws std::runtime_error when /proc cannot be read.
std::size_t open_sockets_to(pid_t pid, std::uint16_t remote_port);

}  // namespace llmc_test
