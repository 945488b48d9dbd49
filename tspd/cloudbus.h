/*
 * The cloud bus: what the instances of one region tell each other
 * (PROTOCOL section 12, doc/protocol.md section 14), over the region's
 * PostgreSQL store.  Each instance keeps one connection of its own to
 * the database, LISTENs on the region's channel (qroam_cloud_<tsp_id>,
 * the tsp_id's "." and "-" as "_") and sends with pg_notify; a note is a
 * CloudNote (proto/qroam.proto) sealed under the cloud's synchronised key
 * stream (keystream.h), carried as the text of cloudnote.h.
 *
 * The connection is non-blocking on the event loop from its first byte
 * (PQconnectStart/PQconnectPoll): a lost or refused connection is a
 * state, retried with a backoff of 0.25 s doubling to 8 s; while it is
 * not listening, notes are not sent (cloudbus_send fails) and notes sent
 * by the others are missed, since NOTIFY keeps nothing for a listener
 * that is not there.
 *
 * A receiver drops its own notes, opens the others' with keystream_open
 * and hands what opened to the callback; a note that does not open, or
 * does not parse, is logged with the reason and counted as the refusal
 * "cloud_<reason>" (qroam_refusals_total), and changes nothing.
 */
#ifndef TSPD_CLOUDBUS_H
#define TSPD_CLOUDBUS_H

#include <stdint.h>

#include <event2/event.h>
#include <jansson.h>

#include "keystream.h"
#include "qroam.pb-c.h"

struct cloudbus;

struct cloudbus_opts {
	const char	*cbo_conninfo;	/* the region's store */
	const char	*cbo_tsp_id;
	const char	*cbo_instance;	/* this instance's name: from, to */
	const uint8_t	*cbo_k0;	/* KS_KEYLEN bytes, copied */
	int64_t		 cbo_t0_ms;
	int64_t		 cbo_dt_ms;
};

/* A note that opened: from is the sending instance. */
typedef void	(*cloudbus_note_cb)(void *arg, const char *from,
		    const Qroam__CloudNote *note);

/*
 * Make the key stream, take its first step (hashing from K0: before the
 * event loop runs) and start connecting.  NULL on bad options.
 */
struct cloudbus *cloudbus_new(struct event_base *,
	    const struct cloudbus_opts *, cloudbus_note_cb, void *arg);
/* Close the connection, wipe the keys, free; NULL is fine. */
void	cloudbus_free(struct cloudbus *);
/*
 * Seal note for to (an instance or CLOUDNOTE_ALL) and send it: 0 once it
 * is handed to libpq, -1 (logged) when the bus is not listening or the
 * note does not fit.
 */
int	cloudbus_send(struct cloudbus *, const char *to,
	    const Qroam__CloudNote *note);
/* 1 while the bus listens (notes can go and come). */
int	cloudbus_listening(const struct cloudbus *);
/* The bus for /status: state, channel, step, counts. */
json_t	*cloudbus_json(const struct cloudbus *);

#endif
