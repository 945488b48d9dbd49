/*
 * A provisioning channel: the vehicle side's connection to the filler or
 * the registrar (F1, F2) on the caller's event loop, never blocking it.
 * One mutual-TLS connection, opened when a request needs it and closed
 * once none is left, carries many requests at once, told apart by request
 * id: at most a window of them in flight, the others queued in order.  A
 * fleet enrolls over one channel per server; a single vehicle's refill
 * uses one for its two requests.
 *
 * Every request gets exactly one answer through its callback, on the loop
 * and never inside the call that submitted it: the reply frame, or
 * VPROV_NO_REPLY when the connection could not be made or failed, or no
 * reply came within the timeout of the oldest request in flight (which
 * closes the connection: a server that answers in order and misses one
 * answer is taken as stuck).  A filler stopped dead thus costs the
 * requests waiting for it one timeout, and nothing else on the loop.
 */
#ifndef LIBVEHICLE_PROVCHAN_H
#define LIBVEHICLE_PROVCHAN_H

#include <sys/queue.h>
#include <stddef.h>
#include <stdint.h>
#include <event2/event.h>
#include <protobuf-c/protobuf-c.h>

#include "frame.h"

struct vprov;
struct vprov_chan;

enum vprov_role {
	VPROV_FILLER,
	VPROV_REGISTRAR,
};

/* One request; embedded in the caller's struct. */
struct vprov_req {
	/*
	 * The answer: rc 0 with the reply frame (valid during the call
	 * only), or VPROV_NO_REPLY / VPROV_ERROR with reply NULL.  The
	 * request is the caller's again from the start of the call: it may
	 * be submitted anew from inside it.
	 */
	void			 (*vr_done)(struct vprov_req *, int rc,
				    const struct frame *reply);
	void			  *vr_arg;
	/* The channel's own from vprov_chan_submit until vr_done. */
	uint32_t		   vr_type;
	uint8_t			  *vr_payload;
	size_t			   vr_len;
	uint64_t		   vr_id;
	uint64_t		   vr_deadline_ms;
	int			   vr_where;
	TAILQ_ENTRY(vprov_req)	   vr_entry;
};

/*
 * A channel to role's endpoint in vp's topology with vp's credential and
 * timeout, frames up to max_frame (0: vp's), window requests in flight
 * (0: 1).  NULL if the credential cannot be loaded (logged).
 */
struct vprov_chan *vprov_chan_new(struct event_base *, const struct vprov *vp,
	    enum vprov_role, size_t max_frame, size_t window);
/*
 * Drop the connection and free the channel.  Requests still queued or in
 * flight get no answer: their owners must not wait for one.
 */
void	vprov_chan_free(struct vprov_chan *);
/*
 * Queue msg as a request of type; 0, or -1 if it cannot be encoded (then
 * no answer comes).  The connection opens if none is open.
 */
int	vprov_chan_submit(struct vprov_chan *, struct vprov_req *,
	    uint32_t type, const ProtobufCMessage *msg);
/* Withdraw a request: no answer comes (a reply that still arrives is dropped). */
void	vprov_chan_cancel(struct vprov_chan *, struct vprov_req *);
/*
 * Close the connection now (requests still queued or in flight get no
 * answer), so that it can finish before the loop stops.
 */
void	vprov_chan_close(struct vprov_chan *);
/* Connections of every channel still closing (for a drain at shutdown). */
int	vprov_chan_draining(void);
/* Requests queued and in flight. */
size_t	vprov_chan_pending(const struct vprov_chan *);
/* The timeout applied to requests from now on (a reload). */
void	vprov_chan_set_timeout(struct vprov_chan *, int timeout_ms);

#endif
