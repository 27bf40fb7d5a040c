// What opening a SQLite cache file does with its schema (cache/sqlite_schema.hpp): create,
// use, upgrade from schema 2, or refuse. Pure: the files themselves are tested in
// test_sqlite_backend.cpp.
#include "cache/sqlite_backend.hpp"
#include "cache/sqlite_schema.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace llm_caching::cache {
namespace {

using ::testing::HasSubstr;

TEST(SqliteSchema, AnEmptyFileGetsTheSchema) {
  EXPECT_EQ(schema_step(false, 0, 0), SchemaStep::create);
}

TEST(SqliteSchema, TablesWithoutOurMetaBelongToAnotherProgram) {
  EXPECT_EQ(schema_step(false, 1, 0), SchemaStep::refuse_foreign);
  EXPECT_EQ(schema_step(false, 7, 3), SchemaStep::refuse_foreign);
}

TEST(SqliteSchema, TheCurrentVersionIsUsedAsItIs) {
  EXPECT_EQ(schema_step(true, 0, kSqliteSchemaVersion), SchemaStep::use);
}

TEST(SqliteSchema, Schema2IsUpgradedOlderAndNewerAreRefused) {
  EXPECT_EQ(schema_step(true, 0, 2), SchemaStep::upgrade_from_2);
  EXPECT_EQ(schema_step(true, 0, 1), SchemaStep::refuse_version);
  EXPECT_EQ(schema_step(true, 0, 0), SchemaStep::refuse_version);  // meta without a version
  EXPECT_EQ(schema_step(true, 0, kSqliteSchemaVersion + 1), SchemaStep::refuse_version);
}

TEST(SqliteSchema, TheRefusalSaysWhichSideIsNewerAndThatDeletingIsSafe) {
  const std::string older = schema_version_refusal("/tmp/c.db", 1);
  EXPECT_THAT(older, HasSubstr("the cache file /tmp/c.db has schema version 1, this build reads "
                               "version 3 (written by an older llm-caching)"));
  EXPECT_THAT(older, HasSubstr("deleting it is safe"));
  EXPECT_THAT(schema_version_refusal("/tmp/c.db", 9), HasSubstr("written by a newer llm-caching"));
}

}  // namespace
}  // namespace llm_caching::cache
