// Asio, included through one place. At -O2 GCC 12 reports -Wnull-dereference inside Asio's
// scheduler (a false positive in a system header that inlining drags into our code), so the
// warning is off for Asio's own lines only; our code stays under -Werror.
#pragma once

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <asio.hpp>
#pragma GCC diagnostic pop
