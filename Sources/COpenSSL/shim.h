#ifndef ERP_GATEWAY_COPENSSL_SHIM_H
#define ERP_GATEWAY_COPENSSL_SHIM_H

// libcrypto for TokenAuth (and Certificates: X.509 chains checked, uploaded keys sealed): public keys parsed once into EVP_PKEYs, signatures checked with
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
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/rsa.h>

// Macros and macro-wrapped functions Swift cannot import.

/// `OPENSSL_free` is a macro around `CRYPTO_free` carrying the caller's file and line.
static inline void erp_openssl_free(void *pointer) {
    OPENSSL_free(pointer);
}

/// `EVP_PKEY_RSA` / `EVP_PKEY_EC` are macros over NIDs; exposed as functions so their
/// meaning does not depend on how Swift imports nested macros.
static inline int erp_evp_pkey_rsa(void) { return EVP_PKEY_RSA; }
static inline int erp_evp_pkey_ec(void) { return EVP_PKEY_EC; }
static inline int erp_evp_pkey_ed25519(void) { return EVP_PKEY_ED25519; }

/// RSASSA-PSS as JWS means it (RFC 7518 §3.5): MGF1 with the signature's digest, salt as long
/// as the digest. The padding and salt-length constants are macros.
static inline int erp_set_rsa_pss(EVP_PKEY_CTX *context) {
    if (EVP_PKEY_CTX_set_rsa_padding(context, RSA_PKCS1_PSS_PADDING) != 1) return 0;
    return EVP_PKEY_CTX_set_rsa_pss_saltlen(context, RSA_PSS_SALTLEN_DIGEST) == 1;
}

/// A certificate's subjectAltName entries (NULL without the extension); free with
/// `erp_general_names_free`. The stack accessors are macros in OpenSSL 3.
static inline GENERAL_NAMES *erp_x509_subject_alt_names(const X509 *certificate) {
    return (GENERAL_NAMES *)X509_get_ext_d2i(certificate, NID_subject_alt_name, NULL, NULL);
}
static inline int erp_general_names_count(const GENERAL_NAMES *names) { return sk_GENERAL_NAME_num(names); }
/// The `index`th entry's DNS name and its length, or NULL when that entry is not a DNS name.
static inline const unsigned char *erp_general_name_dns(const GENERAL_NAMES *names, int index, int *length) {
    const GENERAL_NAME *name = sk_GENERAL_NAME_value(names, index);
    if (name == NULL || name->type != GEN_DNS) return NULL;
    *length = ASN1_STRING_length(name->d.dNSName);
    return ASN1_STRING_get0_data(name->d.dNSName);
}
static inline void erp_general_names_free(GENERAL_NAMES *names) { GENERAL_NAMES_free(names); }

/// The RFC 2253 name format is a macro of several flags.
static inline unsigned long erp_xn_flag_rfc2253(void) { return XN_FLAG_RFC2253; }

/// AES-GCM's tag controls are macros.
static inline int erp_gcm_get_tag(EVP_CIPHER_CTX *context, unsigned char *tag, int length) {
    return EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_GET_TAG, length, tag);
}
static inline int erp_gcm_set_tag(EVP_CIPHER_CTX *context, unsigned char *tag, int length) {
    return EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_SET_TAG, length, tag);
}

#endif
