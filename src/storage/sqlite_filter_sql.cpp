#include "storage/sqlite_filter_sql.hpp"

#include "storage/sqlite_schema.hpp"

namespace relaycore::storage {

const SqlDialect& sqlite_dialect() noexcept {
  static const SqlDialect dialect{
      .numbered_params = false,
      .seq_column = "+seq",
      .expiration_column = "+expiration",
      .search = SqlSearch::kFts5,
      .max_ranked = kMaxRankedMatches,
  };
  return dialect;
}

SqlQuery build_select(const Filter& filter, const QueryRequest& request, std::uint32_t limit) {
  return build_query(sqlite_dialect(), filter, request, limit);
}

std::vector<Filter> merge_scans(const Filter& filter) {
  if (filter.ids || !filter.tags.empty() || filter.search) return {};
  const std::size_t authors = filter.authors ? filter.authors->size() : 1;
  const std::size_t kinds = filter.kinds ? filter.kinds->size() : 1;
  if (authors * kinds < 2 || authors * kinds > kMaxMergeScans) return {};
  Filter base = filter;
  base.authors.reset();
  base.kinds.reset();
  std::vector<Filter> scans(authors * kinds, base);
  for (std::size_t a = 0; a < authors; ++a) {
    for (std::size_t k = 0; k < kinds; ++k) {
      Filter& scan = scans[a * kinds + k];
      if (filter.authors) scan.authors = std::vector<Pubkey>{(*filter.authors)[a]};
      if (filter.kinds) scan.kinds = std::vector<std::uint16_t>{(*filter.kinds)[k]};
    }
  }
  return scans;
}

const TagCondition* tag_merge_condition(const Filter& filter) noexcept {
  if (filter.ids || filter.authors || filter.search || tag_driver(filter) != nullptr) {
    return nullptr;
  }
  const TagCondition* fewest = nullptr;
  for (const TagCondition& cond : filter.tags) {
    if (cond.values.empty()) return nullptr;  // matches nothing; one query says so at once
    if (fewest == nullptr || cond.values.size() < fewest->values.size()) fewest = &cond;
  }
  return fewest;
}

SqlQuery build_tag_scan(const Filter& filter, const TagCondition& driver, std::string_view value,
                        const QueryRequest& request, std::uint32_t limit) {
  return build_tag_select(sqlite_dialect(), filter, driver, value, request, limit);
}

SqlQuery build_count(const std::vector<Filter>& filters, const QueryRequest& request) {
  return build_count(sqlite_dialect(), filters, request);
}

SqlQuery build_seq_select(const Filter& filter, const QueryRequest& request) {
  return build_seq_select(sqlite_dialect(), filter, request);
}

int bind_params(sqlite3_stmt* stmt, const std::vector<SqlParam>& params) noexcept {
  for (std::size_t i = 0; i < params.size(); ++i) {
    const int index = static_cast<int>(i + 1);
    const SqlParam& p = params[i];
    int rc = SQLITE_OK;
    if (const auto* n = std::get_if<std::int64_t>(&p)) {
      rc = sqlite3_bind_int64(stmt, index, *n);
    } else if (const auto* text = std::get_if<std::string_view>(&p)) {
      rc = sqlite3_bind_text64(stmt, index, text->data(), text->size(), SQLITE_STATIC, SQLITE_UTF8);
    } else if (const auto* tag = std::get_if<TagValue>(&p)) {
      // A value of 64 hex digits is bound as the 32 bytes the writer stored it as (tag_key).
      rc = bind_tag_value(stmt, index, tag->value);
    } else {
      const Bytes32* bytes = std::get<const Bytes32*>(p);
      rc = sqlite3_bind_blob(stmt, index, bytes->data(), static_cast<int>(bytes->size()),
                             SQLITE_STATIC);
    }
    if (rc != SQLITE_OK) return rc;
  }
  return SQLITE_OK;
}

}  // namespace relaycore::storage
