// The storage conformance suite: the behaviours every relaycore Storage must have, written once
// and run against the built-in storages and, by hosts, against their own.
//
// Usage, in a Catch2 v2 test file:
//
//   #include "storage_conformance.hpp"
//   RELAYCORE_STORAGE_CONFORMANCE(my_store, std::make_shared<MyStorage>(...))
//
// The expression is evaluated afresh for every case and must yield an empty storage as a
// std::shared_ptr<relaycore::Storage>. Each behaviour becomes its own TEST_CASE named
// "<name>: <behaviour>", so ctest lists and runs them separately. The optional NIP-50
// search behaviour has its own macro, RELAYCORE_STORAGE_SEARCH_CONFORMANCE, for storages that
// implement search.
#pragma once

#include "conformance_delete.hpp"
#include "conformance_keys.hpp"
#include "conformance_misc.hpp"
#include "conformance_query.hpp"
#include "conformance_replace.hpp"
#include "conformance_resume.hpp"
#include "conformance_search.hpp"
#include "conformance_support.hpp"

#define RELAYCORE_STORAGE_CONFORMANCE_CASE(Name, what, behaviour)                   \
  TEST_CASE(#Name ": " what, "[storage][conformance]") {                            \
    ::relaycore::conformance::behaviour(relaycore_storage_conformance_make_##Name); \
  }

#define RELAYCORE_STORAGE_CONFORMANCE_FACTORY(Name, ...)        \
  [[maybe_unused]] static std::shared_ptr<::relaycore::Storage> \
      relaycore_storage_conformance_make_##Name() {             \
    return std::shared_ptr<::relaycore::Storage>(__VA_ARGS__);  \
  }

