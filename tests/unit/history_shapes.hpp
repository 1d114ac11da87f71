// The filter shapes a REQ pages through history with, which every SQL storage must serve in
// NIP-01 order from an index (the plan tests of SQLite and PostgreSQL check them), and events
// that share one created_at to run them on.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "../conformance/conformance_support.hpp"

namespace relaycore::test {

struct HistoryShape {
  const char* name;
  Filter filter;
  // The events index that serves it in order; nullptr when the tags index drives it.
  const char* index;
};

inline std::vector<HistoryShape> history_shapes() {
  const Pubkey alice = test::alice().pubkey();
  Filter author_kind = conformance::with_kinds({1});
  author_kind.authors = std::vector<Pubkey>{alice};
  author_kind.limit = 100;
  Filter author_kind_page = author_kind;
  author_kind_page.until = 1000;
  Filter author = conformance::with_authors({alice});
  author.limit = 100;
  Filter kind = conformance::with_kinds({1});
  kind.limit = 500;
  Filter kind_page = kind;
  kind_page.until = 1000;
  Filter tag = conformance::with_tag('t', {"tie"});
  tag.limit = 100;
  Filter tag_kind = tag;
  tag_kind.kinds = std::vector<std::uint16_t>{1};
  Filter tag_window = tag;
  tag_window.since = 900;
  tag_window.until = 1000;
  Filter window;
  window.since = 900;
  window.until = 1000;
  return {
      {"author + kind", author_kind, "events_pubkey_kind_created_id"},
      {"author + kind + until", author_kind_page, "events_pubkey_kind_created_id"},
      {"author", author, "events_pubkey_created_id"},
      {"kind", kind, "events_kind_created_id"},
      {"kind + until", kind_page, "events_kind_created_id"},
      {"#t", tag, nullptr},
      {"#t + kind", tag_kind, nullptr},
      {"#t + since/until", tag_window, nullptr},
      {"no condition", conformance::with_limit(100), "events_created_id"},
      {"since/until", window, "events_created_id"},
  };
}

// Every history shape, at limits 5 and 500, returns from `storage` what expected_ids() says
// it must, `events` being all it holds.
inline void check_history_reads(Storage& storage, const std::vector<EventPtr>& events) {
  for (const HistoryShape& shape : history_shapes()) {
    Filter f = shape.filter;
    for (std::uint32_t limit : {5u, 500u}) {
      f.limit = limit;
      INFO(shape.name << ": " << f.to_json());
      CHECK(conformance::query_ids(storage, f) == conformance::expected_ids(events, f));
    }
  }
}

// `n` events sharing `created_at`: alice and bob in turn, kinds 1 and 7, most with the t tag
// "tie", some mentioning bob.
inline std::vector<EventPtr> tied_events(int n, std::int64_t created_at) {
  std::vector<EventPtr> events;
  for (int i = 0; i < n; ++i) {
    const Keypair& author = i % 2 == 0 ? test::alice() : test::bob();
    std::vector<Tag> tags;
    if (i % 4 != 0) tags.push_back({"t", "tie"});
    if (i % 5 == 0) tags.push_back({"p", to_hex(test::bob().pubkey())});
    events.push_back(conformance::event(author, created_at, "n" + std::to_string(i),
                                        std::move(tags), i % 3 == 0 ? 7 : 1));
  }
  return events;
}

}  // namespace relaycore::test
