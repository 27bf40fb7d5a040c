// The SQLite cache's schema: creating it in a new file, checking it in an existing one, and the
// upgrade from schema 2 (DESIGN.md §5). What to do with a file is decided by a pure function
// (tests/unit/test_sqlite_schema.cpp); ensure_sqlite_schema runs it on a connection.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace llm_caching::cache {

struct SqliteConnection;

/// What opening a file does with its schema.
enum class SchemaStep {
  create,          ///< an empty file: create schema kSqliteSchemaVersion
  use,             ///< already the version this build reads
  upgrade_from_2,  ///< schema 2: upgraded in place, in the opening transaction
  refuse_foreign,  ///< a SQLite database of another program
  refuse_version,  ///< a schema this build cannot read (older than 2, or newer)
};

/// `has_meta`: the file has llm-caching's meta table; `tables`: how many tables it has (looked
/// at only without meta); `version`: the meta's schema_version (only with meta).
SchemaStep schema_step(bool has_meta, std::int64_t tables, std::int64_t version);

/// The CacheError message for a file of schema `version` that this build does not read.
std::string schema_version_refusal(const std::filesystem::path& path, std::int64_t version);

/// In one BEGIN IMMEDIATE transaction: creates, checks or upgrades the schema of the file
/// `db` has just opened. Throws CacheError naming the file when it cannot be used.
void ensure_sqlite_schema(SqliteConnection& db);

}  // namespace llm_caching::cache
