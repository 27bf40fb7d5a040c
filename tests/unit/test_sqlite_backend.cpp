// SqliteBackend: persistence, TTL, size bound, prefix clear, several processes on one file, and
// clear errors for files it must not use.
#include "cache/run_blocking.hpp"
#include "cache/sqlite_backend.hpp"
#include "llm_caching/errors.hpp"

#include <sched.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

namespace llm_caching::cache {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using ::testing::AllOf;
using ::testing::HasSubstr;

struct FakeClock {
  std::shared_ptr<std::atomic<std::int64_t>> now =
      std::make_shared<std::atomic<std::int64_t>>(1'700'000'000'000);
  NowMs fn() const {
    return [now = now] { return now->load(); };
  }
  void advance(std::int64_t ms) { *now += ms; }
};

class SqliteBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "llmc-sqlite-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    path_ = dir_ / "cache.db";
  }
  void TearDown() override { fs::remove_all(dir_); }

  SqliteOptions options(std::uint64_t max_bytes = kGiB) const {
    return SqliteOptions{.path = path_, .max_bytes = max_bytes};
  }
  /// Runs SQL on the file directly, as another program (or an older/newer build) would.
  void raw_sql(const char* sql) const {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    char* error = nullptr;
    const int rc = sqlite3_exec(db, sql, nullptr, nullptr, &error);
    EXPECT_EQ(rc, SQLITE_OK) << (error ? error : "");
    sqlite3_free(error);
    sqlite3_close(db);
  }
  /// A cache file as schema 2 wrote it (rows stored under their id, a key index), holding `keys`
  /// with the values "answer <key>" and last_access = 1000 + their position.
  void write_schema_2_file(const std::vector<std::string>& keys) const {
    std::string sql = R"sql(
BEGIN;
CREATE TABLE meta(name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE entries(id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, value BLOB NOT NULL,
  expires_at INTEGER NOT NULL DEFAULT 0, size INTEGER NOT NULL, last_access INTEGER NOT NULL);
CREATE INDEX entries_by_last_access ON entries(last_access);
CREATE INDEX entries_by_expiry ON entries(expires_at) WHERE expires_at > 0;
CREATE TRIGGER entries_insert AFTER INSERT ON entries BEGIN
  UPDATE meta SET value = value + NEW.size WHERE name = 'total_bytes';
  UPDATE meta SET value = value + 1 WHERE name = 'entry_count';
END;
CREATE TRIGGER entries_delete AFTER DELETE ON entries BEGIN
  UPDATE meta SET value = value - OLD.size WHERE name = 'total_bytes';
  UPDATE meta SET value = value - 1 WHERE name = 'entry_count';
END;
CREATE TRIGGER entries_resize AFTER UPDATE OF size ON entries BEGIN
  UPDATE meta SET value = value + NEW.size - OLD.size WHERE name = 'total_bytes';
END;
INSERT INTO meta(name, value) VALUES ('total_bytes', 0), ('entry_count', 0), ('schema_version', 2);
)sql";
    // Inserted newest first: an eviction that followed the order of insertion instead of
    // last_access would evict the wrong entries.
    for (std::size_t i = keys.size(); i-- > 0;) {
      const std::string value = "answer " + keys[i];
      sql += "INSERT INTO entries(id, key, value, size, last_access) VALUES (" +
             std::to_string(sqlite_entry_id(keys[i])) + ", '" + keys[i] + "', '" + value + "', " +
             std::to_string(keys[i].size() + value.size()) + ", " + std::to_string(1000 + i) + ");";
    }
    sql += "COMMIT;";
    raw_sql(sql.c_str());
  }
  std::string open_error() const {
    try {
      SqliteBackend backend(options());
    } catch (const CacheError& e) {
      return e.what();
    }
    ADD_FAILURE() << "opening " << path_ << " did not throw CacheError";
    return {};
  }

  fs::path dir_;
  fs::path path_;
};

