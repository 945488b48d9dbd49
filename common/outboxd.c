/*
 * The outbox service (outboxd.h): store, outbox, mutual-TLS listener and
 * /status around a daemon's protocol step.
 */
#include <stdlib.h>
#include <string.h>

#include "commit.h"
#include "daemon.h"
#include "frame.h"
#include "log.h"
#include "msg.h"
#include "outboxd.h"
#include "store.h"

#define OUTBOXD_IDLE_MS	60000

struct outboxd {
	const struct outboxd_proto *os_proto;
	sqlite3			*os_db;
	struct committer	*os_commit;
	struct conn_barrier	*os_barrier;
	struct outbox		*os_ob;
	struct listener		*os_lis;
	sqlite3_stmt		*os_count;
	SSL_CTX			*os_srv, *os_cli;
	void			*os_state;	/* the protocol's */
};

/* 1 if the proto lets certificates of role send requests. */
static int
outboxd_role_allowed(const struct outboxd_proto *p, const char *role)
{
	size_t	i;

	for (i = 0; i < OUTBOXD_MAXROLES && p->op_roles[i] != NULL; i++)
		if (strcmp(role, p->op_roles[i]) == 0)
			return 1;
	return 0;
}

static void
outboxd_on_frame(struct conn *c, const struct frame *f, void *arg)
{
	struct outboxd			*os = arg;
	const struct outboxd_proto	*p = os->os_proto;
	const char			*role = conn_peer_role(c);

	if (!outboxd_role_allowed(p, role)) {
		log_warnx("refused %s from %s (%s, role \"%s\"): %s",
		    frame_type_name(f->f_type), conn_peer_addr(c),
		    conn_peer_cn(c), role, p->op_refused);
		conn_send_status(c, f->f_request_id,
		    QROAM__STATUS_CODE__AUTH_FAILED, p->op_refused_detail);
		conn_close(c, "unauthorised role");
		return;
	}
	if (f->f_type == p->op_type) {
		p->op_request(os->os_state, c, f);
		return;
	}
	log_warnx("unexpected %s (%u) from %s", frame_type_name(f->f_type),
	    f->f_type, conn_peer_addr(c));
	conn_send_status(c, f->f_request_id, QROAM__STATUS_CODE__BAD_REQUEST,
	    "unexpected message type");
}

static void
outboxd_on_close(struct conn *c, const char *reason, void *arg)
{
	(void)arg;
	log_debug("connection %s closed: %s", conn_peer_addr(c), reason);
}

static const struct conn_cb outboxd_cb = {
	.on_frame = outboxd_on_frame,
	.on_close = outboxd_on_close,
};

/* The barrier's count of the store's commits. */
static uint64_t
outboxd_written(void *arg)
{
	struct outboxd	*os = arg;

	return committer_written(os->os_commit);
}

/* The committer made n commits durable: answers and deliveries may go. */
static void
outboxd_durable(uint64_t n, void *arg)
{
	struct outboxd	*os = arg;

	conn_barrier_release(os->os_barrier, n);
}

struct outboxd *
outboxd_new(struct event_base *base, const struct outboxd_proto *p,
    const void *conf, const struct topo *topo, const struct endpoint *ep)
{
	const struct cfg_common	*cc = conf;
	struct outboxd		*os;
	struct conn_opts	 o;

	if (ep->ep_port == 0) {
		log_warnx("topology has no %s address", p->op_role);
		return NULL;
	}
	os = xcalloc(1, sizeof(*os));
	os->os_proto = p;
	daemon_tls(cc, &os->os_srv, &os->os_cli);
	os->os_db = store_open(cc->cc_store, p->op_schema, p->op_nschema,
	    STORE_COMMITTER);
	if (os->os_db == NULL ||
	    (os->os_commit = committer_start(base, os->os_db, cc->cc_store,
	    outboxd_durable, os)) == NULL)
		goto fail;
	os->os_barrier = conn_barrier_new(outboxd_written, os);
	os->os_count = store_prepare(os->os_db, p->op_count_sql);
	os->os_ob = outbox_new(base, os->os_db, topo, os->os_cli,
	    cc->cc_max_frame, os->os_barrier);
	os->os_state = xcalloc(1, p->op_state_size);
	p->op_open(os->os_state, conf, topo, os->os_db, os->os_ob);
	memset(&o, 0, sizeof(o));
	o.co_tls = os->os_srv;
	o.co_max_frame = cc->cc_max_frame;
	o.co_idle_ms = OUTBOXD_IDLE_MS;
	o.co_barrier = os->os_barrier;
	os->os_lis = listener_new(base, ep->ep_host, ep->ep_port, &o,
	    &outboxd_cb, os);
	if (os->os_lis == NULL)
		goto fail;
	log_info("listening on %s:%u, %llu %s waiting for sync", ep->ep_host,
	    ep->ep_port, (unsigned long long)outbox_depth(os->os_ob),
	    p->op_backlog);
	outbox_kick(os->os_ob);
	return os;
 fail:
	outboxd_free(os);
	return NULL;
}

json_t *
outboxd_status(void *arg, const char *what, json_t *obj)
{
	struct outboxd	*os = arg;
	int64_t		 n;

	if (what == NULL) {
		if (store_row_int64(os->os_count, &n, 1) == -1)
			n = -1;
		json_object_set_new(obj, os->os_proto->op_count,
		    json_integer(n));
		json_object_set_new(obj, "outbox",
		    json_integer((json_int_t)outbox_depth(os->os_ob)));
		return obj;
	}
	if (strcmp(what, "outbox") == 0)
		return outbox_json(os->os_ob);
	return NULL;
}

void
outboxd_free(struct outboxd *os)
{
	if (os == NULL)
		return;
	listener_free(os->os_lis);
	free(os->os_state);
	outbox_free(os->os_ob);
	committer_stop(os->os_commit);
	store_close(os->os_db);
	conn_barrier_free(os->os_barrier);
	SSL_CTX_free(os->os_srv);
	SSL_CTX_free(os->os_cli);
	free(os);
}