// NOLINTBEGIN: the cases are generated, one TEST_CASE per behaviour.
#define RELAYCORE_STORAGE_CONFORMANCE(Name, ...)                                                   \
  RELAYCORE_STORAGE_CONFORMANCE_FACTORY(Name, __VA_ARGS__)                                         \
  RELAYCORE_STORAGE_CONFORMANCE_CASE(Name, "stores and serves byte-identical JSON",                \
                                     store_and_query_back)                                         \
  RELAYCORE_STORAGE_CONFORMANCE_CASE(Name, "reports duplicates", duplicate_is_reported)            \
  RELAYCORE_STORAGE_CONFORMANCE_CASE(Name, "orders newest first with id tiebreak",                 \
                                     orders_newest_first_with_id_tiebreak)                         \
  RELAYCORE_STORAGE_CONFORMANCE_CASE(Name, "a limit within one created_at takes the lowest ids",   \
                                     limit_within_one_created_at)                                  \
  RELAYCORE_STORAGE_CONFORMANCE_CASE(Name, "clamps limit to max_limit", limit_and_max_limit_clamp) \
  RELAYCORE_STORAGE_CONFORMANCE_CASE(Name, "filters by ids, authors and kinds",                    \
                                     filter_fields_and_or)                                         \
  RELAYCORE_STORAGE_CONFORMANCE_CASE(Name, "filters by tags", tag_conditions)                      \
  RELAYCORE_STORAGE_CONFORMANCE_CASE(Name, "since and until are inclusive", since_until_inclusive) \
  RELAYCORE_STORAGE_CONFORMANCE_CASE(Name, "max_seq bounds queries", max_seq_bounds_queries)       \
  RELAYCORE_STORAGE_CONFORMANCE_CASE(Name, "resumes after a position", resumes_after_a_position)   \
  RELAYCORE_STORAGE_CONFORMANCE_CASE(Name, "seq is monotonic across batches",                      \
                                     seq_monotonic_across_batches)                                 \
  RELAYCORE_STORAGE_CONFORMANCE_CASE(Name, "replaceable: newest wins", replaceable_newest_wins)    \
  RELAYCORE_STORAGE_CONFORMANCE_CASE(Name, "replaceable: equal created_at keeps lowest id",        \
                                     equal_created_at_lowest_id_wins)                              \
  RELAYCORE_STORAGE_CONFORMANCE_CASE(Name, "replaceable: older version rejected",                  \
                                     older_version_rejected)                                       \
  RELAYCORE_STORAGE_CONFORMANCE_CASE(Name, "addressable: keyed by d tag",                          \
                                     addressable_keyed_by_d_tag)                                   \
  RELAYCORE_STORAGE_CONFORMANCE_CASE(Name, "replacement within one batch",                         \
                                     replacement_within_one_batch)                                 \
  RELAYCORE_STORAGE_CONFORMANCE_CASE(Name, "NIP-09: e tag deletes own event",                      \
                                     deletes_own_event_by_e_tag)                                   \
  RELAYCORE_STORAGE_CONFORMANCE_CASE(Name, "NIP-09: other authors' events untouched",              \
                                     deletion_of_others_event_has_no_effect)                       \
  RELAYCORE_STORAGE_CONFORMANCE_CASE(Name, "NIP-09: a tag deletes up to created_at",               \
                                     deletes_by_a_tag_up_to_created_at)                            \
  RELAYCORE_STORAGE_CONFORMANCE_CASE(Name, "NIP-09: a tag of another author ignored",              \
                                     a_tag_for_another_author_has_no_effect)                       \
  RELAYCORE_STORAGE_CONFORMANCE_CASE(Name, "NIP-09: re-published deleted event refused",           \
                                     republished_deleted_event_is_refused)                         \
  RELAYCORE_STORAGE_CONFORMANCE_CASE(Name, "NIP-09: deleting a deletion has no effect",            \
                                     deleting_a_deletion_has_no_effect)                            \
  RELAYCORE_STORAGE_CONFORMANCE_CASE(Name, "NIP-40: expired hidden and purged",                    \
                                     expired_events_hidden_and_purged)                             \
  RELAYCORE_STORAGE_CONFORMANCE_CASE(Name, "NIP-45: count is a union", count_is_a_union)           \
  RELAYCORE_STORAGE_CONFORMANCE_CASE(Name, "contains", contains_reports_stored_ids)                \
  RELAYCORE_STORAGE_CONFORMANCE_CASE(Name, "scan_since in seq order", scan_since_in_seq_order)     \
  RELAYCORE_STORAGE_CONFORMANCE_CASE(Name, "erase", erase_removes_outright)                        \
  RELAYCORE_STORAGE_CONFORMANCE_CASE(Name, "size_bytes is the stored events' JSON",                \
                                     size_bytes_is_the_stored_json)                                \
  RELAYCORE_STORAGE_CONFORMANCE_CASE(Name, "concurrent reads during writes",                       \
                                     concurrent_reads_during_writes)                               \
  RELAYCORE_STORAGE_CONFORMANCE_CASE(Name, "NIP-77: scan_keys is the query's keys, oldest first",  \
                                     scan_keys_ascending)

// The optional NIP-50 behaviour; use after RELAYCORE_STORAGE_CONFORMANCE with the same Name.
#define RELAYCORE_STORAGE_SEARCH_CONFORMANCE(Name)                                             \
  RELAYCORE_STORAGE_CONFORMANCE_CASE(Name, "NIP-50: matches every word", search_matches_words) \
  RELAYCORE_STORAGE_CONFORMANCE_CASE(Name, "NIP-50: ranked, limit after ranking",              \
                                     search_ranks_by_relevance)                                \
  RELAYCORE_STORAGE_CONFORMANCE_CASE(Name, "NIP-50: combines with other fields",               \
                                     search_combines_with_other_fields)                        \
  RELAYCORE_STORAGE_CONFORMANCE_CASE(Name, "NIP-50: removed events are not found",             \
                                     search_forgets_removed_events)                            \
  RELAYCORE_STORAGE_CONFORMANCE_CASE(Name, "NIP-50: hostile queries are words",                \
                                     search_reads_hostile_queries_as_words)
// NOLINTEND
