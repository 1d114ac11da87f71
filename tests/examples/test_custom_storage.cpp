// examples/custom_storage: the host-written log storage passes the storage conformance suite
// unchanged, keeps what it acknowledged across a reopen, and the example program runs.
#include <catch2/catch.hpp>

#include <fstream>
#include <memory>
#include <string>

#include "../conformance/storage_conformance.hpp"
#include "../conformance/temp_dir.hpp"
#include "child_process.hpp"
#include "log_storage.hpp"

namespace {

using namespace relaycore;
using namespace relaycore::conformance;

// A log storage in its own temporary directory, removed when the storage goes away.
std::shared_ptr<Storage> temp_log_storage() {
  struct Holder {
    TempDir dir;
    std::shared_ptr<Storage> storage;
  };
  auto holder = std::make_shared<Holder>();
  REQUIRE_FALSE(holder->dir.path().empty());
  auto opened = example::open_log_storage(holder->dir.file("events.log"));
  if (!opened) FAIL(opened.error().message());
  holder->storage = *opened;
  return std::shared_ptr<Storage>(holder, holder->storage.get());
}

std::shared_ptr<Storage> reopen(const std::string& path) {
  auto opened = example::open_log_storage(path);
  if (!opened) FAIL(opened.error().message());
  return *opened;
}

}  // namespace

RELAYCORE_STORAGE_CONFORMANCE(custom, temp_log_storage())

TEST_CASE("custom: a reopened log has the same events, sequences and tombstones", "[examples]") {
  TempDir dir;
  const std::string path = dir.file("events.log");
  EventPtr note = event(test::alice(), 100, "note");
  EventPtr erased = event(test::alice(), 101, "erased");
  EventPtr profile_v1 = event(test::alice(), 100, "v1", {}, 0);
  EventPtr profile_v2 = event(test::alice(), 200, "v2", {}, 0);
  EventPtr article = event(test::alice(), 100, "article", {{"d", "post"}}, 30023);
  EventPtr del = event(test::alice(), 300, "",
                       {{"e", hex_id(note)}, {"a", address(30023, test::alice(), "post")}}, 5);
  std::uint64_t last = 0;
  {
    auto s = reopen(path);
    write(*s, {note, erased, profile_v1, profile_v2, article});
    CHECK(write_one(*s, del).removed.size() == 2);
    std::vector<EventId> gone = {erased->id()};
    REQUIRE(s->erase(gone).is_ok());
    last = max_seq(*s);
  }
  auto s = reopen(path);
  CHECK(query_ids(*s, Filter()) == newest_first({profile_v2, del}));
  CHECK(max_seq(*s) == last);
  CHECK(write_one(*s, note).outcome == WriteOutcome::kDeleted);
  CHECK(write_one(*s, article).outcome == WriteOutcome::kDeleted);
  CHECK(write_one(*s, profile_v1).outcome == WriteOutcome::kRejected);
  WriteResult next = write_one(*s, event(test::bob(), 5, "after reopen"));
  CHECK(next.seq > last);
}

TEST_CASE("custom: a torn batch at the end of the log is dropped", "[examples]") {
  TempDir dir;
  const std::string path = dir.file("events.log");
  EventPtr kept = event(test::alice(), 100, "committed");
  EventPtr torn = event(test::alice(), 101, "never acknowledged");
  write_one(*reopen(path), kept);
  {
    std::ofstream log(path, std::ios::app);
    log << "+ 2 " << torn->json() << "\n";  // no "." line: the crash came first
  }
  auto s = reopen(path);
  CHECK(query_ids(*s, Filter()) == ids_of({kept}));
  CHECK(write_one(*s, torn).outcome == WriteOutcome::kStored);
  s.reset();
  CHECK(query_ids(*reopen(path), Filter()) == newest_first({kept, torn}));
}

TEST_CASE("custom: a corrupt log is refused", "[examples]") {
  TempDir dir;
  const std::string path = dir.file("events.log");
  std::ofstream(path) << "+ 1 {\"not\":\"an event\"}\n.\n";
  auto opened = example::open_log_storage(path);
  REQUIRE_FALSE(opened.is_ok());
  CHECK(opened.error().message().find("corrupt") != std::string::npos);
}

TEST_CASE("custom storage: the example program", "[examples]") {
  TempDir dir;
  relaycore::examples_test::ChildProcess program(
      {RELAYCORE_CUSTOM_STORAGE, dir.file("example.log")});
  REQUIRE(program.started());
  std::string output;
  for (const std::string& line : program.read_all()) output += line + "\n";
  INFO(output);
  CHECK(program.wait() == 0);
  CHECK(output.find("accepted=true") != std::string::npos);
  CHECK(output.find("committed ") != std::string::npos);
  CHECK(output.find(R"(received ["EVENT","back",)") != std::string::npos);
  CHECK(output.find(R"(received ["EOSE","back"])") != std::string::npos);
  CHECK(output.find("the note is still there") != std::string::npos);
}
