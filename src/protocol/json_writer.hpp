// Small helpers for writing the NIP-01 canonical JSON form by hand. No JSON library produces
// the exact escapes NIP-01 ids are computed over, so this is relaycore's own.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace relaycore::json {

// Appends `s` quoted, escaping \" \\ \n \r \t \b \f and other C0 controls as \u00xx; every
// other byte (DEL, '/', non-ASCII, U+2028) is written verbatim.
void append_string(std::string& out, std::string_view s);

// The exact number of bytes append_string would add, so buffers can be sized once.
std::size_t quoted_size(std::string_view s) noexcept;

void append_int(std::string& out, std::int64_t value);
void append_uint(std::string& out, std::uint64_t value);

// Appends 2*size lowercase hex digits in quotes.
void append_hex_string(std::string& out, const std::uint8_t* data, std::size_t size);

}  // namespace relaycore::json
