/*
 * schedd's listener: mutual TLS on the topology's sched endpoint.  Only a
 * TSP of the topology (certificate role tsp, CN a known tsp_id) may speak;
 * anyone else gets Status AUTH_FAILED and is dropped.  Each frame is
 * unpacked and checked against the sender's certificate here, then handed
 * to the handover state machine (handover.c).  A malformed or unexpected
 * message gets BAD_REQUEST and changes nothing.
 */
#include <stdlib.h>
#include <string.h>

#include "ids.h"
#include "log.h"
#include "msg.h"
#include "sched.h"
#include "store.h"
#include "tls.h"

#define SCHED_IDLE_MS	300000		/* TSP connections without input */

/* Log a refused request and answer it with code and why. */
static void
sched_refuse(struct conn *c, const struct frame *f, const char *what,
    const char *hid, int code, const char *why)
{
	log_warnx("%s from %s (%s) handover %s refused: %s (%s)", what,
	    conn_peer_cn(c), conn_peer_addr(c),
	    hid != NULL && id_valid_hex(hid, SCHED_HO_IDLEN) ? hid : "?",
	    msg_status_name(code), why);
	conn_send_status(c, f->f_request_id, code, why);
}

/* Why tsp may not be named in a request from cn, or NULL. */
static const char *
sched_check_tsp(struct sched *s, const char *tsp, const char *cn,
    int must_be_cn)
{
	if (!id_valid_name(tsp) || topo_tsp(s->s_topo, tsp) == NULL)
		return "not a TSP of the topology";
	if (must_be_cn && strcmp(tsp, cn) != 0)
		return "does not match the certificate";
	if (!must_be_cn && strcmp(tsp, cn) == 0)
		return "names the sender itself";
	return NULL;
}

/* MT_KEY_REQUEST: A1 (no initiator) from TSPA or A3 from TSPB. */
static void
sched_key_request(struct sched *s, struct conn *c, const struct frame *f)
{
	Qroam__KeyRequest	*req;
	const char		*cn = conn_peer_cn(c), *bad, *what = "A1";
	char			 why[200];
	int			 code = QROAM__STATUS_CODE__BAD_REQUEST;

	req = (Qroam__KeyRequest *)frame_unpack(f, &qroam__key_request__descriptor);
	if (req == NULL) {
		sched_refuse(c, f, "KeyRequest", NULL, code, "malformed KeyRequest");
		return;
	}
	if (req->initiator != NULL)
		what = "A3";
	if (req->type != 1)
		snprintf(why, sizeof(why), "type %u is not a key request",
		    req->type);
	else if (!id_valid_hex(req->handover_id, SCHED_HO_IDLEN))
		snprintf(why, sizeof(why), "handover_id is not %d lowercase hex "
		    "characters", SCHED_HO_IDLEN);
	else if ((bad = sched_check_tsp(s, req->from, cn, 1)) != NULL)
		snprintf(why, sizeof(why), "from %s", bad);
	else if (req->initiator != NULL &&
	    (bad = sched_check_tsp(s, req->initiator, cn, 0)) != NULL)
		snprintf(why, sizeof(why), "initiator %s", bad);
	else if (req->initiator == NULL)
		code = ho_a1(s, c, f->f_request_id, req, why, sizeof(why));
	else
		code = ho_a3(s, c, f->f_request_id, req, why, sizeof(why));
	if (code != 0)
		sched_refuse(c, f, what, req->handover_id, code, why);
	qroam__key_request__free_unpacked(req, NULL);
}

/* MT_ACCESS_REQUEST: A2 from TSPA. */
static void
sched_access_request(struct sched *s, struct conn *c, const struct frame *f)
{
	Qroam__AccessRequest	*req;
	const char		*cn = conn_peer_cn(c), *bad;
	char			 why[200];
	int			 code = QROAM__STATUS_CODE__BAD_REQUEST;

	req = (Qroam__AccessRequest *)frame_unpack(f,
	    &qroam__access_request__descriptor);
	if (req == NULL) {
		sched_refuse(c, f, "AccessRequest", NULL, code,
		    "malformed AccessRequest");
		return;
	}
	if (req->type != 2)
		snprintf(why, sizeof(why), "type %u is not an access request",
		    req->type);
	else if (!id_valid_hex(req->handover_id, SCHED_HO_IDLEN))
		snprintf(why, sizeof(why), "handover_id is not %d lowercase hex "
		    "characters", SCHED_HO_IDLEN);
	else if ((bad = sched_check_tsp(s, req->initiator, cn, 1)) != NULL)
		snprintf(why, sizeof(why), "initiator %s", bad);
	else if ((bad = sched_check_tsp(s, req->target, cn, 0)) != NULL)
		snprintf(why, sizeof(why), "target %s", bad);
	else
		code = ho_a2(s, c, f->f_request_id, req, why, sizeof(why));
	if (code != 0)
		sched_refuse(c, f, "A2", req->handover_id, code, why);
	qroam__access_request__free_unpacked(req, NULL);
}

