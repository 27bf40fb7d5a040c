// Redis Cluster routing, pure (no I/O; tests/unit/test_cluster_slots.cpp): the CRC16 hash slot
// of a key, the hash tag that keeps an entry, its lock and its release signal in one slot, which
// argument of a command is its key, MOVED/ASK replies, the slot map read from CLUSTER SLOTS, and
// what a replica's answer to a read means. The I/O around it is redis_cluster.cpp.
#pragma once

#include "cache/redis_protocol.hpp"
#include "llm_caching/cache_options.hpp"

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace llm_caching::cache {

inline constexpr std::uint16_t kClusterSlots = 16384;

/// CRC16 (XMODEM) of `key`'s hash tag (the text between its first '{' and the next '}', when
/// not empty) or of the whole key, modulo 16384: the slot Redis Cluster stores the key in.
std::uint16_t key_slot(std::string_view key);

/// The name a key has on a cluster: its last ':'-separated part in braces, so that
/// `llm-caching:v1:ns:<hex>`, `llm-caching:lock:llm-caching:v1:ns:<hex>` and the lock's release
/// signal and waiter mark (the same storage key behind a brace-free prefix) hash to one slot,
/// and the scripts that touch several of them never meet CROSSSLOT. A prefix SCAN MATCH still
/// finds them.
std::string cluster_key(std::string_view key);
/// The inverse of cluster_key (a name without the braces is returned as it is).
std::string storage_key_of(std::string_view cluster_name);

/// The argument of `command` that names its key (GET/SET/DEL/UNLINK/BRPOPLPUSH: the first;
/// EVAL/EVALSHA: the first of KEYS); nullopt for a keyless command (SCAN, INFO, ...).
std::optional<std::string_view> routing_key(const RedisCommand& command);

/// A `MOVED <slot> <host>:<port>` or `ASK <slot> <host>:<port>` error reply. An empty host
/// (`:7001`) means the host of the node that answered: `answered_by`.
struct ClusterRedirect {
  enum class Kind { moved, ask };
  Kind kind = Kind::moved;
  std::uint16_t slot = 0;
  RedisEndpoint to;
};
std::optional<ClusterRedirect> parse_redirect(const RedisReply& reply,
                                              std::string_view answered_by);

/// What a replica's reply to an entry read (GET, `read_from_replicas`) means for the call.
enum class ReplicaAnswer {
  /// A value: the answer (at worst a little older than the master's, as replication goes).
  served,
  /// Nil: the entry may be written but not replicated yet (lag, a link down): ask the master.
  /// A replica's miss is never final, so a call that misses there finds what another just wrote.
  absent,
  /// MOVED or ASK: the slot is no longer (or not only) this replica's master's: ask the master
  /// (which redirects as for any command) and read the slot map again.
  moved,
  /// Any other error (LOADING while it syncs, MASTERDOWN with its link down and stale reads off,
  /// CLUSTERDOWN, TRYAGAIN, ...): ask the master, and leave the replica alone for a while.
  unavailable,
};
ReplicaAnswer judge_replica_reply(const RedisReply& reply);

/// A master, its replicas and the slot ranges it serves.
struct ClusterShard {
  RedisEndpoint master;
  std::vector<RedisEndpoint> replicas;
  std::vector<std::pair<std::uint16_t, std::uint16_t>> ranges;  ///< inclusive
};

/// The reply of CLUSTER SLOTS as shards (one per master, its ranges merged). A node with an
/// empty address is `answered_by`'s host (Redis writes "" for "the host you asked").
/// Throws std::runtime_error on a reply of another shape.
std::vector<ClusterShard> parse_cluster_slots(const RedisReply& reply,
                                              std::string_view answered_by);

/// Which master serves each slot.
class SlotMap {
 public:
  SlotMap();
  explicit SlotMap(std::vector<ClusterShard> shards);

  /// The master serving `slot`, or nullptr when no master does (a cluster being set up).
  const RedisEndpoint* master_of(std::uint16_t slot) const;
  /// The index in shards() of the master serving `slot`; -1 when none does.
  int shard_of(std::uint16_t slot) const;
  /// Every master, sorted by address (a stable order for fan-outs and cursors).
  std::vector<RedisEndpoint> masters() const;
  const std::vector<ClusterShard>& shards() const noexcept { return shards_; }
  /// A MOVED reply: `slot` is now `to`'s (a master not known yet is added, without ranges).
  void move_slot(std::uint16_t slot, const RedisEndpoint& to);
  /// Every slot has a master.
  bool complete() const;

 private:
  static constexpr std::uint16_t kNone = 0xffff;
  std::vector<ClusterShard> shards_;
  std::array<std::uint16_t, kClusterSlots> owner_;  ///< index into shards_, or kNone
};

}  // namespace llm_caching::cache
