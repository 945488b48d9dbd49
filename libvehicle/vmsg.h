/*
 * The vehicle's side of the F3/F4/F5 messages, shared by vehicled, qbench
 * and the qprobe test tool: build M4 and M3, check AuthResult, open the
 * TSP's SessionMsg replies.  No sockets and no storage.
 */
#ifndef LIBVEHICLE_VMSG_H
#define LIBVEHICLE_VMSG_H

#include <stdint.h>
#include <openssl/evp.h>

#include "chip.h"
#include "crypto.h"
#include "frame.h"
#include "msg.h"
#include "qroam.pb-c.h"
#include "route.h"

enum vmsg_auth {
	VMSG_AUTH_OK,		/* AuthResult OK for our nonce, signature valid */
	VMSG_AUTH_REFUSED,	/* AuthResult or Status with another code */
	VMSG_AUTH_BAD_SIG,	/* OK for our nonce, signature does not verify */
	VMSG_AUTH_OTHER,	/* OK for another nonce (an earlier M4) */
	VMSG_AUTH_MALFORMED,	/* not a decodable AuthResult or Status */
};

/*
 * Build M4 for tsp_id with a fresh nonce (returned in nonce).  m4->ct is
 * malloc'd; release with vmsg_m4_clear().  0 or -1.
 */
int	vmsg_m4(Qroam__M4 *m4, EVP_PKEY *pbv, const char *vid,
	    const char *chip_id, const char *tsp_id, uint64_t unix_ms,
	    uint8_t nonce[MSG_AUTH_NONCELEN]);
void	vmsg_m4_clear(Qroam__M4 *m4);
/* Check a reply to M4; *code receives the status code carried. */
enum vmsg_auth vmsg_auth_check(const struct frame *, EVP_PKEY *pbv,
	    const char *vid, const char *tsp_id,
	    const uint8_t nonce[MSG_AUTH_NONCELEN], int *code);

/*
 * Build M3 naming ck by index (sequential) or code (arbitrary), K1
 * wrapped under the chip key and d1 under K1.  Release with msg_m3_clear().
 */
int	vmsg_m3(Qroam__M3 *m3, const char *vid, const char *tsp_id,
	    const struct chip_key *ck, enum chip_mode mode, const uint8_t k1[32],
	    const Qroam__Telemetry *d1);

/* K1 wrapped under a chip key ahead of time, for an M3 sent later. */
struct vmsg_wrap {
	uint8_t		vw_nonce[CRYPTO_NONCELEN];
	uint8_t		vw_cek1[CRYPTO_KEYLEN + CRYPTO_TAGLEN];
};

/* CEK1 = AEAD_pfk(k1) with a fresh nonce for vid's M3 to tsp_id; 0 or -1. */
int	vmsg_m3_wrap(struct vmsg_wrap *, const char *vid, const char *tsp_id,
	    const uint8_t pfk[32], const uint8_t k1[32]);
/*
 * Build M3 from a wrapped K1: the key named by index (sequential) or code
 * (arbitrary), copies of the wrap and G1 = AEAD_k1(d1) with a fresh
 * nonce.  Release with msg_m3_clear().  0 or -1.
 */
int	vmsg_m3_wrapped(Qroam__M3 *m3, const char *vid, const char *tsp_id,
	    uint32_t index, const char *code, enum chip_mode mode,
	    const uint8_t k1[32], const struct vmsg_wrap *,
	    const Qroam__Telemetry *d1);

/*
 * Open a SessionMsg frame from the TSP under k1: the vehicle id must be
 * ours and seq above *rx_seq (then *rx_seq = seq).  NULL with *why set
 * when it does not decode, is not ours, is a replay or does not decrypt.
 */
Qroam__SessionInner *vmsg_session_in(const struct frame *, const uint8_t k1[32],
	    const char *vid, const char *tsp_id, uint64_t *rx_seq,
	    const char **why);
/* Seal inner as the vehicle's SessionMsg seq; out->ct.data is malloc'd. */
int	vmsg_session_out(Qroam__SessionMsg *out, const uint8_t k1[32],
	    const char *vid, const char *tsp_id, uint64_t seq,
	    const Qroam__SessionInner *inner);

/* Decode a Status frame; 0 and *code, or -1. */
int	vmsg_status(const struct frame *, int *code);

/* A Telemetry sample at a route position (fuel falls with the odometer). */
void	vmsg_telemetry(Qroam__Telemetry *, const struct route_pos *,
	    uint64_t unix_ms);

#endif
