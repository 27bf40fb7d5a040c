#include "support/sockets.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <unordered_set>

namespace llmc_test {

namespace {

/// The inodes of the sockets among the process's file descriptors ("socket:[12345]").
std::unordered_set<std::string> socket_inodes(pid_t pid) {
  std::unordered_set<std::string> inodes;
  const std::filesystem::path fds = "/proc/" + std::to_string(pid) + "/fd";
  std::error_code ec;
  for (const auto& fd : std::filesystem::directory_iterator(fds, ec)) {
    std::error_code gone;  // a descriptor closed while we read
    const std::string target = std::filesystem::read_symlink(fd.path(), gone).string();
    if (!gone && target.starts_with("socket:[") && target.ends_with("]")) {
      inodes.insert(target.substr(8, target.size() - 9));
    }
  }
  if (ec) throw std::runtime_error("cannot list " + fds.string() + ": " + ec.message());
  return inodes;
}

}  // namespace

std::size_t open_sockets_to(pid_t pid, std::uint16_t remote_port) {
  const std::unordered_set<std::string> inodes = socket_inodes(pid);
  std::size_t count = 0;
  for (const char* table : {"tcp", "tcp6"}) {
    const std::string path = "/proc/" + std::to_string(pid) + "/net/" + table;
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot read " + path);
    std::string line;
    std::getline(in, line);  // the column names
    while (std::getline(in, line)) {
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...
      std::istringstream fields(line);
      std::string slot, local, remote, state, queues, timer, retransmits, uid, timeout, inode;
      fields >> slot >> local >> remote >> state >> queues >> timer >> retransmits >> uid >>
          timeout >> inode;
      const auto colon = remote.rfind(':');
      if (colon == std::string::npos) continue;
      const unsigned long port = std::stoul(remote.substr(colon + 1), nullptr, 16);
      if (port == remote_port && inodes.contains(inode)) ++count;
    }
  }
  return count;
}

}  // namespace llmc_test
