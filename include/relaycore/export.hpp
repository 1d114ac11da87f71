// Symbol visibility for relaycore. The library builds with hidden visibility; what the public
// headers declare is exported through RELAYCORE_API.
#pragma once

#if defined(RELAYCORE_STATIC)
#define RELAYCORE_API
#elif defined(_WIN32)
#if defined(RELAYCORE_BUILDING)
#define RELAYCORE_API __declspec(dllexport)
#else
#define RELAYCORE_API __declspec(dllimport)
#endif
#else
#define RELAYCORE_API [[gnu::visibility("default")]]
#endif
