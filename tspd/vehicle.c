/*
 * The vehicle listener (plain TCP: the protocol protects its messages).
 * Connections carry no state of their own: authentication and sessions
 * are per vehicle and live in the store, so a vehicle may reconnect or use
 * several connections.
 */
#include <stddef.h>

#include "log.h"
#include "msg.h"

#include "tspd.h"

/* Dispatch one frame from a vehicle. */
static void
vehicle_frame(struct conn *c, const struct frame *f, void *arg)
{
	struct tspd	*env = arg;

	switch (f->f_type) {
	case QROAM__MSG_TYPE__MT_M4:
		tspd_auth_m4(env, c, f);
		break;
	case QROAM__MSG_TYPE__MT_M3:
		tspd_session_m3(env, c, f);
		break;
	case QROAM__MSG_TYPE__MT_SESSION_MSG:
		tspd_session_msg(env, c, f);
		break;
	default:
		log_warnx("vehicle %s: unexpected message type %u (%s)",
		    conn_peer_addr(c), f->f_type, frame_type_name(f->f_type));
		conn_send_status(c, f->f_request_id,
		    QROAM__STATUS_CODE__BAD_REQUEST, "unexpected message type");
		break;
	}
}

static void
vehicle_close(struct conn *c, const char *reason, void *arg)
{
	(void)arg;
	log_debug("vehicle %s: closed: %s", conn_peer_addr(c), reason);
}

const struct conn_cb tspd_vehicle_cb = {
	.on_frame = vehicle_frame,
	.on_close = vehicle_close,
};
