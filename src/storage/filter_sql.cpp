#include "storage/filter_sql.hpp"

#include <limits>

#include "protocol/search_text.hpp"

namespace relaycore::storage {
namespace {

// Appends SQL text and parameters together, so that each placeholder is written as its value is
// added and "$n" numbering cannot drift from the parameter list.
class SqlBuilder {
 public:
  SqlBuilder(const SqlDialect& dialect, SqlQuery& q) : dialect_(dialect), q_(q) {}

  SqlBuilder& text(std::string_view s) {
    q_.sql.append(s);
    return *this;
  }

  SqlBuilder& param(SqlParam p) {
    q_.params.push_back(p);
    if (dialect_.numbered_params) {
      q_.sql.push_back('$');
      q_.sql.append(std::to_string(q_.params.size()));
    } else {
      q_.sql.push_back('?');
    }
    return *this;
  }

  // "(p1,p2,...)"
  template <typename T, typename Bind>
  void list(const std::vector<T>& values, Bind bind) {
    q_.sql.push_back('(');
    for (std::size_t i = 0; i < values.size(); ++i) {
      if (i != 0) q_.sql.push_back(',');
      param(bind(values[i]));
    }
    q_.sql.push_back(')');
  }

  // "<column> IN (...)", or a false condition for an empty list (which matches nothing, as in
  // Filter::matches).
  template <typename T, typename Bind>
  void in(std::string_view column, const std::vector<T>& values, Bind bind) {
    if (values.empty()) {
      text("FALSE");
      return;
    }
    text(column).text(" IN ");
    list(values, bind);
  }

  // Every read's visibility: committed at or before max_seq and not expired.
  void visible(const QueryRequest& request) {
    text(dialect_.seq_column).text(" <= ").param(clamp_seq(request.max_seq));
    text(" AND (").text(dialect_.expiration_column).text(" IS NULL OR ");
    text(dialect_.expiration_column).text(" > ").param(request.now).text(")");
    after(request);
  }

  // Committed at or before max_seq, and after request.after; the expiration is left to the
  // caller.
  void committed(const QueryRequest& request) {
    text(dialect_.seq_column).text(" <= ").param(clamp_seq(request.max_seq));
    after(request);
  }

  // " AND <after request.after>" when the request resumes after a position in result order:
  // older, or as old with a higher id. Of the current table (events, or tags, which keeps
  // both columns under the same names).
  void after(const QueryRequest& request) {
    if (!request.after) return;
    text(" AND (created_at < ").param(request.after->created_at);
    text(" OR (created_at = ").param(request.after->created_at);
    text(" AND id > ").param(&request.after->id).text("))");
  }

  // Binds text made for the query.
  SqlBuilder& owned_param(std::string value) {
    q_.texts.push_back(std::make_unique<const std::string>(std::move(value)));
    return param(std::string_view(*q_.texts.back()));
  }

  // The search's words as the dialect's engine takes them, bound; nothing when it has none.
  bool search_param(const std::vector<std::string>& words) {
    if (words.empty()) return false;
    if (dialect_.search == SqlSearch::kFts5) {
      owned_param(search::fts5_expression(words));
    } else {
      // plainto_tsquery ANDs the words and reads no operators; the words hold only letters and
      // digits, which its parser keeps whole.
      std::string text;
      for (const std::string& w : words) text.append(text.empty() ? "" : " ").append(w);
      text_tsquery(std::move(text));
    }
    return true;
  }

  // kFts5: "<the event is one the writer has not yet added to events_search, and holds the
  // words>", read from its content (sqlite_search.hpp). The seq range is a few dozen rows; the
  // table it is asked of must be read by seq (NOT INDEXED), or SQLite may walk all of an author's
  // or a kind's events instead and read the content of each.
  void not_yet_indexed_match(std::string_view query) {
    text("(seq > (SELECT search_seq FROM stored_bytes) AND relaycore_has_words(CASE WHEN ");
    text("json_valid(json) THEN json_extract(json, '$.content') END, ");
    owned_param(std::string(query));
    text("))");
  }

  // Text parameters reach PostgreSQL as bytea (the storage binds every string so).
  void text_tsquery(std::string words) {
    text("plainto_tsquery('simple', convert_from(");
    owned_param(std::move(words));
    text(", 'UTF8'))");
  }

