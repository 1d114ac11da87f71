// The storage conformance suite, unchanged, against the PostgreSQL storage: every case on a
// database of its own.
#include <catch2/catch.hpp>

#include "conformance/storage_conformance.hpp"
#include "postgres_test_util.hpp"

RELAYCORE_STORAGE_CONFORMANCE(postgres, relaycore::postgres_test::fresh_storage())
RELAYCORE_STORAGE_SEARCH_CONFORMANCE(postgres)
