// A factory for the conformance suite: a SQLite storage in its own temporary directory, which
// is removed when the last reference to the storage goes away.
#pragma once

#include <catch2/catch.hpp>

#include <memory>

#include "relaycore/sqlite.hpp"
#include "relaycore/storage.hpp"
#include "temp_dir.hpp"

namespace relaycore::conformance {

inline std::shared_ptr<Storage> temp_sqlite_storage(SqliteOptions options = SqliteOptions()) {
  // Members are destroyed in reverse order: the storage closes before its directory goes.
  struct Holder {
    TempDir dir;
    std::shared_ptr<Storage> storage;
  };
  auto holder = std::make_shared<Holder>();
  REQUIRE_FALSE(holder->dir.path().empty());
  options.path = holder->dir.file("events.db");
  auto opened = new_sqlite_storage(options);
  if (!opened) FAIL(opened.error().message());
  holder->storage = *opened;
  return std::shared_ptr<Storage>(holder, holder->storage.get());
}

}  // namespace relaycore::conformance