  // "<the event matches the search>", or FALSE for a search with no words.
  void search_condition(const std::string& query) {
    const std::vector<std::string> words = search::query_words(query);
    if (words.empty()) {
      text("FALSE");
    } else if (dialect_.search == SqlSearch::kFts5) {
      // One list of seqs, so that the planner looks the matches up by seq as it would the
      // index's alone, rather than walking another index of events to test each row.
      text("seq IN (SELECT rowid FROM events_search WHERE events_search MATCH ");
      search_param(words);
      text(" UNION ALL SELECT seq FROM events NOT INDEXED WHERE ");
      not_yet_indexed_match(query);
      text(")");
    } else {
      text("search @@ ");
      search_param(words);
    }
  }

  // The filter's own conditions, ANDed; TRUE when it has none. `skip` is a tag condition the
  // caller already applies some other way; `with_search` false leaves the search out.
  void conditions(const Filter& filter, const TagCondition* skip = nullptr,
                  bool with_search = true) {
    bool first = true;
    auto next = [&] {
      if (!first) text(" AND ");
      first = false;
    };
    if (filter.ids) {
      next();
      in("id", *filter.ids, [](const EventId& id) { return SqlParam(&id); });
    }
    if (filter.authors) {
      next();
      in("pubkey", *filter.authors, [](const Pubkey& pk) { return SqlParam(&pk); });
    }
    if (filter.kinds) {
      next();
      in("kind", *filter.kinds, [](std::uint16_t k) { return SqlParam(std::int64_t{k}); });
    }
    if (filter.since) {
      next();
      text("created_at >= ").param(*filter.since);
    }
    if (filter.until) {
      next();
      text("created_at <= ").param(*filter.until);
    }
    for (const TagCondition& cond : filter.tags) {
      if (&cond == skip) continue;
      next();
      if (cond.values.empty()) {
        text("FALSE");
        continue;
      }
      // The time bounds are repeated inside so that the tag index range is narrowed too.
      text("seq IN (SELECT seq FROM tags WHERE name = ").param(std::string_view(&cond.name, 1));
      text(" AND value IN ");
      list(cond.values, [](const std::string& v) { return SqlParam(TagValue{v}); });
      if (filter.since) text(" AND created_at >= ").param(*filter.since);
      if (filter.until) text(" AND created_at <= ").param(*filter.until);
      text(")");
    }
    if (filter.search && with_search && dialect_.search != SqlSearch::kNone) {
      next();
      search_condition(*filter.search);
    }
    if (first) text("TRUE");
  }

