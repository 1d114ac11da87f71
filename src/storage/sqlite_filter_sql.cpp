#include "storage/sqlite_filter_sql.hpp"

#include <limits>

namespace relaycore::storage {
namespace {

// Visibility every read applies: committed at or before max_seq and not expired. The unary +
// keeps the planner from choosing the rowid or expiration index for these range tests; the
// filter's own conditions are far more selective.
constexpr std::string_view kVisible = "+seq <= ? AND (+expiration IS NULL OR +expiration > ?)";

void append_placeholders(std::string& sql, std::size_t n) {
  sql.push_back('(');
  for (std::size_t i = 0; i < n; ++i) {
    if (i != 0) sql.push_back(',');
    sql.push_back('?');
  }
  sql.push_back(')');
}

// "<column> IN (?,...)", or a false condition for an empty list (which matches nothing, as in
// Filter::matches).
template <typename T, typename Bind>
void append_in(std::string& sql, std::vector<SqlParam>& params, std::string_view column,
               const std::vector<T>& values, Bind bind) {
  if (values.empty()) {
    sql.append("0");
    return;
  }
  sql.append(column);
  sql.append(" IN ");
  append_placeholders(sql, values.size());
  for (const T& v : values) params.push_back(bind(v));
}

void append_visible(std::string& sql, std::vector<SqlParam>& params, const QueryRequest& request) {
  sql.append(kVisible);
  params.emplace_back(clamp_seq(request.max_seq));
  params.emplace_back(request.now);
}

// The filter's own conditions, ANDed; "1" when it has none.
void append_conditions(std::string& sql, std::vector<SqlParam>& params, const Filter& filter) {
  bool first = true;
  auto next = [&] {
    if (!first) sql.append(" AND ");
    first = false;
  };
  if (filter.ids) {
    next();
    append_in(sql, params, "id", *filter.ids, [](const EventId& id) { return SqlParam(&id); });
  }
  if (filter.authors) {
    next();
    append_in(sql, params, "pubkey", *filter.authors,
              [](const Pubkey& pk) { return SqlParam(&pk); });
  }
  if (filter.kinds) {
    next();
    append_in(sql, params, "kind", *filter.kinds,
              [](std::uint16_t k) { return SqlParam(std::int64_t{k}); });
  }
  if (filter.since) {
    next();
    sql.append("created_at >= ?");
    params.emplace_back(*filter.since);
  }
  if (filter.until) {
    next();
    sql.append("created_at <= ?");
    params.emplace_back(*filter.until);
  }
  for (const TagCondition& cond : filter.tags) {
    next();
    if (cond.values.empty()) {
      sql.append("0");
      continue;
    }
    // The time bounds are repeated inside so that the tag index range is narrowed too.
    sql.append("seq IN (SELECT seq FROM tags WHERE name = ? AND value IN ");
    params.emplace_back(std::string_view(&cond.name, 1));
    append_placeholders(sql, cond.values.size());
    for (const std::string& v : cond.values) params.emplace_back(std::string_view(v));
    if (filter.since) {
      sql.append(" AND created_at >= ?");
      params.emplace_back(*filter.since);
    }
    if (filter.until) {
      sql.append(" AND created_at <= ?");
      params.emplace_back(*filter.until);
    }
    sql.push_back(')');
  }
  if (filter.search) {
    next();
    sql.append("relaycore_search(json, ?)");
    params.emplace_back(std::string_view(*filter.search));
  }
  if (first) sql.append("1");
}

}  // namespace

SqlQuery build_select(const Filter& filter, const QueryRequest& request, std::uint32_t limit) {
  SqlQuery q;
  q.sql = "SELECT seq, json FROM events WHERE ";
  append_visible(q.sql, q.params, request);
  q.sql.append(" AND ");
  append_conditions(q.sql, q.params, filter);
  q.sql.append(" ORDER BY created_at DESC, id ASC LIMIT ?");
  q.params.emplace_back(std::int64_t{limit});
  return q;
}

SqlQuery build_count(const std::vector<Filter>& filters, const QueryRequest& request) {
  SqlQuery q;
  q.sql = "SELECT COUNT(*) FROM events WHERE ";
  append_visible(q.sql, q.params, request);
  q.sql.append(" AND (");
  for (std::size_t i = 0; i < filters.size(); ++i) {
    if (i != 0) q.sql.append(" OR ");
    q.sql.push_back('(');
    append_conditions(q.sql, q.params, filters[i]);
    q.sql.push_back(')');
  }
  if (filters.empty()) q.sql.append("0");
  q.sql.push_back(')');
  return q;
}

SqlQuery build_seq_select(const Filter& filter, const QueryRequest& request) {
  SqlQuery q;
  q.sql = "SELECT seq FROM events WHERE ";
  append_visible(q.sql, q.params, request);
  q.sql.append(" AND ");
  append_conditions(q.sql, q.params, filter);
  return q;
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
    } else {
      const Bytes32* bytes = std::get<const Bytes32*>(p);
      rc = sqlite3_bind_blob(stmt, index, bytes->data(), static_cast<int>(bytes->size()),
                             SQLITE_STATIC);
    }
    if (rc != SQLITE_OK) return rc;
  }
  return SQLITE_OK;
}

std::int64_t clamp_seq(std::uint64_t seq) noexcept {
  constexpr auto kMax = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  return static_cast<std::int64_t>(seq > kMax ? kMax : seq);
}

}  // namespace relaycore::storage
