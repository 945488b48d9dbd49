/*
 * kmpd, the key management platform of PROTOCOL 11.1: the object shared
 * by the listeners (server.c), the applications (apply.c), the operator
 * and filler provisioning (provision.c) and the operations interface
 * (ops.c).
 */
#ifndef KMPD_KMP_H
#define KMPD_KMP_H

#include <sys/queue.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <jansson.h>
#include <openssl/ssl.h>

#include "config.h"
#include "conn.h"
#include "db.h"
#include "keysrc.h"
#include "qroam.pb-c.h"
#include "topo.h"

#define KMP_MAX_PENDING	1024	/* applications waiting for a key at once */
#define KMP_IDENTITY_MAX	64	/* a chip_id: 64 lowercase hex chars */

struct kmp_apply;
TAILQ_HEAD(kmp_applies, kmp_apply);

struct kmp {
	const struct kmpd_conf	*k_conf;
	const struct topo	*k_topo;
	struct event_base	*k_base;
	struct kmp_db		*k_db;
	struct keysrc		*k_keys;
	struct conn_barrier	*k_barrier;
	struct listener		*k_vlis;	/* vehicles, plain TCP */
	struct listener		*k_clis;	/* encryptors, mutual TLS */
	struct kmp_applies	 k_pending;	/* waiting for the key source */
	size_t			 k_npending;
};

/* An identity: a name of PROTOCOL section 3, or a chip_id. */
int	kmp_valid_identity(const char *);

/* server.c: open the store, the key source and both listeners. */
struct kmp	*kmp_new(struct event_base *, const struct kmpd_conf *,
		    const struct topo *, SSL_CTX *server_tls, SSL_CTX *client_tls);
void		 kmp_free(struct kmp *);
/* Log a refused request, count it by reason and answer it with code. */
void		 kmp_refuse(struct conn *, uint64_t reqid, const char *what,
		    const char *reason, int code, const char *why);

/*
 * apply.c: a KmpApply frame from a party of kind (KMP_KIND_VEHICLE on the
 * plain listener, KMP_KIND_ENCRYPTOR on the TLS one).  Answered now or
 * once the key source answers; a refusal changes nothing.
 */
void	kmp_apply(struct kmp *, struct conn *, const struct frame *,
	    const char *kind);
/* c closed: its applications waiting for a key are dropped. */
void	kmp_apply_conn_closed(struct kmp *, struct conn *);
void	kmp_apply_shutdown(struct kmp *);

/* provision.c: a KmpIdentity frame from an operator or the filler. */
void	kmp_provision(struct kmp *, struct conn *, const struct frame *);

/* ops.c: metrics and /status. */
void	kmp_ops_init(struct kmp *);
void	kmp_ops_free(struct kmp *);
void	kmp_metric_issued(const char *kind, int complete, int new_key);
json_t	*kmp_status(void *arg, const char *what, json_t *obj);

#endif
