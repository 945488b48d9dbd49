/*
 * The KME side of ETSI GS QKD 014 v1.1.1 as PROTOCOL section 7 gives it,
 * and the operators' link administration, as request -> reply functions
 * with no I/O: http.c feeds them requests and sends their replies.  The
 * replies of enc_keys and dec_keys that touched the key store wait for
 * the store's group commit (pool.h): http.c holds them until kme_commit
 * and then until that commit is durable.
 *
 *   GET       /api/v1/keys/{slave_SAE_ID}/status
 *   GET|POST  /api/v1/keys/{slave_SAE_ID}/enc_keys	(caller = master)
 *   GET|POST  /api/v1/keys/{master_SAE_ID}/dec_keys	(caller = slave)
 *   GET       /admin/v1/links				(role operator)
 *   GET|POST  /admin/v1/links/{sae_a}/{sae_b}		(role operator)
 */
#ifndef QKDD_KME_H
#define QKDD_KME_H

#include <stddef.h>
#include <jansson.h>

#include "config.h"
#include "links.h"
#include "pool.h"

enum kme_method {
	KME_GET,
	KME_POST,
	KME_OTHER,
};

struct kme_request {
	enum kme_method	 kr_method;
	const char	*kr_path;	/* path part of the URI */
	const char	*kr_query;	/* query string, NULL if none */
	const char	*kr_body;
	size_t		 kr_bodylen;
	const char	*kr_cn;		/* certificate CN: the SAE id */
	const char	*kr_role;	/* caller's certificate OU */
	const char	*kr_peer;	/* caller's address, for logs */
};

struct kme_reply {
	int		 kp_status;	/* HTTP status */
	char		*kp_body;	/* JSON text, malloc'd */
	size_t		 kp_len;
	int		 kp_secret;	/* body holds keys: wipe once sent */
	int		 kp_commit;	/* send once kme_commit is durable */
	const struct qkd_link *kp_link;	/* dec_keys: delivered on this link */
	size_t		 kp_delivered;	/* keys, counted once committed */
};

struct kme {
	const struct qkdd_conf	*k_conf;
	struct qkd_pool		*k_pool;
	struct qkd_links	*k_links;
};

/* Answer one request; the reply is always set (free with kme_reply_free). */
void	kme_handle(struct kme *, const struct kme_request *,
	    struct kme_reply *);
void	kme_reply_free(struct kme_reply *);

/*
 * Commit the key store's open group: 0 if the changes behind the held
 * replies are stored, else -1 (logged).  Then settle each held reply:
 * count its deliveries, or, when the group failed, turn it into a 503.
 */
int	kme_commit(struct kme *);
void	kme_reply_settle(struct kme_reply *, int committed);

/* A {"message": ...} reply with status, logged with the request. */
void	kme_error(struct kme_reply *, const struct kme_request *, int status,
	    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* A reply holding the JSON value v (reference stolen). */
void	kme_json(struct kme_reply *, int status, json_t *v);
/* The request body as a JSON object ({} when empty); NULL after a 400. */
json_t	*kme_body_object(const struct kme_request *, struct kme_reply *);

/*
 * The request parsers of enc_keys and dec_keys, touching neither the key
 * store nor a socket (so they are fuzzed alone): each returns -1 after
 * setting a 400 reply.
 */
struct kme_enc_params {
	unsigned	ep_number;
	unsigned	ep_size;	/* bits */
};
/* number and size from the query of GET enc_keys; 0 or -1. */
int	kme_enc_query(const struct kme_request *, struct kme_enc_params *,
	    struct kme_reply *);
/* number and size from the body of POST enc_keys; 0 or -1. */
int	kme_enc_body(const struct kme_request *, struct kme_enc_params *,
	    struct kme_reply *);
/* Range checks of number and size against the configuration; 0 or -1. */
int	kme_enc_check(struct kme *, const struct kme_request *,
	    const struct kme_enc_params *, struct kme_reply *);
/*
 * key_IDs of POST dec_keys into ids (at most max_key_per_request, which
 * is at most 1024; pointers into *body, json_decref it); n or -1.
 */
int	kme_dec_body(struct kme *, const struct kme_request *, json_t **body,
	    const char **ids, struct kme_reply *);

/* /admin/v1/links[/{a}/{b}]: seg holds the path segments after "links". */
void	kme_admin(struct kme *, const struct kme_request *, char **seg,
	    size_t nseg, struct kme_reply *);

#endif
