/*
 * Long-lived channels between daemons, as bgpd keeps its sessions and
 * OpenSMTPD its mproc channels.  A channel is one client connection (in
 * the cloud: mutual TLS) to one peer, with the peer's CN and role checked
 * by the I/O layer on every connect.  It connects when created, probes a
 * quiet peer with MT_PING (conn.h answers it on every connection) and
 * counts the peer lost once nothing came back for CHAN_DEAD_PINGS pings;
 * after a loss or a failed connect it waits out an exponential backoff
 * and connects again.  The reconnect is a state of the channel, not an
 * error of its users.
 *
 * Many requests share a channel, told apart by the Envelope's request_id,
 * which the channel assigns.  Each request gets exactly one callback:
 * with the peer's reply, or without one and the reason (its timeout
 * passed; the channel was lost while it was in flight; the connect it
 * waited for failed), unless it was cancelled first.  A request made
 * while the channel is connecting or backing off waits for the next
 * connect.
 */
#ifndef QROAM_CHAN_H
#define QROAM_CHAN_H

#include <stddef.h>
#include <stdint.h>
#include <event2/event.h>
#include <protobuf-c/protobuf-c.h>

#include "conn.h"
#include "frame.h"

#define CHAN_PING_MS		5000	/* probe interval of an open channel */
#define CHAN_DEAD_PINGS		3	/* silent intervals before it is lost */
#define CHAN_BACKOFF_MIN_MS	100	/* first wait after a loss */
#define CHAN_BACKOFF_MAX_MS	2000	/* the wait doubles up to this */

struct chan;

/*
 * The reply f to a request (released by the channel after the return), or
 * f NULL and why.  The callback may make and cancel requests on any
 * channel, but must not free the channel it is called from.
 */
typedef void (*chan_reply_cb)(void *arg, const struct frame *f,
	    const char *why);

struct chan_opts {
	const char	*cho_name;	/* the peer, for logs and metrics */
	const char	*cho_host;
	uint16_t	 cho_port;
	/* TLS, peer CN and role, frame limit, connect timeout. */
	struct conn_opts cho_conn;
	int		 cho_ping_ms;	/* 0: CHAN_PING_MS */
};

/* A channel to o's peer, connecting at once; strings of o are copied. */
struct chan	*chan_new(struct event_base *, const struct chan_opts *);
/*
 * Close the connection and free the channel now.  Requests still pending
 * are dropped without a callback: their owners go first.
 */
void		 chan_free(struct chan *);

/*
 * Send msg as a request of type type, answered to cb(arg) within
 * timeout_ms (0: no limit but the channel's life).  0 and *id set (for
 * chan_cancel), or -1 if it cannot be encoded or queued (no callback).
 */
int		 chan_request(struct chan *, uint32_t type,
		    const ProtobufCMessage *msg, int timeout_ms,
		    chan_reply_cb cb, void *arg, uint64_t *id);
/* Forget request id: its callback will not run; a late reply is dropped. */
void		 chan_cancel(struct chan *, uint64_t id);

const char	*chan_name(const struct chan *);
/* 1 while the connection is up and identified, else 0. */
int		 chan_is_open(const struct chan *);
/* Requests waiting for their reply or for the connection. */
size_t		 chan_npending(const struct chan *);
/* Completed connects since the channel was made. */
uint64_t	 chan_nconnects(const struct chan *);
/* 1 if the channel reaches host:port, else 0. */
int		 chan_is_to(const struct chan *, const char *host, uint16_t port);

#endif
