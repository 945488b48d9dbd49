/*
 * The vehicle listener (plain TCP: the protocol protects its messages).
 * Authentication and sessions are per vehicle and live in the store, so a
 * vehicle may reconnect or use several connections; the listener only
 * remembers which connection each vehicle last spoke on, so that a
 * message the TSP starts itself (HandoverReady) can reach it.  When that
 * connection closes, the vehicle's session leaves memory (the store keeps
 * it), so memory follows the vehicles connected.  The table is hashed by
 * vehicle and by connection and grows with the fleet.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ids.h"
#include "log.h"
#include "msg.h"

#include "tspd.h"

#define VTAB_MINBUCKETS	1024

/* A vehicle and the connection it last spoke on. */
struct vlink {
	char			 vl_vid[VIN_LEN + 1];
	struct conn		*vl_conn;
	struct vlink		*vl_next;	/* chain by vehicle */
	struct vlink		*vl_cnext;	/* chain by connection */
};

struct tspd_vtab {
	struct vlink	**vt_byvid;
	struct vlink	**vt_byconn;
	size_t		  vt_nbucket;	/* a power of two */
	size_t		  vt_count;
};

void
tspd_vehicle_init(struct tspd *env)
{
	struct tspd_vtab	*vt;

	vt = xcalloc(1, sizeof(*vt));
	vt->vt_nbucket = VTAB_MINBUCKETS;
	vt->vt_byvid = xcalloc(vt->vt_nbucket, sizeof(*vt->vt_byvid));
	vt->vt_byconn = xcalloc(vt->vt_nbucket, sizeof(*vt->vt_byconn));
	env->t_vtab = vt;
}

void
tspd_vehicle_free(struct tspd *env)
{
	struct tspd_vtab	*vt = env->t_vtab;
	struct vlink		*vl;
	size_t			 i;

	if (vt == NULL)
		return;
	for (i = 0; i < vt->vt_nbucket; i++) {
		while ((vl = vt->vt_byvid[i]) != NULL) {
			vt->vt_byvid[i] = vl->vl_next;
			free(vl);
		}
	}
	free(vt->vt_byvid);
	free(vt->vt_byconn);
	free(vt);
	env->t_vtab = NULL;
}

/* Bucket index of vid (FNV-1a). */
static size_t
vtab_vid_hash(const struct tspd_vtab *vt, const char *vid)
{
	uint32_t	 h = 2166136261u;

	while (*vid != '\0')
		h = (h ^ (uint8_t)*vid++) * 16777619u;
	return h & (vt->vt_nbucket - 1);
}

/* Bucket index of a connection (its address, Fibonacci hashing). */
static size_t
vtab_conn_hash(const struct tspd_vtab *vt, const struct conn *c)
{
	uint64_t	 h = (uint64_t)(uintptr_t)c * 0x9e3779b97f4a7c15ull;

	return (size_t)(h >> 32) & (vt->vt_nbucket - 1);
}

/* The link pointing at vid's entry (or the chain's NULL end). */
static struct vlink **
vtab_slot(struct tspd_vtab *vt, const char *vid)
{
	struct vlink	**p = &vt->vt_byvid[vtab_vid_hash(vt, vid)];

	while (*p != NULL && strcmp((*p)->vl_vid, vid) != 0)
		p = &(*p)->vl_next;
	return p;
}

/* Unlink vl from the chain of its connection. */
static void
vtab_conn_unlink(struct tspd_vtab *vt, struct vlink *vl)
{
	struct vlink	**p = &vt->vt_byconn[vtab_conn_hash(vt, vl->vl_conn)];

	while (*p != NULL && *p != vl)
		p = &(*p)->vl_cnext;
	if (*p != NULL)
		*p = vl->vl_cnext;
	vl->vl_cnext = NULL;
}

static void
vtab_conn_link(struct tspd_vtab *vt, struct vlink *vl)
{
	struct vlink	**b = &vt->vt_byconn[vtab_conn_hash(vt, vl->vl_conn)];

	vl->vl_cnext = *b;
	*b = vl;
}

/* Double both tables when full; kept as they are if memory is short. */
static void
vtab_grow(struct tspd_vtab *vt)
{
	struct vlink	**byvid, **byconn, **old, *vl;
	size_t		  i, n = vt->vt_nbucket * 2, oldn = vt->vt_nbucket;

	if (vt->vt_count < vt->vt_nbucket)
		return;
	byvid = calloc(n, sizeof(*byvid));
	byconn = calloc(n, sizeof(*byconn));
	if (byvid == NULL || byconn == NULL) {
		free(byvid);
		free(byconn);
		return;
	}
	old = vt->vt_byvid;
	free(vt->vt_byconn);
	vt->vt_byvid = byvid;
	vt->vt_byconn = byconn;
	vt->vt_nbucket = n;
	for (i = 0; i < oldn; i++) {
		while ((vl = old[i]) != NULL) {
			old[i] = vl->vl_next;
			vl->vl_next = byvid[vtab_vid_hash(vt, vl->vl_vid)];
			byvid[vtab_vid_hash(vt, vl->vl_vid)] = vl;
			vtab_conn_link(vt, vl);
		}
	}
	free(old);
}

void
tspd_vehicle_bind(struct tspd *env, const char *vid, struct conn *c)
{
	struct tspd_vtab	*vt = env->t_vtab;
	struct vlink		*vl, **p;

	if (vt == NULL || strlen(vid) > VIN_LEN)
		return;
	if ((vl = *vtab_slot(vt, vid)) != NULL) {
		if (vl->vl_conn == c)
			return;
		vtab_conn_unlink(vt, vl);
		vl->vl_conn = c;
		vtab_conn_link(vt, vl);
		return;
	}
	if ((vl = calloc(1, sizeof(*vl))) == NULL) {
		log_warn("vehicle %s: remembering its connection", vid);
		return;
	}
	memcpy(vl->vl_vid, vid, strlen(vid) + 1);
	vl->vl_conn = c;
	vtab_grow(vt);
	p = vtab_slot(vt, vid);
	*p = vl;
	vtab_conn_link(vt, vl);
	vt->vt_count++;
}

struct conn *
tspd_vehicle_conn(struct tspd *env, const char *vid)
{
	struct vlink	*vl;

	if (env->t_vtab == NULL || (vl = *vtab_slot(env->t_vtab, vid)) == NULL)
		return NULL;
	return vl->vl_conn;
}

/*
 * Forget every vehicle whose last connection was c; their sessions leave
 * memory.
 */
static void
vtab_unbind(struct tspd *env, struct conn *c)
{
	struct tspd_vtab	*vt = env->t_vtab;
	struct vlink		**p, *vl, **v;

	if (vt == NULL)
		return;
	p = &vt->vt_byconn[vtab_conn_hash(vt, c)];
	while ((vl = *p) != NULL) {
		if (vl->vl_conn != c) {
			p = &vl->vl_cnext;
			continue;
		}
		*p = vl->vl_cnext;
		v = vtab_slot(vt, vl->vl_vid);
		*v = vl->vl_next;
		vt->vt_count--;
		tspdb_session_release(env->t_db, vl->vl_vid);
		free(vl);
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
	tspd_batch_conn_closed(arg, c);
	tspd_auth_conn_closed(arg, c);
	vtab_unbind(arg, c);
	log_debug("vehicle %s: closed: %s", conn_peer_addr(c), reason);
}

const struct conn_cb tspd_vehicle_cb = {
	.on_frame = vehicle_frame,
	.on_close = vehicle_close,
};
