#ifndef ERP_GATEWAY_COPENSSL_SHIM_H
#define ERP_GATEWAY_COPENSSL_SHIM_H

// libcrypto for TokenAuth: public keys parsed once into EVP_PKEYs, signatures checked with
// EVP_DigestVerify, HMAC compared in constant time; for ProxyEngine, the tenant context signed
// through an EVP_MAC context keyed once. Only OpenSSL 3 APIs that are not
// deprecated are used from Swift.
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ecdsa.h>
#include <openssl/bn.h>
#include <openssl/hmac.h>
#include <openssl/crypto.h>
#include <openssl/params.h>

// Macros and macro-wrapped functions Swift cannot import.

/// `OPENSSL_free` is a macro around `CRYPTO_free` carrying the caller's file and line.
static inline void erp_openssl_free(void *pointer) {
    OPENSSL_free(pointer);
}

/// `EVP_PKEY_RSA` / `EVP_PKEY_EC` are macros over NIDs; exposed as functions so their
/// meaning does not depend on how Swift imports nested macros.
static inline int erp_evp_pkey_rsa(void) { return EVP_PKEY_RSA; }
static inline int erp_evp_pkey_ec(void) { return EVP_PKEY_EC; }

#endif
