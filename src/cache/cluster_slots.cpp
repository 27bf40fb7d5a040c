#include "cache/cluster_slots.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <stdexcept>
#include <tuple>

namespace llm_caching::cache {
namespace {

/// CRC16-CCITT (XMODEM: polynomial 0x1021, initial value 0), the one Redis Cluster uses.
constexpr std::array<std::uint16_t, 256> make_crc16_table() {
  std::array<std::uint16_t, 256> table{};
  for (std::uint16_t i = 0; i < 256; ++i) {
    std::uint16_t crc = static_cast<std::uint16_t>(i << 8);
    for (int bit = 0; bit < 8; ++bit) {
      crc = static_cast<std::uint16_t>((crc & 0x8000) ? (crc << 1) ^ 0x1021 : crc << 1);
    }
    table[i] = crc;
  }
  return table;
}
constexpr auto kCrc16Table = make_crc16_table();

std::uint16_t crc16(std::string_view data) {
  std::uint16_t crc = 0;
  for (unsigned char c : data) {
    crc = static_cast<std::uint16_t>((crc << 8) ^ kCrc16Table[((crc >> 8) ^ c) & 0xff]);
  }
  return crc;
}

bool same(const RedisEndpoint& a, const RedisEndpoint& b) {
  return a.host == b.host && a.port == b.port;
}

std::optional<std::uint64_t> number(std::string_view text) {
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

/// "host:port" (the port after the last ':', so an IPv6 host needs no brackets here).
std::optional<RedisEndpoint> endpoint_of(std::string_view text, std::string_view answered_by) {
  const std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  const auto port = number(text.substr(colon + 1));
  if (!port || *port == 0 || *port > 65535) return std::nullopt;
  RedisEndpoint endpoint;
  endpoint.host = std::string(colon == 0 ? answered_by : text.substr(0, colon));
  endpoint.port = static_cast<std::uint16_t>(*port);
  return endpoint;
}

/// One node of a CLUSTER SLOTS range: [host, port, id, ...].
RedisEndpoint node_of(const RedisReply& node, std::string_view answered_by) {
  if (node.kind != RedisReply::Kind::array || node.elements.size() < 2 ||
      node.elements[1].kind != RedisReply::Kind::integer || node.elements[1].integer < 1 ||
      node.elements[1].integer > 65535) {
    throw std::runtime_error("CLUSTER SLOTS: a node is not [host, port, ...]");
  }
  RedisEndpoint endpoint;
  endpoint.host = node.elements[0].text;
  if (endpoint.host.empty() || endpoint.host == "?") endpoint.host = std::string(answered_by);
  endpoint.port = static_cast<std::uint16_t>(node.elements[1].integer);
  return endpoint;
}

}  // namespace

std::uint16_t key_slot(std::string_view key) {
  const std::size_t open = key.find('{');
  if (open != std::string_view::npos) {
    const std::size_t close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1) {
      key = key.substr(open + 1, close - open - 1);
    }
  }
  return static_cast<std::uint16_t>(crc16(key) % kClusterSlots);
}

std::string cluster_key(std::string_view key) {
  const std::size_t colon = key.rfind(':');
  const std::size_t start = colon == std::string_view::npos ? 0 : colon + 1;
  std::string out;
  out.reserve(key.size() + 2);
  out.append(key.substr(0, start)).append("{").append(key.substr(start)).append("}");
  return out;
}

std::string storage_key_of(std::string_view cluster_name) {
  const std::size_t colon = cluster_name.rfind(':');
  const std::size_t start = colon == std::string_view::npos ? 0 : colon + 1;
  if (cluster_name.size() < start + 2 || cluster_name[start] != '{' || cluster_name.back() != '}') {
    return std::string(cluster_name);
  }
  std::string out(cluster_name.substr(0, start));
  out.append(cluster_name.substr(start + 1, cluster_name.size() - start - 2));
  return out;
}

std::optional<std::string_view> routing_key(const RedisCommand& command) {
  if (command.size() < 2) return std::nullopt;
  // Case-insensitive, without a copy: this runs for every command.
  const auto is = [name = std::string_view(command[0])](std::string_view upper) {
    return name.size() == upper.size() &&
           std::equal(name.begin(), name.end(), upper.begin(), [](char a, char b) {
             return std::toupper(static_cast<unsigned char>(a)) == b;
           });
  };
  if (is("GET") || is("SET")) return command[1];
  if (is("EVAL") || is("EVALSHA")) {
    const auto keys = number(command.size() > 2 ? command[2] : std::string_view{});
    if (!keys || *keys == 0 || command.size() < 4) return std::nullopt;
    return command[3];
  }
  for (std::string_view keyless :
       {"SCAN", "INFO", "DBSIZE", "PING", "CLUSTER", "CLIENT", "FLUSHALL", "FLUSHDB"}) {
    if (is(keyless)) return std::nullopt;
  }
  return command[1];
}

std::optional<ClusterRedirect> parse_redirect(const RedisReply& reply,
                                              std::string_view answered_by) {
  if (!reply.is_error()) return std::nullopt;
  const std::string_view text = reply.text;
  ClusterRedirect redirect;
  std::string_view rest;
  if (text.starts_with("MOVED ")) {
    rest = text.substr(6);
  } else if (text.starts_with("ASK ")) {
    redirect.kind = ClusterRedirect::Kind::ask;
    rest = text.substr(4);
  } else {
    return std::nullopt;
  }
  const std::size_t space = rest.find(' ');
  if (space == std::string_view::npos) return std::nullopt;
  const auto slot = number(rest.substr(0, space));
  const auto to = endpoint_of(rest.substr(space + 1), answered_by);
  if (!slot || *slot >= kClusterSlots || !to) return std::nullopt;
  redirect.slot = static_cast<std::uint16_t>(*slot);
  redirect.to = *to;
  return redirect;
}

ReplicaAnswer judge_replica_reply(const RedisReply& reply) {
  if (!reply.is_error()) {
    return reply.kind == RedisReply::Kind::string ? ReplicaAnswer::served : ReplicaAnswer::absent;
  }
  const std::string_view code = reply.error_code();
  if (code == "MOVED" || code == "ASK") return ReplicaAnswer::moved;
  return ReplicaAnswer::unavailable;
}

std::vector<ClusterShard> parse_cluster_slots(const RedisReply& reply,
                                              std::string_view answered_by) {
  if (reply.kind != RedisReply::Kind::array) {
    throw std::runtime_error("CLUSTER SLOTS did not answer with an array");
  }
  std::vector<ClusterShard> shards;
  for (const RedisReply& range : reply.elements) {
    if (range.kind != RedisReply::Kind::array || range.elements.size() < 3 ||
        range.elements[0].kind != RedisReply::Kind::integer ||
        range.elements[1].kind != RedisReply::Kind::integer) {
      throw std::runtime_error("CLUSTER SLOTS: a range is not [start, end, master, ...]");
    }
    const long long first = range.elements[0].integer;
    const long long last = range.elements[1].integer;
    if (first < 0 || last < first || last >= kClusterSlots) {
      throw std::runtime_error("CLUSTER SLOTS: a range is outside 0..16383");
    }
    const RedisEndpoint master = node_of(range.elements[2], answered_by);
    auto shard = std::find_if(shards.begin(), shards.end(),
                              [&](const ClusterShard& s) { return same(s.master, master); });
    if (shard == shards.end()) {
      shard = shards.insert(shards.end(), ClusterShard{.master = master});
      for (std::size_t i = 3; i < range.elements.size(); ++i) {
        shard->replicas.push_back(node_of(range.elements[i], answered_by));
      }
    }
    shard->ranges.emplace_back(static_cast<std::uint16_t>(first), static_cast<std::uint16_t>(last));
  }
  return shards;
}

SlotMap::SlotMap() {
  owner_.fill(kNone);
}

SlotMap::SlotMap(std::vector<ClusterShard> shards) : shards_(std::move(shards)) {
  owner_.fill(kNone);
  for (std::size_t i = 0; i < shards_.size(); ++i) {
    for (const auto& [first, last] : shards_[i].ranges) {
      for (std::uint32_t slot = first; slot <= last; ++slot) {
        owner_[slot] = static_cast<std::uint16_t>(i);
      }
    }
  }
}

const RedisEndpoint* SlotMap::master_of(std::uint16_t slot) const {
  const std::uint16_t index = owner_[slot % kClusterSlots];
  return index == kNone ? nullptr : &shards_[index].master;
}

int SlotMap::shard_of(std::uint16_t slot) const {
  const std::uint16_t index = owner_[slot % kClusterSlots];
  return index == kNone ? -1 : static_cast<int>(index);
}

std::vector<RedisEndpoint> SlotMap::masters() const {
  std::vector<RedisEndpoint> out;
  for (const auto& shard : shards_) {
    if (!shard.ranges.empty()) out.push_back(shard.master);
  }
  std::sort(out.begin(), out.end(), [](const RedisEndpoint& a, const RedisEndpoint& b) {
    return std::tie(a.host, a.port) < std::tie(b.host, b.port);
  });
  return out;
}

void SlotMap::move_slot(std::uint16_t slot, const RedisEndpoint& to) {
  auto shard = std::find_if(shards_.begin(), shards_.end(),
                            [&](const ClusterShard& s) { return same(s.master, to); });
  if (shard == shards_.end()) shard = shards_.insert(shards_.end(), ClusterShard{.master = to});
  owner_[slot % kClusterSlots] = static_cast<std::uint16_t>(shard - shards_.begin());
}

bool SlotMap::complete() const {
  return std::none_of(owner_.begin(), owner_.end(), [](std::uint16_t o) { return o == kNone; });
}

}  // namespace llm_caching::cache
