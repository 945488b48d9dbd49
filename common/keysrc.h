/*
 * Quantum key source: where schedd and tspd get the keys of a handover
 * (CK1, CK2).  One small interface in front of a backend chosen once at
 * start, in the shape of OpenSMTPD's queue backends: each backend is one
 * file that fills a struct keysrc_backend, and callers only ever see
 * struct keysrc.  The first backend is the ETSI GS QKD 014 client
 * (keysrc_etsi014.c), which serves with the qkdd emulator or a real KME.
 *
 * The two calls are what the daemons need: the master side (schedd) asks
 * for new 256-bit keys shared with a slave SAE and learns their key_IDs;
 * the slave side (tspd) asks for the keys a master was given, by those
 * key_IDs.  Either call names several keys at once (ETSI 014 `number` and
 * a list of key_IDs), all or none.  Requests are asynchronous: the
 * callback runs once from the event loop with the keys or the reason it
 * failed, unless the request was cancelled first.
 *
 * keysrc_reserve.h holds keys of one slave SAE ahead of need on top of
 * this interface.
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
#define KEYSRC_BATCH_MAX	128	/* keys one call may name at most */

enum keysrc_result {
	KEYSRC_OK,
	KEYSRC_UNAVAILABLE,	/* no key can be supplied (empty pool, QBER) */
	KEYSRC_REFUSED,		/* bad request or not authorised */
	KEYSRC_ERROR,		/* transport failure, timeout, malformed answer */
};

/* One key as a source hands it out. */
struct keysrc_key {
	char		kk_id[KEYSRC_IDMAX + 1];	/* key_ID */
	uint8_t		kk_key[KEYSRC_KEYLEN];
};

/*
 * keys[0..n-1] are valid only during the call (they are wiped after it);
 * on failure keys is NULL, n is 0 and why says what went wrong (never key
 * bytes).  On success why is NULL.
 */
typedef void (*keysrc_cb)(void *arg, enum keysrc_result,
	    const struct keysrc_key *keys, size_t n, const char *why);

struct keysrc;
struct keysrc_backend;

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
/*
 * The key source on a backend of the caller's own (one not built in, or
 * a stand-in for tests); NULL as keysrc_new.
 */
struct keysrc *keysrc_open(const struct keysrc_backend *,
	    struct event_base *, const char *host, uint16_t port, SSL_CTX *tls,
	    int timeout_ms);
/* What the source is, for logs ("ETSI GS QKD 014 KME"). */
const char *keysrc_name(const struct keysrc *);

/*
 * Master side: number (1..KEYSRC_BATCH_MAX) new keys shared with
 * slave_sae, in one call.  0 when the callback will run once, -1 when
 * nothing was queued (bad SAE id or number, no memory).
 */
int	keysrc_get_keys(struct keysrc *, const char *slave_sae, size_t number,
	    keysrc_cb, void *);
/*
 * Slave side: the keys master_sae was given under key_ids[0..n-1]
 * (1..KEYSRC_BATCH_MAX different key_IDs), in one call; the callback gets
 * them in that order.  As above.
 */
int	keysrc_get_keys_by_id(struct keysrc *, const char *master_sae,
	    const char *const *key_ids, size_t n, keysrc_cb, void *);
/*
 * Drop every request made with cb and arg: their callbacks will not run.
 * May be called from any callback.
 */
void	keysrc_cancel(struct keysrc *, keysrc_cb, void *);

/* A key_ID a source may hand out: 1..KEYSRC_IDMAX printable ASCII chars. */
int	keysrc_valid_key_id(const char *);

/*
 * What a backend fills.  The calls get the context kb_open returned, and
 * arguments already checked: a valid SAE name, 1..KEYSRC_BATCH_MAX keys,
 * valid and different key_IDs, a callback.  A backend runs callbacks from
 * the event loop, never from inside the call that queued them, and a
 * callback may make or cancel requests and free the key source.
 */
struct keysrc_backend {
	const char	*kb_name;	/* as given to keysrc_new */
	const char	*kb_desc;	/* keysrc_name */
	void		*(*kb_open)(struct event_base *, const char *host,
			    uint16_t port, SSL_CTX *tls, int timeout_ms);
	int		 (*kb_get_keys)(void *, const char *slave_sae,
			    size_t number, keysrc_cb, void *);
	int		 (*kb_get_keys_by_id)(void *, const char *master_sae,
			    const char *const *key_ids, size_t n, keysrc_cb,
			    void *);
	void		 (*kb_cancel)(void *, keysrc_cb, void *);
	void		 (*kb_close)(void *);
};

/* The backends built in. */
extern const struct keysrc_backend keysrc_etsi014;
/* Keys from this host's random source (rand.h), for kmpd without a KME. */
extern const struct keysrc_backend keysrc_random;

#endif
