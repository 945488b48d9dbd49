/*
 * The vehicle listener (plain TCP: the protocol protects its messages).
 * Authentication and sessions are per vehicle and live in the store, so a
 * vehicle may reconnect or use several connections; the listener only
 * remembers which connection each vehicle last spoke on, so that a
 * message the TSP starts itself (HandoverReady) can reach it.
 */
#include <sys/queue.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "ids.h"
#include "log.h"
#include "msg.h"

#include "tspd.h"

#define VTAB_BUCKETS	256

/* A vehicle and the connection it last spoke on. */
struct vlink {
	char			 vl_vid[VIN_LEN + 1];
	struct conn		*vl_conn;
	TAILQ_ENTRY(vlink)	 vl_entry;
};

TAILQ_HEAD(vlist, vlink);

struct tspd_vtab {
	struct vlist	 vt_bucket[VTAB_BUCKETS];
};

void
tspd_vehicle_init(struct tspd *env)
{
	size_t	 i;

	env->t_vtab = xcalloc(1, sizeof(*env->t_vtab));
	for (i = 0; i < VTAB_BUCKETS; i++)
		TAILQ_INIT(&env->t_vtab->vt_bucket[i]);
}

void
tspd_vehicle_free(struct tspd *env)
{
	struct vlink	*vl;
	size_t		 i;

	if (env->t_vtab == NULL)
		return;
	for (i = 0; i < VTAB_BUCKETS; i++) {
		while ((vl = TAILQ_FIRST(&env->t_vtab->vt_bucket[i])) != NULL) {
			TAILQ_REMOVE(&env->t_vtab->vt_bucket[i], vl, vl_entry);
			free(vl);
		}
	}
	free(env->t_vtab);
	env->t_vtab = NULL;
}

/* The bucket of vid (FNV-1a). */
static struct vlist *
vtab_bucket(struct tspd *env, const char *vid)
{
	uint32_t	 h = 2166136261u;

	while (*vid != '\0')
		h = (h ^ (uint8_t)*vid++) * 16777619u;
	return &env->t_vtab->vt_bucket[h % VTAB_BUCKETS];
}

/* The link of vid, or NULL. */
static struct vlink *
vtab_find(struct tspd *env, const char *vid)
{
	struct vlink	*vl;

	TAILQ_FOREACH(vl, vtab_bucket(env, vid), vl_entry)
		if (strcmp(vl->vl_vid, vid) == 0)
			return vl;
	return NULL;
}

void
tspd_vehicle_bind(struct tspd *env, const char *vid, struct conn *c)
{
	struct vlink	*vl;

	if (env->t_vtab == NULL || strlen(vid) > VIN_LEN)
		return;
	if ((vl = vtab_find(env, vid)) == NULL) {
		if ((vl = calloc(1, sizeof(*vl))) == NULL) {
			log_warn("vehicle %s: remembering its connection", vid);
			return;
		}
		memcpy(vl->vl_vid, vid, strlen(vid) + 1);
		TAILQ_INSERT_HEAD(vtab_bucket(env, vid), vl, vl_entry);
	}
	vl->vl_conn = c;
}

struct conn *
tspd_vehicle_conn(struct tspd *env, const char *vid)
{
	struct vlink	*vl;

	if (env->t_vtab == NULL || (vl = vtab_find(env, vid)) == NULL)
		return NULL;
	return vl->vl_conn;
}

/* Forget every vehicle whose last connection was c. */
static void
vtab_unbind(struct tspd *env, struct conn *c)
{
	struct vlink	*vl, *next;
	struct vlist	*b;
	size_t		 i;

	if (env->t_vtab == NULL)
		return;
	for (i = 0; i < VTAB_BUCKETS; i++) {
		b = &env->t_vtab->vt_bucket[i];
		for (vl = TAILQ_FIRST(b); vl != NULL; vl = next) {
			next = TAILQ_NEXT(vl, vl_entry);
			if (vl->vl_conn != c)
				continue;
			TAILQ_REMOVE(b, vl, vl_entry);
			free(vl);
		}
	}
}

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
	vtab_unbind(arg, c);
	tspd_batch_conn_closed(arg, c);
	tspd_auth_conn_closed(arg, c);
	log_debug("vehicle %s: closed: %s", conn_peer_addr(c), reason);
}

const struct conn_cb tspd_vehicle_cb = {
	.on_frame = vehicle_frame,
	.on_close = vehicle_close,
};
