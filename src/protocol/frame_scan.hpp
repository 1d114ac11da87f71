// A tolerant reading of a client frame that the strict parser refused or never parsed (too
// large, too deep, a bad number or escape, cut short): just far enough to learn which event the
// client is waiting on, so that it still gets OK false for that id instead of only a NOTICE.
#pragma once

#include <string>
#include <string_view>

#include "relaycore/message.hpp"

namespace relaycore::json {

// 64 hex digits. Upper case counts, so that a client that sent an upper-case id still gets the
// OK false it is waiting for (echoing the id as sent) rather than only a NOTICE.
bool is_readable_event_id(std::string_view id) noexcept;

// What a scan found. `verb` is kEvent or kAuth when the frame opens with that verb string
// (kUnknown otherwise); `event_id` is set when the event object that follows it has a readable
// id as its own top-level "id" member.
struct ScannedFrame {
  Verb verb = Verb::kUnknown;
  std::string event_id;
};

// Reads `frame` as far as the "id" member of ["EVENT",{...}] or ["AUTH",{...}], whatever follows.
// Strings are delimited and brackets matched as JSON does, so an "id" inside content, tags or
// any nested value is never taken for the event's; the first top-level "id" counts, as it does
// for the strict parser. Stops at the first thing it cannot read; never fails otherwise.
ScannedFrame scan_event_frame(std::string_view frame);

}  // namespace relaycore::json
