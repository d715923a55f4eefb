// Contract: the error of the POSIX socket layer: the errno that Linux would give for the
// same failure (the reason, by its standard name). Its calls return
// base::Result<T, Errno>; the preload library turns a failure into -1 and errno at the
// boundary; nothing here throws.
#pragma once

#include "base/result.hpp"

namespace ms::posix {

// An errno value, as a type of its own so that it cannot be mistaken for a count.
struct Errno {
    int code = 0;
};

}  // namespace ms::posix
