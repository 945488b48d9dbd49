/*
 * The cross-cloud handover of tspd (F6/F7).  As TSPA (handover.c) this
 * TSP offers M5 when a vehicle's look-ahead leaves its region, runs
 * A1/A2 with schedd on the vehicle's M6, opens M7 under CK1 and moves
 * the vehicle's context (RD1) to TSPB in M8 under CK2 (handover_offer.c
 * holds the vehicle-facing M5/M6 part).  As TSPB
 * (handover_in.c) it accepts A2 from schedd, obtains CK2 with A3, and
 * stores the context of a valid M8.  handover_msg.c holds the codecs,
 * handover_chan.c the long-lived channels every exchange travels on.
 */
#ifndef TSPD_HANDOVER_H
#define TSPD_HANDOVER_H

#include <stddef.h>
#include <stdint.h>

#include "chan.h"
#include "conn.h"
#include "crypto.h"
#include "frame.h"
#include "keysrc.h"
#include "qroam.pb-c.h"
#include "topo.h"

#include "db.h"

#define TSPD_HO_IDLEN	32		/* handover_id: lowercase hex */
#define TSPD_HO_MAXCT	(60 * 1024)	/* largest M7/M8 ciphertext */

struct tspd;

/* ---- codecs (handover_msg.c) ---- */

/*
 * Open M7 under CK1 (AAD qroam/1|M7|self|handover_id); NULL if it does
 * not decrypt or decode or CK2 is not 32 bytes.  Free with
 * tspd_m7_inner_free, which wipes CK2.
 */
Qroam__M7Inner *tspd_m7_open(const uint8_t ck1[CRYPTO_KEYLEN],
	    const char *self, const Qroam__M7 *m7);
void	tspd_m7_inner_free(Qroam__M7Inner *);
/*
 * Seal rd1 into m8 under CK2; m8's initiator, target and handover_id are
 * set by the caller and form the AAD.  m8->nonce and m8->ct are malloc'd.
 */
int	tspd_m8_seal(const uint8_t ck2[CRYPTO_KEYLEN], const Qroam__RD1 *rd1,
	    Qroam__M8 *m8);
/* Open M8 under CK2; NULL on any failure.  qroam__rd1__free_unpacked. */
Qroam__RD1 *tspd_m8_open(const uint8_t ck2[CRYPTO_KEYLEN],
	    const Qroam__M8 *m8);
/* M8Ack: ct = AEAD_CK2(handover_id); nonce and ct malloc'd. */
int	tspd_m8ack_seal(const uint8_t ck2[CRYPTO_KEYLEN], const char *initiator,
	    const char *target, const char *hid, Qroam__M8Ack *ack);
/* 0 if ack acknowledges hid under CK2, else -1. */
int	tspd_m8ack_check(const uint8_t ck2[CRYPTO_KEYLEN],
	    const char *initiator, const char *target, const char *hid,
	    const Qroam__M8Ack *ack);
/*
 * RD1.service carries where each history row was first stored:
 * "origin/1 TSP:SEQ TSP:SEQ ..." with one token per row.  encode returns
 * a malloc'd string (NULL if out of memory); decode expects exactly n
 * tokens: 0 or -1.
 */
char	*tspd_origins_encode(const struct tspdb_origin *, size_t n);
int	tspd_origins_decode(const char *s, size_t n, struct tspdb_origin *);
/*
 * Check a decrypted RD1 against the registration's chip and the fill
 * record's key count read from the store, filling origin[0..n_history-1]
 * (one per history row; initiator when RD1 names no origins).  Pure: no
 * store, no socket.  NULL if it may be applied, else the reason.
 */
const char *tspd_rd1_check(const Qroam__RD1 *rd1, const char *reg_chip_id,
	    uint32_t fill_m, const char *initiator, struct tspdb_origin *origin);

/* ---- cloud channels (handover_chan.c) ---- */

/* Open the channel to schedd (handover enabled only). */
void	tspd_handover_chan_open(struct tspd *);
/* Close every channel; the handovers using them are gone already. */
void	tspd_handover_chan_free(struct tspd *);
/* The channel to schedd; NULL when handovers are disabled. */
struct chan *tspd_handover_chan_sched(struct tspd *);
/* The channel to TSP tsp_id at host:port, made on first use; NULL if not. */
struct chan *tspd_handover_chan_peer(struct tspd *, const char *tsp_id,
	    const char *host, uint16_t port);

/* ---- TSPA: offers (handover_offer.c) ---- */

void	tspd_handover_offer_init(struct tspd *);
void	tspd_handover_offer_free(struct tspd *);
/*
 * Telemetry t arrived in session s: if the vehicle's look-ahead leaves
 * this region and it has not been offered a handover in this session,
 * seal an M5 as cloud->vehicle message tx_seq into out (out->ct.data is
 * malloc'd) and return 1; else 0.  The offer counts once the caller
 * committed tx_seq; if that fails it calls tspd_handover_offer_cancel.
 */
int	tspd_handover_offer(struct tspd *, const struct tspdb_session *s,
	    const Qroam__Telemetry *t, uint64_t tx_seq, Qroam__SessionMsg *out);
void	tspd_handover_offer_cancel(struct tspd *, const char *vid);
/* M6 in session s (its seq already accepted). */
void	tspd_handover_m6(struct tspd *, struct conn *, uint64_t request_id,
	    const struct tspdb_session *s, const Qroam__M6 *m6);
/* The vehicle's session ended: forget its offer. */
void	tspd_handover_session_end(struct tspd *, const char *vid);

/* ---- TSPA: the handover (handover.c) ---- */

void	tspd_handover_init(struct tspd *);
/* Fail every handover under way; done before the store closes. */
void	tspd_handover_shutdown(struct tspd *);
/* Free what is left once the key source is gone. */
void	tspd_handover_free(struct tspd *);
/* Start handing vid over to target (its M6 chose it). */
void	tspd_handover_start(struct tspd *, const char *vid,
	    const struct topo_tsp *target);
/* 1 if a handover of vid is under way, else 0. */
int	tspd_handover_running(struct tspd *, const char *vid);

/*
 * Fetch key_id of master from the KME for handover hid; done runs once
 * from the event loop unless the fetch cannot start (-1).
 */
typedef void (*tspd_key_done)(struct tspd *, const char *hid,
	    enum keysrc_result, const uint8_t *key, const char *why);
int	tspd_handover_fetch_key(struct tspd *, const char *master,
	    const char *key_id, const char *hid, tspd_key_done done);
/* "CODE: detail" of a Status frame, for the log. */
void	tspd_handover_status_text(const struct frame *, char *buf, size_t len);
/* Check a KeyReply for hid: NULL if usable, else the reason. */
const char *tspd_handover_key_reply_check(const Qroam__KeyReply *,
	    const char *hid);

/* ---- TSPB (handover_in.c) ---- */

void	tspd_handover_in_init(struct tspd *);
void	tspd_handover_in_shutdown(struct tspd *);
void	tspd_handover_in_free(struct tspd *);
/* A2 forwarded by schedd (the peer's role was checked). */
void	tspd_handover_access(struct tspd *, struct conn *,
	    const struct frame *);
/* M8 from TSPA (the peer's role was checked). */
void	tspd_handover_m8(struct tspd *, struct conn *, const struct frame *);
/* A provisioning connection closed: forget M8s waiting on it. */
void	tspd_handover_in_conn_closed(struct tspd *, struct conn *);

#endif
