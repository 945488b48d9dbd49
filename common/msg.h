/*
 * Protocol codecs of PROTOCOL sections 4 and 6: AAD strings, the M4
 * authentication blob, M3 wrapping, session traffic and the applications
 * to the key management platform (PROTOCOL 11.1).  Pure functions:
 * no sockets, no storage, no logging of secrets; unit-tested on their own.
 */
#ifndef QROAM_MSG_H
#define QROAM_MSG_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/evp.h>

#include "qroam.pb-c.h"

#define MSG_AUTH_NONCELEN	16
#define MSG_DIR_V2C		1	/* vehicle -> cloud */
#define MSG_DIR_C2V		2	/* cloud -> vehicle */
#define MSG_AAD_MAX		256

/*
 * "qroam/1|LABEL|f1|f2|...": fields are NUL-terminated strings, the list
 * ends with NULL.  Returns 0, or -1 if buf (len bytes) is too small.
 */
int	msg_aad(char *buf, size_t len, const char *label, ...)
	    __attribute__((sentinel));

/* direction (4 bytes BE) || seq (8 bytes BE). */
void	msg_session_nonce(uint32_t dir, uint64_t seq, uint8_t nonce[12]);

/* Name of a StatusCode ("KEY_REUSED"), "?" if unknown. */
const char *msg_status_name(int code);

/* ---- F3 ---- */

/* Vehicle: ct = RSA-OAEP_pbv(AuthInner{chip_id, tsp_id, nonce, unix_ms}). */
int	msg_m4_seal(EVP_PKEY *pbv, const char *chip_id, const char *tsp_id,
	    const uint8_t nonce[MSG_AUTH_NONCELEN], uint64_t unix_ms,
	    uint8_t **ct, size_t *ctlen);
/* TSP: decrypt and decode; NULL if it does not decrypt or decode, or the
 * nonce is not 16 bytes.  Free with qroam__auth_inner__free_unpacked. */
Qroam__AuthInner *msg_m4_open(EVP_PKEY *prv, const uint8_t *ct, size_t ctlen,
    const char **why);
/* Text signed in AuthResult: qroam/1|AUTH-OK|vid|tsp|hex(nonce). */
int	msg_auth_text(char *buf, size_t len, const char *vid, const char *tsp_id,
	    const uint8_t nonce[MSG_AUTH_NONCELEN]);

/* ---- F4 ---- */

/*
 * Vehicle: fill m3 (already qroam__m3__init'ed, vehicle_id and key_index or
 * code set by the caller) with fresh nonces, CEK1 = AEAD_pfk(k1) and
 * G1 = AEAD_k1(d1).  Buffers are malloc'd; release with msg_m3_clear.
 */
int	msg_m3_seal(Qroam__M3 *m3, const char *tsp_id,
	    const uint8_t pfk[32], const uint8_t k1[32], const Qroam__Telemetry *d1);
void	msg_m3_clear(Qroam__M3 *m3);
/*
 * TSP: unwrap K1 with pfk, then decrypt D1.  0 on success (*d1 to be freed
 * with qroam__telemetry__free_unpacked), -1 on any failure; k1 is wiped on
 * failure.
 */
int	msg_m3_open(const Qroam__M3 *m3, const char *tsp_id,
	    const uint8_t pfk[32], uint8_t k1[32], Qroam__Telemetry **d1);

/* ---- F5 ---- */

/* Fill out (qroam__session_msg__init'ed) with ct = AEAD_k1(inner); ct.data
 * is malloc'd and owned by the caller. */
int	msg_session_seal(const uint8_t k1[32], const char *vid, const char *tsp_id,
	    uint32_t dir, uint64_t seq, const Qroam__SessionInner *inner,
	    Qroam__SessionMsg *out);
/* Decrypt and decode; NULL on failure.  Free with
 * qroam__session_inner__free_unpacked. */
Qroam__SessionInner *msg_session_open(const uint8_t k1[32], const char *tsp_id,
	    uint32_t dir, const Qroam__SessionMsg *m);

/* ---- KMP (PROTOCOL 11.1) ---- */

#define MSG_KMP_NONCELEN	16

/*
 * Applicant: fill out (qroam__kmp_apply__init'ed) with identity,
 * session_id and iv, ct = AEAD_ik(KmpApplyInner{identity, session_id,
 * nonce, time_ms}) under AAD qroam/1|KMP-APPLY|identity|session_id.  iv
 * and ct are malloc'd (msg_kmp_clear); the strings are borrowed.
 */
int	msg_kmp_apply_seal(const uint8_t ik[32], const char *identity,
	    const char *session_id, const uint8_t nonce[MSG_KMP_NONCELEN],
	    uint64_t time_ms, Qroam__KmpApply *out);
/*
 * kmpd: the inner application, or NULL when it does not open under ik,
 * does not decode, or names another identity or session_id than a.  Free
 * with qroam__kmp_apply_inner__free_unpacked.
 */
Qroam__KmpApplyInner *msg_kmp_apply_open(const uint8_t ik[32],
	    const Qroam__KmpApply *a);
/*
 * kmpd: the answer, ct = AEAD_ik(KmpKeyInner{key, nonce}) under AAD
 * qroam/1|KMP-KEY|identity|session_id; as msg_kmp_apply_seal.
 */
int	msg_kmp_key_seal(const uint8_t ik[32], const char *identity,
	    const char *session_id, const uint8_t key[32],
	    const uint8_t nonce[MSG_KMP_NONCELEN], Qroam__KmpKey *out);
/*
 * Applicant: the session key into key, 0; -1 when k does not open under
 * ik or does not answer the application of nonce.
 */
int	msg_kmp_key_open(const uint8_t ik[32], const Qroam__KmpKey *k,
	    const uint8_t nonce[MSG_KMP_NONCELEN], uint8_t key[32]);
/* Free the iv and ct a seal filled in. */
void	msg_kmp_clear(ProtobufCBinaryData *iv, ProtobufCBinaryData *ct);

#endif
