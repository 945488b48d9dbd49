/*
 * The outbox service of a daemon whose every accepted request changes its
 * store and queues a message for every TSP in the same transaction
 * (fillerd: fill records, registrard: registrations).  It owns the SQLite
 * store, the outbox that delivers to the TSPs (outbox.h), the mutual-TLS
 * listener that lets only certain certificate roles send the one request
 * type, and the admin endpoint's /status.  The daemon brings its protocol
 * step as a struct outboxd_proto.
 */
#ifndef QROAM_OUTBOXD_H
#define QROAM_OUTBOXD_H

#include <jansson.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>
#include <event2/event.h>

#include "conf.h"
#include "conn.h"
#include "outbox.h"
#include "topo.h"

#define OUTBOXD_MAXROLES	4

struct outboxd_proto {
	/* The daemon's role in the topology, for logs: "filler". */
	const char	  *op_role;
	/* The store's migrations, outbox_schema among them (store.h). */
	const char *const *op_schema;
	size_t		   op_nschema;
	/* Certificate roles that may send requests (conn_peer_role). */
	const char	  *op_roles[OUTBOXD_MAXROLES];
	/* Another role is refused: reason logged, detail of its Status. */
	const char	  *op_refused;
	const char	  *op_refused_detail;
	/* The one request message type. */
	uint32_t	   op_type;
	/* What the outbox holds, for the start-up log: "fill records". */
	const char	  *op_backlog;
	/* The /status summary field and the SELECT count(*) that gives it. */
	const char	  *op_count;
	const char	  *op_count_sql;

	/*
	 * The protocol's state: op_state_size zeroed bytes that op_open
	 * fills in once the store is open (its prepared statements); conf
	 * and topo outlive it.
	 */
	size_t		   op_state_size;
	void	(*op_open)(void *state, const void *conf,
		    const struct topo *, sqlite3 *, struct outbox *);
	/* One request of type op_type from an allowed role. */
	void	(*op_request)(void *state, struct conn *,
		    const struct frame *);
	/*
	 * Optional, for a protocol step that answers some requests later
	 * (after work on other threads): a connection closed and is freed
	 * on return, so nothing may be sent on it any more.
	 */
	void	(*op_closed)(void *state, struct conn *);
};

struct outboxd;

/*
 * conf is the daemon's configuration, which begins with its struct
 * cfg_common (daemon.h): make the TLS contexts of its credentials, open
 * the store it names, resume the outbox to the TSPs of topo and listen on
 * ep, the daemon's endpoint in topo.  conf and topo must outlive the
 * service.  NULL on failure (logged).
 */
struct outboxd *outboxd_new(struct event_base *, const struct outboxd_proto *,
	    const void *conf, const struct topo *, const struct endpoint *ep);
void	outboxd_free(struct outboxd *);
/*
 * The protocol's state (op_state_size bytes), for the daemon's own
 * start-up, reload and shutdown steps around the service's.
 */
void	*outboxd_state(struct outboxd *);

/*
 * The admin endpoint's /status callback (admin_status_cb) on the service:
 * the op_count field and the outbox backlog; /status/outbox: per TSP
 * [{dest, pending, attempts, oldest_ms}] (outbox_json).
 */
json_t	*outboxd_status(void *arg, const char *what, json_t *obj);

#endif
