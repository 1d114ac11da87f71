/* A C program built against an installed or vendored relaycore through relaycore::c: signs an
 * event, submits it to a relay in memory and counts it. Exits non-zero on the first failure. */
#include <stdio.h>
#include <string.h>

#include "relaycore/relaycore.h"

static int check(relaycore_status status, const char* what) {
  if (status == RELAYCORE_OK) return 0;
  fprintf(stderr, "c_consumer: FAILED: %s: %s\n", what, relaycore_last_error());
  return 1;
}

int main(void) {
  const char* secret = "0101010101010101010101010101010101010101010101010101010101010101";
  relaycore_options options;
  relaycore_relay* relay = NULL;
  char* event = NULL;
  int accepted = 0;
  uint64_t count = 0;
  int failures = 0;

  memset(&options, 0, sizeof options);
  options.struct_size = sizeof options;
  options.database_path = ":memory:";
  options.verify_threads = 1;
  if (check(relaycore_relay_open(&options, &relay), "open")) return 1;
  failures += check(relaycore_sign_event(secret, 1, 1700000000, "from C", NULL, &event), "sign");
  failures += check(relaycore_submit(relay, event, &accepted, NULL), "submit");
  failures += check(relaycore_count(relay, "{\"kinds\":[1]}", &count), "count");
  if (accepted != 1 || count != 1) {
    fprintf(stderr, "c_consumer: FAILED: accepted %d, count %lu\n", accepted, (unsigned long)count);
    ++failures;
  }
  relaycore_free(event);
  relaycore_relay_free(relay);
  if (failures == 0) printf("c_consumer: ok (relaycore %s)\n", relaycore_version());
  return failures == 0 ? 0 : 1;
}