/// Runs in a fresh process (the death test re-executes the binary): `initialize_first` says
/// whether the program initializes SQLite before opening the cache. Exits 0 when SQLite's
/// memory statistics are off, 1 when they are on.
[[noreturn]] void exit_with_memory_statistics(const fs::path& path, bool initialize_first) {
  if (initialize_first) sqlite3_initialize();
  {
    SqliteBackend backend(SqliteOptions{.path = path});
    backend.put_now("k", std::string(10'000, 'v'), milliseconds(0));
    if (backend.get_now("k") != std::string(10'000, 'v')) std::_Exit(2);
  }
  sqlite3* db = nullptr;  // a connection of the program's own: SQLite holds memory for it
  sqlite3_open(":memory:", &db);
  const sqlite3_int64 used = sqlite3_memory_used();
  sqlite3_close(db);
  std::_Exit(used == 0 ? 0 : 1);
}

TEST_F(SqliteBackendTest, OpeningSwitchesOffMemoryStatisticsUnlessSqliteIsAlreadyInitialized) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(exit_with_memory_statistics(path_, false), ::testing::ExitedWithCode(0), "");
  fs::remove(path_);
  EXPECT_EXIT(exit_with_memory_statistics(dir_ / "other.db", true), ::testing::ExitedWithCode(1),
              "");
}

TEST_F(SqliteBackendTest, PutThenGetAndMiss) {
  SqliteBackend backend(options());
  backend.put_now("k", "value", milliseconds(0));
  EXPECT_EQ(backend.get_now("k"), "value");
  EXPECT_EQ(backend.get_now("other"), std::nullopt);
  const BackendStats stats = backend.stats_now();
  EXPECT_EQ(stats.hits, 1u);
  EXPECT_EQ(stats.misses, 1u);
  EXPECT_EQ(stats.writes, 1u);
  EXPECT_EQ(stats.entries, 1u);
  EXPECT_EQ(stats.bytes, 1u + 5u);
}

TEST_F(SqliteBackendTest, BinaryValuesEmptyValuesAndHostileKeysRoundTrip) {
  SqliteBackend backend(options());
  const std::string binary("a\0b\xff\x00z", 6);
  const std::string hostile = "k'); DROP TABLE entries; --";
  backend.put_now(hostile, binary, milliseconds(0));
  backend.put_now("empty", "", milliseconds(0));
  backend.put_now("null-view", std::string_view{}, milliseconds(0));
  EXPECT_EQ(backend.get_now(hostile), binary);
  EXPECT_EQ(backend.get_now("empty"), "");
  EXPECT_EQ(backend.get_now("null-view"), "");
  EXPECT_EQ(backend.stats_now().entries, 3u);
}

TEST_F(SqliteBackendTest, ReplacingAnEntryKeepsTotalsRight) {
  SqliteBackend backend(options());
  backend.put_now("k", std::string(100, 'a'), milliseconds(0));
  backend.put_now("k", std::string(10, 'b'), milliseconds(0));
  EXPECT_EQ(backend.get_now("k"), std::string(10, 'b'));
  EXPECT_EQ(backend.stats_now().entries, 1u);
  EXPECT_EQ(backend.stats_now().bytes, 11u);
}

TEST_F(SqliteBackendTest, PutManyStoresEveryItemKeepsTotalsAndTheBound) {
  FakeClock clock;
  SqliteBackend backend(options(10'000), clock.fn());
  const std::string value(998, 'v');  // 1,000 bytes per entry with its 2-byte key
  std::vector<Backend::PutItem> items;
  for (int i = 0; i < 10; ++i) items.push_back({"k" + std::to_string(i), value, milliseconds(0)});
  items.push_back({"kx", "expired already", milliseconds(-1)});     // stored by nobody, as put
  items.push_back({"k0", std::string(998, 'w'), milliseconds(0)});  // a repeat replaces
  backend.put_many_now(items);
  BackendStats stats = backend.stats_now();
  EXPECT_EQ(stats.entries, 10u);
  EXPECT_EQ(stats.bytes, 10'000u);
  EXPECT_EQ(stats.writes, 11u);
  EXPECT_EQ(backend.get_now("k0"), std::string(998, 'w'));
  EXPECT_EQ(backend.get_now("kx"), std::nullopt);

  // A batch that crosses the bound is evicted back under it once the batch is in.
  clock.advance(kLastAccessGranularityMs);
  cache::run_blocking(
      backend.put_many({{"kA", value, milliseconds(0)}, {"kB", value, milliseconds(0)}}));
  stats = backend.stats_now();
  EXPECT_LE(stats.bytes, 9'000u);
  EXPECT_TRUE(backend.get_now("kA"));
  EXPECT_TRUE(backend.get_now("kB"));
}

TEST_F(SqliteBackendTest, EntriesPersistAcrossReopen) {
  {
    SqliteBackend backend(options());
    backend.put_now("persisted", "still here", milliseconds(0));
  }
  SqliteBackend reopened(options());
  EXPECT_EQ(reopened.get_now("persisted"), "still here");
  EXPECT_EQ(reopened.stats_now().entries, 1u);
}

// The WAL is moved into the database file by the backend's checkpoint thread (not by the commit
// that fills it, under the backend's mutex): while the backend stays open, the file grows.
TEST_F(SqliteBackendTest, TheWalIsCheckpointedInTheBackgroundWhileOpen) {
  SqliteBackend backend(options());
  const std::string value(16 * 1024, 'v');
  for (int i = 0; i < 4'000; ++i) {  // ~64 MB: many times SQLite's 1,000-page WAL threshold
    backend.put_now("k" + std::to_string(i), value, milliseconds(0));
  }
  // A checkpoint writes the pages into the file itself; waiting for that is a condition, not a
  // duration (bounded so a broken build fails instead of hanging).
  bool checkpointed = false;
  for (int i = 0; i < 1'000 && !checkpointed; ++i) {
    checkpointed = fs::file_size(path_) > 8u * 1024 * 1024;
    if (!checkpointed) std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_TRUE(checkpointed) << "database file " << fs::file_size(path_) << " bytes, WAL "
                            << fs::file_size(path_.string() + "-wal") << " bytes";
  // The WAL was reused rather than grown to hold every write (the committing connection
  // checkpoints itself past 4,000 pages, ~16 MB, when the background thread falls behind).
  EXPECT_LT(fs::file_size(path_.string() + "-wal"), 40u * 1024 * 1024);
  EXPECT_EQ(backend.get_now("k0"), value);
  EXPECT_EQ(backend.get_now("k3999"), value);
  // The checkpoint thread, started by this (normal priority) thread's commits, runs at idle
  // priority: no request waits for it.
  int checkpoint_threads = 0;
  for (const auto& task : fs::directory_iterator("/proc/self/task")) {
    std::ifstream comm(task.path() / "comm");
    std::string name;
    std::getline(comm, name);
    if (name != "llmc-checkpoint") continue;
    ++checkpoint_threads;
    EXPECT_EQ(sched_getscheduler(std::stoi(task.path().filename().string())), SCHED_IDLE);
  }
  EXPECT_EQ(checkpoint_threads, 1);
  EXPECT_NE(sched_getscheduler(0), SCHED_IDLE);
}

TEST_F(SqliteBackendTest, CreatesPrivateDirectoriesAndFile) {
  const fs::path nested = dir_ / "a" / "b" / "cache.db";
  SqliteBackend backend(SqliteOptions{.path = nested});
  backend.put_now("k", "v", milliseconds(0));
  struct stat st {};
  ASSERT_EQ(::stat(nested.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat((dir_ / "a").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(::stat((dir_ / "a" / "b").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
}

TEST_F(SqliteBackendTest, ExpiredEntryIsAMissAndPruneRemovesIt) {
  FakeClock clock;
  SqliteBackend backend(options(), clock.fn());
  backend.put_now("short", "v", milliseconds(100));
  backend.put_now("forever", "v", milliseconds(0));
  clock.advance(99);
  EXPECT_TRUE(backend.get_now("short"));
  clock.advance(1);
  EXPECT_FALSE(backend.get_now("short"));
  EXPECT_EQ(backend.stats_now().expired, 1u);
  EXPECT_EQ(backend.prune_now(), 1u);
  EXPECT_EQ(backend.stats_now().entries, 1u);
  clock.advance(10LL * 365 * 24 * 3600 * 1000);
  EXPECT_TRUE(backend.get_now("forever"));
}

TEST_F(SqliteBackendTest, ExpiryIsStoredInTheFile) {
  FakeClock clock;
  {
    SqliteBackend writer(options(), clock.fn());
    writer.put_now("k", "v", milliseconds(1000));
  }
  clock.advance(1000);
  SqliteBackend reader(options(), clock.fn());
  EXPECT_FALSE(reader.get_now("k"));
}

TEST_F(SqliteBackendTest, SizeBoundEvictsLeastRecentlyAccessedDownToNinetyPercent) {
  FakeClock clock;
  SqliteBackend backend(options(10'000), clock.fn());
  const std::string value(998, 'v');  // 2-byte key + 998 = 1000 bytes per entry
  for (int i = 0; i < 10; ++i) {
    backend.put_now("k" + std::to_string(i), value, milliseconds(0));
    clock.advance(kLastAccessGranularityMs);
  }
  EXPECT_EQ(backend.stats_now().evictions, 0u);  // exactly at the bound is fine
  ASSERT_TRUE(backend.get_now("k0"));            // k0 becomes the most recently accessed
  clock.advance(kLastAccessGranularityMs);
  backend.put_now("kA", value, milliseconds(0));  // 11,000 > 10,000: evict down to 9,000

  const BackendStats stats = backend.stats_now();
  EXPECT_EQ(stats.evictions, 2u);
  EXPECT_EQ(stats.bytes, 9000u);
  EXPECT_TRUE(backend.get_now("k0"));
  EXPECT_FALSE(backend.get_now("k1"));
  EXPECT_FALSE(backend.get_now("k2"));
  for (const char* key : {"k3", "k9", "kA"}) EXPECT_TRUE(backend.get_now(key)) << key;
}

TEST_F(SqliteBackendTest, EvictionDropsExpiredEntriesBeforeLiveOnes) {
  FakeClock clock;
  SqliteBackend backend(options(5'000), clock.fn());
  const std::string value(998, 'v');
  backend.put_now("e1", value, milliseconds(10));
  backend.put_now("e2", value, milliseconds(10));
  clock.advance(kLastAccessGranularityMs);
  for (const char* key : {"l1", "l2", "l3", "l4"}) backend.put_now(key, value, milliseconds(0));
  const BackendStats stats = backend.stats_now();
  EXPECT_EQ(stats.expired, 2u);
  EXPECT_EQ(stats.evictions, 0u);
  for (const char* key : {"l1", "l2", "l3", "l4"}) EXPECT_TRUE(backend.get_now(key)) << key;
}

TEST_F(SqliteBackendTest, HitsRefreshLastAccessAtMostOncePerGranule) {
  FakeClock clock;
  SqliteBackend backend(options(), clock.fn());
  const std::int64_t written_at = clock.fn()();
  backend.put_now("k", "v", milliseconds(0));
  auto last_access = [&] {
    std::int64_t value = -1;
    sqlite3* db = nullptr;
    sqlite3_open(path_.c_str(), &db);
    sqlite3_stmt* stmt = nullptr;
    sqlite3_prepare_v2(db, "SELECT last_access FROM entries WHERE key = 'k'", -1, &stmt, nullptr);
    if (sqlite3_step(stmt) == SQLITE_ROW) value = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return value;
  };
  clock.advance(kLastAccessGranularityMs - 1);
  ASSERT_TRUE(backend.get_now("k"));
  EXPECT_EQ(last_access(), written_at);  // the read stayed read-only
  clock.advance(1);
  ASSERT_TRUE(backend.get_now("k"));
  EXPECT_EQ(last_access(), written_at + kLastAccessGranularityMs);
}

TEST_F(SqliteBackendTest, HitWhileAnotherConnectionHoldsTheWriteLockStillHits) {
  FakeClock clock;
  SqliteBackend backend(options(), clock.fn());
  backend.put_now("k", "v", milliseconds(0));
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  clock.advance(kLastAccessGranularityMs);  // this hit wants to refresh last_access
  EXPECT_EQ(backend.get_now("k"), "v");
  EXPECT_EQ(backend.stats_now().errors, 0u);
  sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(other);
}

TEST_F(SqliteBackendTest, ClearByPrefixIsARangeNotAPattern) {
  SqliteBackend backend(options());
  for (const char* key : {"ns1:a", "ns1:b", "ns10:c", "ns2:d", "a%b", "abc", "a_c", "axc"}) {
    backend.put_now(key, "v", milliseconds(0));
  }
  EXPECT_EQ(backend.clear_now("ns1:"), 2u);
  EXPECT_TRUE(backend.get_now("ns10:c"));
  EXPECT_EQ(backend.clear_now("a%"), 1u);  // LIKE 'a%%' would take abc, a_c and axc too
  EXPECT_EQ(backend.clear_now("a_"), 1u);
  EXPECT_TRUE(backend.get_now("abc"));
  EXPECT_TRUE(backend.get_now("axc"));
  EXPECT_EQ(backend.clear_now(""), 4u);
  EXPECT_EQ(backend.stats_now().entries, 0u);
  EXPECT_EQ(backend.stats_now().bytes, 0u);
}

TEST_F(SqliteBackendTest, ClearPrefixEndingInByteFF) {
  SqliteBackend backend(options());
  backend.put_now(
      "p\xff"
      "1",
      "v", milliseconds(0));
  backend.put_now("p\xff\xff", "v", milliseconds(0));
  backend.put_now("q", "v", milliseconds(0));
  EXPECT_EQ(backend.clear_now("p\xff"), 2u);
  EXPECT_TRUE(backend.get_now("q"));
}

TEST_F(SqliteBackendTest, Erase) {
  SqliteBackend backend(options());
  backend.put_now("k", "v", milliseconds(0));
  EXPECT_TRUE(backend.erase_now("k"));
  EXPECT_FALSE(backend.erase_now("k"));
  EXPECT_FALSE(backend.get_now("k"));
}

TEST_F(SqliteBackendTest, AwaitableInterfaceAndDescribe) {
  SqliteBackend backend(options());
  Backend& l2 = backend;
  run_blocking(l2.put("k", "v", milliseconds(0)));
  EXPECT_EQ(run_blocking(l2.get("k")), "v");
  EXPECT_EQ(run_blocking(l2.clear("k")), 1u);
  EXPECT_EQ(run_blocking(l2.prune()), 0u);
  EXPECT_EQ(run_blocking(l2.stats()).entries, 0u);
  EXPECT_EQ(l2.describe(), "sqlite://" + path_.string());
}

TEST_F(SqliteBackendTest, TwoInstancesOnOneFileSeeEachOthersWrites) {
  SqliteBackend a(options());
  SqliteBackend b(options());
  a.put_now("from-a", "1", milliseconds(0));
  b.put_now("from-b", "2", milliseconds(0));
  EXPECT_EQ(b.get_now("from-a"), "1");
  EXPECT_EQ(a.get_now("from-b"), "2");
  EXPECT_TRUE(b.erase_now("from-a"));
  EXPECT_FALSE(a.get_now("from-a"));
  EXPECT_EQ(a.stats_now().entries, 1u);
}

TEST_F(SqliteBackendTest, ThreadsShareOneInstance) {
  SqliteBackend backend(options());
  std::vector<std::thread> threads;
  std::atomic<int> lost{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        const std::string key = "t" + std::to_string(t) + ":" + std::to_string(i);
        backend.put_now(key, key, milliseconds(0));
        if (backend.get_now(key) != key) ++lost;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(lost.load(), 0);
  EXPECT_EQ(backend.stats_now().entries, 800u);
  EXPECT_EQ(backend.stats_now().errors, 0u);
}

/// Writes `count` keys tagged `who`, then waits until all `total` keys of every writer are
/// visible. Returns 0 on success, else a code saying what went wrong.
int write_then_read_all(const SqliteOptions& options, const std::string& who, int count,
                        const std::vector<std::string>& writers) {
  try {
    SqliteBackend backend(options);
    for (int i = 0; i < count; ++i) {
      const std::string key = who + ":" + std::to_string(i);
      backend.put_now(key, "value " + key, milliseconds(0));
    }
    // The other writer may still be running: poll (a hang guard, not a speed assertion).
    for (int round = 0; round < 6000; ++round) {
      int seen = 0;
      for (const std::string& writer : writers) {
        for (int i = 0; i < count; ++i) {
          const std::string key = writer + ":" + std::to_string(i);
          if (auto value = backend.get_now(key)) seen += *value == "value " + key ? 1 : 0;
        }
      }
      if (seen == count * static_cast<int>(writers.size())) {
        return backend.stats_now().errors == 0 ? 0 : 3;
      }
      std::this_thread::sleep_for(milliseconds(10));
    }
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", who.c_str(), e.what());
    return 1;
  }
}

TEST_F(SqliteBackendTest, TwoProcessesWriteAndReadOneFileConcurrently) {
  const std::vector<std::string> writers = {"parent", "child"};
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) ::_exit(write_then_read_all(options(), "child", 500, writers));
  const int parent_result = write_then_read_all(options(), "parent", 500, writers);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "child failed";
  EXPECT_EQ(parent_result, 0);
  SqliteBackend after(options());
  EXPECT_EQ(after.stats_now().entries, 1000u);
}

TEST_F(SqliteBackendTest, NotASqliteFileNamesTheFileAndTheWayOut) {
  std::ofstream(path_) << std::string(4096, 'x');
  EXPECT_THAT(open_error(), AllOf(HasSubstr(path_.string()), HasSubstr("llm-caching cache clear"),
                                  HasSubstr("delete")));
}

TEST_F(SqliteBackendTest, CorruptedPagesAreReportedAsCacheError) {
  {
    SqliteBackend backend(options());
    for (int i = 0; i < 200; ++i) {
      backend.put_now("k" + std::to_string(i), std::string(500, 'v'), milliseconds(0));
    }
  }
  raw_sql("PRAGMA wal_checkpoint(TRUNCATE)");
  {
    // Scribble over everything after the header page: b-tree pages become garbage.
    std::fstream file(path_, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(4096);
    const std::string junk(64 * 1024, '\x5a');
    file.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  }
  try {
    SqliteBackend backend(options());
    for (int i = 0; i < 200; ++i) backend.get_now("k" + std::to_string(i));
    ADD_FAILURE() << "no CacheError on a corrupted file";
  } catch (const CacheError& e) {
    EXPECT_THAT(e.what(), AllOf(HasSubstr(path_.string()), HasSubstr("llm-caching cache clear")));
  }
}

TEST_F(SqliteBackendTest, DatabaseOfAnotherProgramIsRefused) {
  raw_sql("CREATE TABLE customers(id INTEGER PRIMARY KEY, name TEXT)");
  EXPECT_THAT(open_error(), AllOf(HasSubstr(path_.string()), HasSubstr("another program")));
}

TEST_F(SqliteBackendTest, RowWhoseStoredKeyDiffersIsAMissNotAnotherKeysAnswer) {
  // Rows are found by a 63-bit hash of the key; the stored key is compared, so even a hash
  // collision can never serve another key's entry.
  {
    SqliteBackend backend(options());
    backend.put_now("llm-caching:v1:a:key-one", "answer one", milliseconds(0));
  }
  raw_sql("UPDATE entries SET key = 'llm-caching:v1:b:key-two'");  // as a colliding key would
  SqliteBackend backend(options());
  EXPECT_EQ(backend.get_now("llm-caching:v1:a:key-one"), std::nullopt);
}

TEST_F(SqliteBackendTest, OlderSchemaIsRefusedWithAHint) {
  { SqliteBackend backend(options()); }
  raw_sql("UPDATE meta SET value = 1 WHERE name = 'schema_version'");
  EXPECT_THAT(open_error(), AllOf(HasSubstr("schema version 1"), HasSubstr("older"),
                                  HasSubstr("deleting it is safe")));
}

TEST_F(SqliteBackendTest, NewerSchemaIsRefused) {
  { SqliteBackend backend(options()); }
  raw_sql("UPDATE meta SET value = 4 WHERE name = 'schema_version'");
  EXPECT_THAT(open_error(), AllOf(HasSubstr(path_.string()), HasSubstr("schema version 4")));
}

std::uint64_t stored_size(const std::string& key) {
  return key.size() + std::string("answer " + key).size();
}

TEST_F(SqliteBackendTest, ASchema2FileIsUpgradedInPlaceKeepingEveryEntry) {
  const std::vector<std::string> keys = {"llm-caching:v1:a:oldest", "llm-caching:v1:a:middle",
                                         "llm-caching:v1:b:newest"};
  write_schema_2_file(keys);

  FakeClock clock;
  SqliteBackend backend(options(), clock.fn());
  for (const std::string& key : keys) EXPECT_EQ(backend.get_now(key), "answer " + key);
  BackendStats stats = backend.stats_now();
  EXPECT_EQ(stats.entries, 3u);
  EXPECT_EQ(stats.bytes, stored_size(keys[0]) + stored_size(keys[1]) + stored_size(keys[2]));
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  sqlite3_prepare_v2(db,
                     "SELECT (SELECT value FROM meta WHERE name = 'schema_version'), "
                     "(SELECT count(*) FROM sqlite_schema WHERE name = 'entries_v2')",
                     -1, &stmt, nullptr);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int64(stmt, 0), kSqliteSchemaVersion);
  EXPECT_EQ(sqlite3_column_int64(stmt, 1), 0);
  sqlite3_finalize(stmt);
  sqlite3_close(db);

  // The upgraded file works as a new one: replace, erase, clear by prefix, keep the totals.
  backend.put_now(keys[1], "replaced", milliseconds(0));
  EXPECT_EQ(backend.get_now(keys[1]), "replaced");
  EXPECT_TRUE(backend.erase_now(keys[0]));
  EXPECT_EQ(backend.clear_now("llm-caching:v1:b:"), 1u);
  stats = backend.stats_now();
  EXPECT_EQ(stats.entries, 1u);
  EXPECT_EQ(stats.bytes, keys[1].size() + std::string("replaced").size());
}

TEST_F(SqliteBackendTest, AnUpgradedFileEvictsByTheAccessTimesSchema2Recorded) {
  const std::vector<std::string> keys = {"llm-caching:v1:a:oldest", "llm-caching:v1:a:middle",
                                         "llm-caching:v1:b:newest"};
  write_schema_2_file(keys);
  const std::uint64_t three = stored_size(keys[0]) + stored_size(keys[1]) + stored_size(keys[2]);
  FakeClock clock;
  // Room for the three and not for a fourth: storing one evicts down to 90% of the bound,
  // least recently accessed first (the fourth is the most recent).
  SqliteBackend backend(options(three + 10), clock.fn());
  const std::string fourth = "llm-caching:v1:b:fourth";
  backend.put_now(fourth, "answer " + fourth, milliseconds(0));
  EXPECT_EQ(backend.get_now(keys[0]), std::nullopt);
  EXPECT_EQ(backend.get_now(keys[1]), std::nullopt);
  EXPECT_EQ(backend.get_now(keys[2]), "answer " + keys[2]);
  EXPECT_EQ(backend.get_now(fourth), "answer " + fourth);
  EXPECT_EQ(backend.stats_now().evictions, 2u);
}

TEST_F(SqliteBackendTest, ALargeSchema2FileIsUpgradedAChunkAtATime) {
  std::vector<std::string> keys;
  for (int i = 0; i < 10'000; ++i) keys.push_back("llm-caching:v1:bulk:" + std::to_string(i));
  write_schema_2_file(keys);
  SqliteBackend backend(options());
  const BackendStats stats = backend.stats_now();
  EXPECT_EQ(stats.entries, keys.size());
  std::uint64_t bytes = 0;
  for (const std::string& key : keys) bytes += stored_size(key);
  EXPECT_EQ(stats.bytes, bytes);
  for (const std::string& key : {keys.front(), keys[4095], keys[4096], keys.back()}) {
    EXPECT_EQ(backend.get_now(key), "answer " + key);
  }
}

TEST_F(SqliteBackendTest, RelativePathIsRefused) {
  EXPECT_THROW(SqliteBackend(SqliteOptions{.path = "relative/cache.db"}), CacheError);
}

}  // namespace
}  // namespace llm_caching::cache
