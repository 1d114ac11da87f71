// Negentropy protocol version 1. Both sides walk the ranges of a message in order, compare each
// with their own records, and answer the ranges that differ: a split into fingerprinted
// sub-ranges, or the list of ids when a range holds few records. The initiator turns the
// responder's id lists into the ids each side lacks; the responder answers an id list with its
// own. Matching ranges are skipped.
#include "relaycore/negentropy.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <cstring>

#include "negentropy/negentropy_codec.hpp"

namespace relaycore {

using negentropy::Accumulator;
using negentropy::append_varint;
using negentropy::Bound;
using negentropy::BoundReader;
using negentropy::BoundWriter;
using negentropy::Fingerprint;
using negentropy::kFingerprintBytes;
using negentropy::kIdBytes;
using negentropy::Mode;

namespace {

// Room kept free under the frame size limit for the range that closes a cut-short message.
constexpr std::size_t kFrameReserve = 200;
constexpr std::size_t kMinFrameSizeLimit = 4096;

bool is_version_byte(std::uint8_t b) { return b >= 0x60 && b <= 0x6f; }

void append_id(std::string& out, const EventId& id) {
  out.append(reinterpret_cast<const char*>(id.data()), id.size());
}

}  // namespace

NegentropySet make_negentropy_set(std::vector<NegentropyItem> items) {
  // Storage hands them over in order already.
  if (!std::is_sorted(items.begin(), items.end())) std::sort(items.begin(), items.end());
  items.erase(std::unique(items.begin(), items.end()), items.end());
  return std::make_shared<const std::vector<NegentropyItem>>(std::move(items));
}

Negentropy::Negentropy(NegentropySet set, NegentropyOptions options)
    : set_(set ? std::move(set) : make_negentropy_set({})), options_(options) {
  options_.buckets = std::max<std::size_t>(2, options_.buckets);
  options_.id_list_below = std::max(options_.id_list_below, options_.buckets);
  if (options_.frame_size_limit != 0) {
    options_.frame_size_limit = std::max(options_.frame_size_limit, kMinFrameSizeLimit);
  }
}

// The state of answering one message.
struct Negentropy::Run {
  const std::vector<NegentropyItem>& items;
  const NegentropyOptions& options;
  BoundWriter writer;

  Fingerprint fingerprint(std::size_t begin, std::size_t end) const {
    Accumulator sum;
    for (std::size_t i = begin; i < end; ++i) sum.add(items[i].id);
    return sum.fingerprint(end - begin);
  }

  // Records [lower, upper), which end at `upper_bound`: as one id list when they are few,
  // otherwise as `buckets` fingerprinted sub-ranges of nearly equal size.
  void split(std::size_t lower, std::size_t upper, const Bound& upper_bound, std::string& o) {
    const std::size_t n = upper - lower;
    if (n < options.id_list_below) {
      writer.write(o, upper_bound);
      append_varint(o, static_cast<std::uint64_t>(Mode::kIdList));
      append_varint(o, n);
      for (std::size_t i = lower; i < upper; ++i) append_id(o, items[i].id);
      return;
    }
    const std::size_t buckets = options.buckets;
    const std::size_t per = n / buckets;
    const std::size_t extra = n % buckets;
    std::size_t begin = lower;
    for (std::size_t b = 0; b < buckets; ++b) {
      const std::size_t end = begin + per + (b < extra ? 1 : 0);
      const Bound bound =
          end == upper ? upper_bound : negentropy::minimal_bound(items[end - 1], items[end]);
      writer.write(o, bound);
      append_varint(o, static_cast<std::uint64_t>(Mode::kFingerprint));
      const Fingerprint fp = fingerprint(begin, end);
      o.append(reinterpret_cast<const char*>(fp.data()), fp.size());
      begin = end;
    }
  }

