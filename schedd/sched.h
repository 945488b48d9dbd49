/*
 * schedd, the cloud scheduling platform of the handover (PROTOCOL F6):
 * the scheduler object shared by the listener (server.c) and the handover
 * state machine (handover.c).
 */
#ifndef SCHEDD_SCHED_H
#define SCHEDD_SCHED_H

#include <sys/queue.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "chan.h"
#include "config.h"
#include "conn.h"
#include "db.h"
#include "keysrc.h"
#include "keysrc_reserve.h"
#include "qroam.pb-c.h"
#include "topo.h"

#define SCHED_MAX_HANDOVERS	4096	/* unfinished at once */
#define SCHED_HO_IDLEN		32	/* lowercase hex chars */

struct handover;
struct sched_chans;
TAILQ_HEAD(handovers, handover);

struct sched {
	const struct schedd_conf *s_conf;
	const struct topo	*s_topo;
	struct event_base	*s_base;
	SSL_CTX			*s_client_tls;
	SSL_CTX			*s_kme_tls;	/* the key source's */
	struct sched_db		*s_db;
	struct keysrc		*s_keys;
	/* keys.c: the keys held for each TSP, by its index in s_topo. */
	struct keysrc_reserve	*s_reserves[TOPO_MAXTSP];
	struct listener		*s_lis;
	struct handovers	 s_handovers;
	size_t			 s_nhandovers;
	struct sched_chans	*s_chans;	/* channels.c */
	int			 s_stopping;
};

/* server.c: start listening on the topology's sched endpoint. */
struct sched	*sched_new(struct event_base *, const struct schedd_conf *,
		    const struct topo *, SSL_CTX *server_tls, SSL_CTX *client_tls);
void		 sched_free(struct sched *);

/*
 * handover.c: A1, A2 and A3 from the TSP on c, already checked against its
 * certificate.  0 when the request was taken (its answer follows, now or
 * later), or the StatusCode of a refusal with why filled in; a refusal
 * changes nothing.
 */
int	ho_a1(struct sched *, struct conn *c, uint64_t reqid,
	    const Qroam__KeyRequest *, char *why, size_t whylen);
int	ho_a2(struct sched *, struct conn *c, uint64_t reqid,
	    const Qroam__AccessRequest *, char *why, size_t whylen);
int	ho_a3(struct sched *, struct conn *c, uint64_t reqid,
	    const Qroam__KeyRequest *, char *why, size_t whylen);
/*
 * ops.c: metrics and the admin endpoint's /status callback.  A handover
 * ended with result (ok or failed); with created_ms != 0 its time from A1
 * goes into the latency histogram.
 */
void	sched_ops_init(struct sched *);
void	sched_ops_free(struct sched *);
void	sched_metric_handover(const char *result, uint64_t created_ms);
json_t	*sched_status(void *arg, const char *what, json_t *obj);

/*
 * keys.c: a key reserve for every TSP of the topology, key_reserve keys
 * each (keysrc_reserve.h).  init: 0 or -1 (logged); resize takes over a
 * new key_reserve; the reserve of TSP tsp_id, NULL if it is none.
 */
int	sched_keys_init(struct sched *);
void	sched_keys_free(struct sched *);
void	sched_keys_resize(struct sched *);
struct keysrc_reserve *sched_keys_reserve(struct sched *, const char *tsp_id);

/*
 * channels.c: the long-lived channel to tt's provisioning listener, made
 * on first use (NULL if it cannot be); all closed by sched_chans_free.
 */
struct chan	*sched_chan_tsp(struct sched *, const struct topo_tsp *tt);
void		 sched_chans_free(struct sched *);

/* A TSP's connection closed: handovers waiting to answer on it fail. */
void	ho_conn_closed(struct sched *, struct conn *c);
/* Stop: fail every unfinished handover and free them all. */
void	ho_shutdown(struct sched *);

#endif
