# The library's private dependencies, all from Debian 12 packages. The same list is replayed with
# find_dependency in relaycore-config.cmake, so a static relaycore links for consumers too.

find_package(Threads REQUIRED)
find_package(Secp256k1 REQUIRED)
find_package(simdjson REQUIRED)
find_package(OpenSSL REQUIRED COMPONENTS Crypto)
find_package(fmt REQUIRED)
# permessage-deflate in the WebSocket server.
find_package(ZLIB REQUIRED)
find_package(SQLite3 REQUIRED)
find_package(Asio REQUIRED)