  // True when `size` bytes would go past the frame size limit.
  bool too_big(std::size_t size) const {
    return options.frame_size_limit != 0 && size > options.frame_size_limit - kFrameReserve;
  }
};

std::string Negentropy::initiate() {
  Run run{*set_, options_, {}};
  std::string out(1, static_cast<char>(kNegentropyVersion));
  run.split(0, set_->size(), negentropy::infinite_bound(), out);
  return out;
}

Result<std::string> Negentropy::reconcile(std::string_view message, std::vector<EventId>& have,
                                          std::vector<EventId>& need) {
  return run(message, &have, &need);
}

Result<std::string> Negentropy::respond(std::string_view message) {
  return run(message, nullptr, nullptr);
}

Result<std::string> Negentropy::run(std::string_view message, std::vector<EventId>* have,
                                    std::vector<EventId>* need) {
  const bool initiator = have != nullptr;
  if (message.empty()) return Status::invalid("empty negentropy message");
  const auto version = static_cast<std::uint8_t>(message.front());
  if (version != kNegentropyVersion) {
    if (!is_version_byte(version)) {
      return Status::invalid(
          fmt::format("not a negentropy message (first byte 0x{:02x}, not a version)", version));
    }
    if (initiator) {
      return Status::invalid(
          fmt::format("the peer speaks negentropy protocol version {} only", version - 0x60));
    }
    // The protocol's downgrade: the highest version spoken here, and nothing else.
    return std::string(1, static_cast<char>(kNegentropyVersion));
  }

  const std::vector<NegentropyItem>& items = *set_;
  Run run{items, options_, {}};
  negentropy::Reader in(message.substr(1));
  BoundReader bounds;
  std::string out(1, static_cast<char>(kNegentropyVersion));
  Bound prev_bound;
  std::size_t prev_index = 0;
  // Matching ranges are skipped in the reply; consecutive ones are sent as one skip, only when
  // a range that is sent follows.
  bool skipping = false;

  while (!in.empty()) {
    Bound bound;
    if (Status s = bounds.read(in, bound); !s) return s;
    if (bound < prev_bound) return Status::invalid("negentropy ranges are out of order");
    std::uint64_t mode = 0;
    if (Status s = in.varint(mode); !s) return s;
    const std::size_t lower = prev_index;
    std::size_t upper = static_cast<std::size_t>(
        std::partition_point(
            items.begin() + static_cast<std::ptrdiff_t>(lower), items.end(),
            [&](const NegentropyItem& item) { return negentropy::below(item, bound); }) -
        items.begin());
    // What the range adds to the reply; dropped, with the state it changed, when it does not fit.
    std::string o;
    const BoundWriter writer_before = run.writer;
    const bool skipping_before = skipping;
    auto end_skip = [&] {
      if (!skipping) return;
      skipping = false;
      run.writer.write(o, prev_bound);
      append_varint(o, static_cast<std::uint64_t>(Mode::kSkip));
    };
    bool cut = false;

    if (mode == static_cast<std::uint64_t>(Mode::kSkip)) {
      skipping = true;
    } else if (mode == static_cast<std::uint64_t>(Mode::kFingerprint)) {
      std::string_view theirs;
      if (Status s = in.take(kFingerprintBytes, theirs); !s) return s;
      const Fingerprint ours = run.fingerprint(lower, upper);
      if (std::memcmp(theirs.data(), ours.data(), ours.size()) == 0) {
        skipping = true;
      } else {
        end_skip();
        run.split(lower, upper, bound, o);
      }
    } else if (mode == static_cast<std::uint64_t>(Mode::kIdList)) {
      std::uint64_t count = 0;
      if (Status s = in.varint(count); !s) return s;
      if (count > in.remaining() / kIdBytes) {
        return Status::invalid("negentropy id list is longer than the message");
      }
      if (initiator) {
        std::vector<EventId> theirs(count);
        for (EventId& id : theirs) {
          std::string_view bytes;
          (void)in.take(kIdBytes, bytes);
          std::memcpy(id.data(), bytes.data(), kIdBytes);
        }
        std::sort(theirs.begin(), theirs.end());
        theirs.erase(std::unique(theirs.begin(), theirs.end()), theirs.end());
        std::vector<EventId> ours;
        ours.reserve(upper - lower);
        for (std::size_t i = lower; i < upper; ++i) ours.push_back(items[i].id);
        std::sort(ours.begin(), ours.end());
        std::vector<EventId> found;
        std::set_difference(ours.begin(), ours.end(), theirs.begin(), theirs.end(),
                            std::back_inserter(found));
        for (const EventId& id : found) {
          if (reported_.insert(id).second) have->push_back(id);
        }
        found.clear();
        std::set_difference(theirs.begin(), theirs.end(), ours.begin(), ours.end(),
                            std::back_inserter(found));
        for (const EventId& id : found) {
          if (reported_.insert(id).second) need->push_back(id);
        }
        skipping = true;
      } else {
        std::string_view ignored;
        (void)in.take(count * kIdBytes, ignored);
        // Our ids in the range, as many as the frame allows; the range then ends before the
        // first one left out, and the rest is covered by the closing fingerprint.
        end_skip();
        std::string ids;
        std::size_t sent = lower;
        Bound end = bound;
        for (; sent < upper; ++sent) {
          if (sent > lower && run.too_big(out.size() + o.size() + ids.size() + 2 * kIdBytes + 32)) {
            end = negentropy::minimal_bound(items[sent - 1], items[sent]);
            cut = true;
            break;
          }
          append_id(ids, items[sent].id);
        }
        run.writer.write(o, end);
        append_varint(o, static_cast<std::uint64_t>(Mode::kIdList));
        append_varint(o, sent - lower);
        o += ids;
        upper = sent;
      }
    } else {
      return Status::invalid(fmt::format("negentropy range has an unknown mode {}", mode));
    }

    if (cut || run.too_big(out.size() + o.size())) {
      // Out of room: one fingerprint for everything after the ranges answered. The peer
      // compares it and goes on from there in the next round.
      std::size_t rest_from = upper;
      if (cut) {
        out += o;
      } else {
        run.writer = writer_before;
        if (skipping_before) {
          run.writer.write(out, prev_bound);
          append_varint(out, static_cast<std::uint64_t>(Mode::kSkip));
        }
        rest_from = lower;
      }
      run.writer.write(out, negentropy::infinite_bound());
      append_varint(out, static_cast<std::uint64_t>(Mode::kFingerprint));
      const Fingerprint rest = run.fingerprint(rest_from, items.size());
      out.append(reinterpret_cast<const char*>(rest.data()), rest.size());
      return out;
    }
    out += o;
    prev_index = upper;
    prev_bound = bound;
  }
  if (initiator && out.size() == 1) return std::string();
  return out;
}

}  // namespace relaycore
