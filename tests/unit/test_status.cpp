#include <catch2/catch.hpp>

#include "relaycore/status.hpp"

using namespace relaycore;

TEST_CASE("Status carries its NIP-01 prefix", "[status]") {
  CHECK(Status().is_ok());
  CHECK(Status::ok().message().empty());
  CHECK(Status::invalid("bad id").message() == "invalid: bad id");
  CHECK(Status::duplicate("already have it").message() == "duplicate: already have it");
  CHECK(Status::blocked("x").message() == "blocked: x");
  CHECK(Status::rate_limited("x").message() == "rate-limited: x");
  CHECK(Status::restricted("x").message() == "restricted: x");
  CHECK(Status::auth_required("x").message() == "auth-required: x");
  CHECK(Status::pow("x").message() == "pow: x");
  CHECK(Status::error("x").message() == "error: x");
  CHECK(Status::invalid("bad id").detail() == "bad id");
  CHECK(Status::invalid("bad id").code() == StatusCode::kInvalid);
  CHECK_FALSE(Status::error("x").is_ok());
}

TEST_CASE("Status keeps a detail that already has its prefix", "[status]") {
  CHECK(Status::invalid("invalid: twice").message() == "invalid: twice");
  CHECK(Status::blocked("invalid: other").message() == "blocked: invalid: other");
}

TEST_CASE("Result holds a value or a Status", "[status]") {
  Result<int> good = 42;
  REQUIRE(good.is_ok());
  CHECK(*good == 42);
  Result<int> bad = Status::error("nope");
  REQUIRE_FALSE(bad.is_ok());
  CHECK(bad.error().message() == "error: nope");
}