/* Only TSPs of the topology may speak; everything else is dropped. */
static void
sched_on_frame(struct conn *c, const struct frame *f, void *arg)
{
	struct sched	*s = arg;
	const char	*cn = conn_peer_cn(c), *role = conn_peer_role(c);

	if (strcmp(role, "tsp") != 0 || topo_tsp(s->s_topo, cn) == NULL) {
		log_warnx("refused %s from %s (%s, role \"%s\"): not a TSP of "
		    "the topology", frame_type_name(f->f_type), conn_peer_addr(c),
		    cn, role);
		conn_send_status(c, f->f_request_id,
		    QROAM__STATUS_CODE__AUTH_FAILED,
		    "only TSPs of the topology may use the scheduler");
		conn_close(c, "not a TSP");
		return;
	}
	switch (f->f_type) {
	case QROAM__MSG_TYPE__MT_KEY_REQUEST:
		sched_key_request(s, c, f);
		break;
	case QROAM__MSG_TYPE__MT_ACCESS_REQUEST:
		sched_access_request(s, c, f);
		break;
	default:
		log_warnx("unexpected %s (%u) from %s (%s)",
		    frame_type_name(f->f_type), f->f_type, cn, conn_peer_addr(c));
		conn_send_status(c, f->f_request_id,
		    QROAM__STATUS_CODE__BAD_REQUEST, "unexpected message type");
		break;
	}
}

/* A TSP's connection ended: handovers still answering on it fail. */
static void
sched_on_close(struct conn *c, const char *reason, void *arg)
{
	struct sched	*s = arg;

	log_debug("connection %s (%s) closed: %s", conn_peer_addr(c),
	    conn_peer_cn(c), reason);
	if (!s->s_stopping)
		ho_conn_closed(s, c);
}

static const struct conn_cb sched_cb = {
	.on_frame = sched_on_frame,
	.on_close = sched_on_close,
};

/* Open the store and fail what an earlier run left unfinished. */
static int
sched_open_store(struct sched *s)
{
	int	n;

	if ((s->s_db = sched_db_open(s->s_conf->sc_common.cc_store,
	    s->s_base)) == NULL)
		return -1;
	if ((n = sched_db_recover(s->s_db, store_now_ms())) == -1)
		return -1;
	if (n > 0)
		log_warnx("%d unfinished handover%s failed: scheduler restarted",
		    n, n == 1 ? "" : "s");
	return 0;
}

struct sched *
sched_new(struct event_base *base, const struct schedd_conf *conf,
    const struct topo *topo, SSL_CTX *server_tls, SSL_CTX *client_tls)
{
	struct sched		*s;
	struct conn_opts	 o;

	s = xcalloc(1, sizeof(*s));
	s->s_conf = conf;
	s->s_topo = topo;
	s->s_base = base;
	s->s_client_tls = client_tls;
	TAILQ_INIT(&s->s_handovers);
	if (sched_open_store(s) == -1)
		goto fail;
	s->s_kme_tls = tls_client_ctx_min(conf->sc_common.cc_ca,
	    conf->sc_common.cc_cert, conf->sc_common.cc_key,
	    conf->sc_kme_tls_min);
	if (s->s_kme_tls == NULL) {
		log_warnx("cannot set up the TLS context of the key source");
		goto fail;
	}
	s->s_keys = keysrc_new(KEYSRC_DEFAULT, base, topo->t_qkd.ep_host,
	    topo->t_qkd.ep_port, s->s_kme_tls,
	    (int)conf->sc_handover_timeout_ms);
	if (s->s_keys == NULL) {
		log_warnx("cannot set up the key source");
		goto fail;
	}
	if (sched_keys_init(s) == -1)
		goto fail;
	memset(&o, 0, sizeof(o));
	o.co_tls = server_tls;
	o.co_max_frame = conf->sc_common.cc_max_frame;
	o.co_idle_ms = SCHED_IDLE_MS;
	s->s_lis = listener_new(base, topo->t_sched.ep_host, topo->t_sched.ep_port,
	    &o, &sched_cb, s);
	if (s->s_lis == NULL)
		goto fail;
	log_info("listening on %s:%u as %s; keys from the %s at %s:%u; %zu TSPs, "
	    "%llu keys held ahead for each", topo->t_sched.ep_host,
	    topo->t_sched.ep_port, conf->sc_common.cc_id, keysrc_name(s->s_keys),
	    topo->t_qkd.ep_host, topo->t_qkd.ep_port, topo->t_ntsps,
	    (unsigned long long)conf->sc_key_reserve);
	return s;
 fail:
	sched_free(s);
	return NULL;
}

void
sched_free(struct sched *s)
{
	if (s == NULL)
		return;
	ho_shutdown(s);
	sched_chans_free(s);
	sched_keys_free(s);
	if (s->s_keys != NULL)
		keysrc_free(s->s_keys);
	listener_free(s->s_lis);
	sched_db_close(s->s_db);
	SSL_CTX_free(s->s_kme_tls);
	free(s);
}
