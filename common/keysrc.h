/*
 * Quantum key source: where schedd and tspd get the keys of a handover
 * (CK1, CK2).  One small interface in front of a backend chosen once at
 * start, in the shape of OpenSMTPD's queue backends: each backend is one
 * file that fills a struct keysrc_backend, and callers only ever see
 * struct keysrc.  The first backend is the ETSI GS QKD 014 client
 * (keysrc_etsi014.c), which serves with the qkdd emulator or a real KME.
 *
 * The two calls are what the daemons need: the master side (schedd) asks
 * for a new 256-bit key shared with a slave SAE and learns its key_ID; the
 * slave side (tspd) asks for the key a master was given, by that key_ID.
 * Requests are asynchronous: the callback runs once from the event loop
 * with the key or the reason it failed.
 */
#ifndef QROAM_KEYSRC_H
#define QROAM_KEYSRC_H

#include <stddef.h>
#include <stdint.h>
#include <event2/event.h>
#include <openssl/ssl.h>

#define KEYSRC_KEYLEN	32	/* 256-bit keys */
#define KEYSRC_IDMAX	64	/* key_ID (a UUID is 36 chars) */
#define KEYSRC_DEFAULT	"etsi014"	/* the backend the daemons use */

enum keysrc_result {
	KEYSRC_OK,
	KEYSRC_UNAVAILABLE,	/* no key can be supplied (empty pool, QBER) */
	KEYSRC_REFUSED,		/* bad request or not authorised */
	KEYSRC_ERROR,		/* transport failure, timeout, malformed answer */
};

/*
 * key_id and key are valid only during the call (key is wiped after it);
 * on failure both are NULL and why says what went wrong (never key bytes).
 */
typedef void (*keysrc_cb)(void *arg, enum keysrc_result, const char *key_id,
	    const uint8_t *key, const char *why);

struct keysrc;

/*
 * The key source named backend (KEYSRC_DEFAULT) at host:port, reached with
 * the client TLS context tls (mutual TLS: the calling SAE is named by its
 * certificate); each request gets an answer within timeout_ms (<= 0: 10 s).
 * NULL for an unknown backend or arguments it cannot use.
 */
struct keysrc *keysrc_new(const char *backend, struct event_base *,
	    const char *host, uint16_t port, SSL_CTX *tls, int timeout_ms);
/* Requests not answered yet are dropped; their callbacks never run. */
void	keysrc_free(struct keysrc *);
/* What the source is, for logs ("ETSI GS QKD 014 KME"). */
const char *keysrc_name(const struct keysrc *);

/*
 * Master side: one new key shared with slave_sae.  0 when the callback
 * will run once, -1 when nothing was queued (bad SAE id, no memory).
 */
int	keysrc_get_key(struct keysrc *, const char *slave_sae, keysrc_cb,
	    void *);
/* Slave side: the key master_sae was given under key_id; as above. */
int	keysrc_get_key_by_id(struct keysrc *, const char *master_sae,
	    const char *key_id, keysrc_cb, void *);

/* A key_ID a source may hand out: 1..KEYSRC_IDMAX printable ASCII chars. */
int	keysrc_valid_key_id(const char *);

/*
 * What a backend fills.  The calls get the context kb_open returned, and
 * arguments already checked: a valid SAE name, a valid key_ID, a callback.
 * A backend runs callbacks from the event loop, never from inside the
 * call that queued them, and a callback may free the key source.
 */
struct keysrc_backend {
	const char	*kb_name;	/* as given to keysrc_new */
	const char	*kb_desc;	/* keysrc_name */
	void		*(*kb_open)(struct event_base *, const char *host,
			    uint16_t port, SSL_CTX *tls, int timeout_ms);
	int		 (*kb_get_key)(void *, const char *slave_sae,
			    keysrc_cb, void *);
	int		 (*kb_get_key_by_id)(void *, const char *master_sae,
			    const char *key_id, keysrc_cb, void *);
	void		 (*kb_close)(void *);
};

/* The backends built in. */
extern const struct keysrc_backend keysrc_etsi014;

#endif
