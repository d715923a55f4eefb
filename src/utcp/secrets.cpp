#include "utcp/secrets.hpp"

#include <sodium.h>

namespace ms::utcp {

const char* to_string(SecretsError e) {
    switch (e) {
        case SecretsError::no_random_source: return "libsodium could not initialise its random source";
    }
    return "?";
}

base::Result<StackSecrets, SecretsError> draw_secrets() {
    if (sodium_init() < 0) return SecretsError::no_random_source;
    StackSecrets s;
    for (SecretKey* key : {&s.isn, &s.syn_cookies, &s.fast_open}) randombytes_buf(key->data(), key->size());
    randombytes_buf(&s.flow_label, sizeof s.flow_label);
    return s;
}

}  // namespace ms::utcp
