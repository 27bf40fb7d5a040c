#include "cache/sqlite_schema.hpp"

#include "cache/sqlite_backend.hpp"
#include "cache/sqlite_connection.hpp"
#include "llm_caching/errors.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace llm_caching::cache {
namespace {

constexpr const char* kMetaSchema = R"sql(
CREATE TABLE meta(name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT INTO meta(name, value) VALUES ('total_bytes', 0), ('entry_count', 0);
)sql";

// Schema 3. Rows are appended in write order (the implicit rowid): an insert rewrites the table's
// last page and one small leaf of the id index. Schema 2 stored rows under their id, so each
// insert rewrote a random 4 KiB leaf holding ~3 entries, and a key index leaf besides: 2.2x the
// CPU and 2.6x the WAL bytes per write. Looked up by id, a 63-bit hash of the key, through its
// index. The key is still stored and compared, so a hash collision is a miss, never another
// key's answer.
constexpr const char* kEntriesSchema = R"sql(
CREATE TABLE entries(
  id INTEGER NOT NULL UNIQUE,
  key TEXT NOT NULL,
  value BLOB NOT NULL,
  expires_at INTEGER NOT NULL DEFAULT 0, -- unix ms, 0 = never
  size INTEGER NOT NULL,                 -- bytes of key + value
  last_access INTEGER NOT NULL           -- unix ms, refreshed at most once a minute
);
CREATE INDEX entries_by_last_access ON entries(last_access);
CREATE INDEX entries_by_expiry ON entries(expires_at) WHERE expires_at > 0;
-- Totals kept by triggers, so every process sees the same numbers without scanning the table.
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
)sql";

// Schema 2 -> 3, in the opening connection's transaction: the old table is renamed, the rows
// move to a table of schema 3 a chunk at a time, each chunk deleted from the old table as it
// lands (so the pages it frees hold the next chunks and the file does not double), and the
// totals are counted again (the new triggers saw the copies but not the old rows).
constexpr const char* kMigrateFrom2 = R"sql(
DROP TRIGGER entries_insert;
DROP TRIGGER entries_delete;
DROP TRIGGER entries_resize;
DROP INDEX entries_by_last_access;
DROP INDEX entries_by_expiry;
ALTER TABLE entries RENAME TO entries_v2;
)sql";
constexpr const char* kMigrateFrom2Chunk = R"sql(
INSERT INTO entries(id, key, value, expires_at, size, last_access)
  SELECT id, key, value, expires_at, size, last_access FROM entries_v2 ORDER BY id LIMIT 4096;
DELETE FROM entries_v2 WHERE id <= (SELECT max(id) FROM entries);
)sql";
constexpr const char* kMigrateFrom2Finish = R"sql(
DROP TABLE entries_v2;
UPDATE meta SET value = (SELECT coalesce(sum(size), 0) FROM entries) WHERE name = 'total_bytes';
UPDATE meta SET value = (SELECT count(*) FROM entries) WHERE name = 'entry_count';
UPDATE meta SET value = 3 WHERE name = 'schema_version';
)sql";

void upgrade_from_schema_2(SqliteConnection& db) {
  const std::int64_t entries = db.query_int("SELECT count(*) FROM entries");
  spdlog::info(
      "SQLite cache {}: upgrading {} entries from schema 2 to 3 (once; a large file takes "
      "a minute or more)",
      db.path.string(), entries);
  db.exec(kMigrateFrom2, "upgrading the cache from schema 2");
  db.exec(kEntriesSchema, "upgrading the cache from schema 2");
  while (db.query_int("SELECT EXISTS (SELECT 1 FROM entries_v2)") != 0) {
    db.exec(kMigrateFrom2Chunk, "upgrading the cache from schema 2");
  }
  db.exec(kMigrateFrom2Finish, "upgrading the cache from schema 2");
}

void create_schema(SqliteConnection& db) {
  db.exec(kMetaSchema, "creating the schema");
  db.exec(kEntriesSchema, "creating the schema");
  const std::string version = fmt::format(
      "INSERT INTO meta(name, value) VALUES ('schema_version', {})", kSqliteSchemaVersion);
  db.exec(version.c_str(), "writing the schema version");
}

}  // namespace

SchemaStep schema_step(bool has_meta, std::int64_t tables, std::int64_t version) {
  if (!has_meta) return tables != 0 ? SchemaStep::refuse_foreign : SchemaStep::create;
  static_assert(kSqliteSchemaVersion == 3, "the upgrade from schema 2 writes schema 3");
  if (version == 2) return SchemaStep::upgrade_from_2;
  return version == kSqliteSchemaVersion ? SchemaStep::use : SchemaStep::refuse_version;
}

std::string schema_version_refusal(const std::filesystem::path& path, std::int64_t version) {
  return fmt::format(
      "the cache file {} has schema version {}, this build reads version {} ({}); use a "
      "matching version, or another path (the file is only a cache: deleting it is safe)",
      path.string(), version, kSqliteSchemaVersion,
      version > kSqliteSchemaVersion ? "written by a newer llm-caching"
                                     : "written by an older llm-caching");
}

void ensure_sqlite_schema(SqliteConnection& db) {
  db.exec("BEGIN IMMEDIATE", "BEGIN IMMEDIATE");
  bool upgraded = false;
  try {
    const bool has_meta =
        db.query_int("SELECT count(*) FROM sqlite_schema WHERE type='table' AND name='meta'") != 0;
    const std::int64_t tables = has_meta ? 0 : db.query_int("SELECT count(*) FROM sqlite_schema");
    const std::int64_t version =
        has_meta
            ? db.query_int("SELECT coalesce(max(value), 0) FROM meta WHERE name='schema_version'")
            : 0;
    switch (schema_step(has_meta, tables, version)) {
      case SchemaStep::create:
        create_schema(db);
        break;
      case SchemaStep::use:
        break;
      case SchemaStep::upgrade_from_2:
        upgrade_from_schema_2(db);
        upgraded = true;
        break;
      case SchemaStep::refuse_foreign:
        throw CacheError(fmt::format(
            "the file {} is a SQLite database of another program, not an llm-caching cache; "
            "choose another path",
            db.path.string()));
      case SchemaStep::refuse_version:
        throw CacheError(schema_version_refusal(db.path, version));
    }
    db.exec("COMMIT", "COMMIT");
    if (upgraded) {
      // The upgrade wrote the whole table into the WAL: give that disk back now, not at exit.
      sqlite3_wal_checkpoint_v2(db.db, nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr, nullptr);
    }
  } catch (...) {
    sqlite3_exec(db.db, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

}  // namespace llm_caching::cache