 private:
  const SqlDialect& dialect_;
  SqlQuery& q_;
};

}  // namespace

SqlQuery build_select(const SqlDialect& dialect, const Filter& filter, const QueryRequest& request,
                      std::optional<std::uint32_t> limit) {
  SqlQuery q;
  SqlBuilder b(dialect, q);
  b.text("SELECT ").text(kEventColumns).text(" FROM events WHERE ");
  b.visible(request);
  b.text(" AND ");
  b.conditions(filter);
  b.text(" ORDER BY created_at DESC, id ASC");
  if (limit) b.text(" LIMIT ").param(std::int64_t{*limit});
  return q;
}

SqlQuery build_key_select(const SqlDialect& dialect, const Filter& filter,
                          const QueryRequest& request, std::uint32_t limit) {
  SqlQuery q;
  SqlBuilder b(dialect, q);
  b.text("SELECT created_at, id FROM events WHERE ");
  b.committed(request);
  b.text(" AND ");
  b.conditions(filter);
  b.text(" ORDER BY created_at DESC, id ASC LIMIT ").param(std::int64_t{limit});
  return q;
}

SqlQuery build_tag_select(const SqlDialect& dialect, const Filter& filter,
                          const TagCondition& driver, std::string_view value,
                          const QueryRequest& request, std::optional<std::uint32_t> limit) {
  SqlQuery q;
  SqlBuilder b(dialect, q);
  // The tags columns are renamed so that the filter's conditions name the events columns. The
  // order is the tags key's, (created_at DESC, id) under the value, so no sort is needed.
  b.text("SELECT ").text(kEventColumns);
  b.text(" FROM (SELECT seq AS tag_seq, created_at AS tag_created, id AS tag_id");
  b.text(" FROM tags WHERE name = ").param(std::string_view(&driver.name, 1));
  b.text(" AND value = ").param(TagValue{value});
  if (filter.since) b.text(" AND created_at >= ").param(*filter.since);
  if (filter.until) b.text(" AND created_at <= ").param(*filter.until);
  b.after(request);
  b.text(") AS d CROSS JOIN events WHERE events.seq = d.tag_seq AND ");
  b.visible(request);
  b.text(" AND ");
  b.conditions(filter, &driver);
  b.text(" ORDER BY d.tag_created DESC, d.tag_id ASC");
  if (limit) b.text(" LIMIT ").param(std::int64_t{*limit});
  return q;
}

const TagCondition* tag_driver(const Filter& filter) noexcept {
  if (filter.ids || filter.authors) return nullptr;
  for (const TagCondition& cond : filter.tags) {
    if (cond.values.size() == 1) return &cond;
  }
  return nullptr;
}

SqlQuery build_search_select(const SqlDialect& dialect, const Filter& filter,
                             const QueryRequest& request, std::optional<std::uint32_t> limit) {
  SqlQuery q;
  SqlBuilder b(dialect, q);
  const std::vector<std::string> words =
      search::query_words(filter.search ? std::string_view(*filter.search) : "");
  if (words.empty()) {
    b.text("SELECT ").text(kEventColumns).text(" FROM events WHERE FALSE");
    return q;
  }
  if (dialect.search == SqlSearch::kFts5) {
    // The newest matches, from FTS5's doclists read backwards, with what ranking them needs,
    // then the matches among the events not yet in the index (all newer); the caller ranks
    // them and reads the JSON of the best.
    b.text("SELECT * FROM (SELECT events.seq, created_at, id, json_extract(json, '$.content') ");
    b.text("FROM events_search CROSS JOIN events ON ");
    b.text("events.seq = events_search.rowid WHERE events_search MATCH ");
    b.search_param(words);
    b.text(" AND ");
    b.visible(request);
    b.text(" AND ");
    b.conditions(filter, nullptr, /*with_search=*/false);
    b.text(" ORDER BY events_search.rowid DESC LIMIT ").param(std::int64_t{dialect.max_ranked});
    b.text(") UNION ALL SELECT seq, created_at, id, json_extract(json, '$.content') FROM events ");
    b.text("NOT INDEXED WHERE ");
    b.not_yet_indexed_match(*filter.search);
    b.text(" AND ");
    b.visible(request);
    b.text(" AND ");
    b.conditions(filter, nullptr, /*with_search=*/false);
    return q;
  }
  b.text("SELECT ").text(kEventColumns).text(" FROM events WHERE search @@ ");
  b.search_param(words);
  b.text(" AND ");
  b.visible(request);
  b.text(" AND ");
  b.conditions(filter, nullptr, /*with_search=*/false);
  b.text(" ORDER BY ts_rank(search, ");
  b.search_param(words);
  b.text(") DESC, created_at DESC, id ASC");
  if (limit) b.text(" LIMIT ").param(std::int64_t{*limit});
  return q;
}

SqlQuery build_query(const SqlDialect& dialect, const Filter& filter, const QueryRequest& request,
                     std::optional<std::uint32_t> limit) {
  if (filter.search && dialect.search != SqlSearch::kNone) {
    return build_search_select(dialect, filter, request, limit);
  }
  if (const TagCondition* driver = tag_driver(filter)) {
    return build_tag_select(dialect, filter, *driver, driver->values.front(), request, limit);
  }
  return build_select(dialect, filter, request, limit);
}

SqlQuery build_count(const SqlDialect& dialect, const std::vector<Filter>& filters,
                     const QueryRequest& request) {
  SqlQuery q;
  SqlBuilder b(dialect, q);
  b.text("SELECT COUNT(*) FROM events WHERE ");
  b.visible(request);
  b.text(" AND (");
  for (std::size_t i = 0; i < filters.size(); ++i) {
    if (i != 0) b.text(" OR ");
    b.text("(");
    b.conditions(filters[i]);
    b.text(")");
  }
  if (filters.empty()) b.text("FALSE");
  b.text(")");
  return q;
}

SqlQuery build_seq_select(const SqlDialect& dialect, const Filter& filter,
                          const QueryRequest& request, bool with_json) {
  SqlQuery q;
  SqlBuilder b(dialect, q);
  b.text("SELECT ").text(with_json ? kEventColumns : "seq").text(" FROM events WHERE ");
  b.visible(request);
  b.text(" AND ");
  b.conditions(filter);
  return q;
}

std::int64_t clamp_seq(std::uint64_t seq) noexcept {
  constexpr auto kMax = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  return static_cast<std::int64_t>(seq > kMax ? kMax : seq);
}

}  // namespace relaycore::storage
