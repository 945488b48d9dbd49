/*
 * kmpd's listeners (PROTOCOL 11.1): plain TCP on the topology's kmp
 * endpoint for vehicles, whose applications are protected by their
 * initial keys alone, and mutual TLS on kmp_tls for the cloud encryptors
 * (certificate role tsp or encryptor), the operators and the filler
 * (KmpIdentity).  Every frame is unpacked and checked before it acts; a
 * malformed or unexpected one is refused and changes nothing.
 */
#include <stdlib.h>
#include <string.h>

#include "ids.h"
#include "kmp.h"
#include "log.h"
#include "metrics.h"
#include "msg.h"

#define KMP_IDLE_MS	60000		/* connections without input */

int
kmp_valid_identity(const char *s)
{
	return id_valid_name(s) || id_valid_hex(s, KMP_IDENTITY_MAX);
}

void
kmp_refuse(struct conn *c, uint64_t reqid, const char *what,
    const char *reason, int code, const char *why)
{
	log_warnx("%s from %s (%s) refused: %s (%s)", what, conn_peer_addr(c),
	    conn_peer_cn(c)[0] != '\0' ? conn_peer_cn(c) : "no certificate",
	    msg_status_name(code), why);
	metrics_refusal(reason);
	conn_send_status(c, reqid, code, why);
}

/* Vehicles: KmpApply only. */
static void
kmp_on_vehicle_frame(struct conn *c, const struct frame *f, void *arg)
{
	struct kmp	*k = arg;

	if (f->f_type == QROAM__MSG_TYPE__MT_KMP_APPLY) {
		kmp_apply(k, c, f, KMP_KIND_VEHICLE);
		return;
	}
	kmp_refuse(c, f->f_request_id, frame_type_name(f->f_type),
	    "kmp_unexpected", QROAM__STATUS_CODE__BAD_REQUEST,
	    "unexpected message type");
}

/*
 * Mutual TLS: applications from encryptors (role tsp or encryptor),
 * identities from operators and the filler; anyone else is dropped.
 */
static void
kmp_on_cloud_frame(struct conn *c, const struct frame *f, void *arg)
{
	struct kmp	*k = arg;
	const char	*role = conn_peer_role(c);
	int		 encryptor, provisioner;

	encryptor = strcmp(role, "tsp") == 0 || strcmp(role, "encryptor") == 0;
	provisioner = strcmp(role, "operator") == 0 ||
	    strcmp(role, "filler") == 0;
	if (f->f_type == QROAM__MSG_TYPE__MT_KMP_APPLY && encryptor)
		kmp_apply(k, c, f, KMP_KIND_ENCRYPTOR);
	else if (f->f_type == QROAM__MSG_TYPE__MT_KMP_IDENTITY && provisioner)
		kmp_provision(k, c, f);
	else if (!encryptor && !provisioner) {
		kmp_refuse(c, f->f_request_id, frame_type_name(f->f_type),
		    "kmp_role", QROAM__STATUS_CODE__AUTH_FAILED,
		    "certificate role may not use the KMP");
		conn_close(c, "role may not use the KMP");
	} else
		kmp_refuse(c, f->f_request_id, frame_type_name(f->f_type),
		    "kmp_unexpected", QROAM__STATUS_CODE__BAD_REQUEST,
		    "unexpected message type");
}

static void
kmp_on_close(struct conn *c, const char *reason, void *arg)
{
	struct kmp	*k = arg;

	log_debug("connection %s closed: %s", conn_peer_addr(c), reason);
	kmp_apply_conn_closed(k, c);
}

static const struct conn_cb kmp_vehicle_cb = {
	.on_frame = kmp_on_vehicle_frame,
	.on_close = kmp_on_close,
};

static const struct conn_cb kmp_cloud_cb = {
	.on_frame = kmp_on_cloud_frame,
	.on_close = kmp_on_close,
};

static uint64_t
kmp_written(void *arg)
{
	struct kmp	*k = arg;

	return kmp_db_written(k->k_db);
}

/* The committer made the first n commits durable: answers may leave. */
static void
kmp_durable(uint64_t n, void *arg)
{
	struct kmp	*k = arg;

	conn_barrier_release(k->k_barrier, n);
}

/* Both listeners, answers held until the state they report is durable. */
static int
kmp_listen(struct kmp *k, SSL_CTX *server_tls)
{
	const struct topo	*t = k->k_topo;
	struct conn_opts	 o;

	memset(&o, 0, sizeof(o));
	o.co_max_frame = k->k_conf->kc_common.cc_max_frame;
	o.co_idle_ms = KMP_IDLE_MS;
	o.co_barrier = k->k_barrier;
	if ((k->k_vlis = listener_new(k->k_base, t->t_kmp.ep_host,
	    t->t_kmp.ep_port, &o, &kmp_vehicle_cb, k)) == NULL)
		return -1;
	o.co_tls = server_tls;
	if ((k->k_clis = listener_new(k->k_base, t->t_kmp_tls.ep_host,
	    t->t_kmp_tls.ep_port, &o, &kmp_cloud_cb, k)) == NULL)
		return -1;
	return 0;
}

struct kmp *
kmp_new(struct event_base *base, const struct kmpd_conf *conf,
    const struct topo *topo, SSL_CTX *server_tls, SSL_CTX *client_tls)
{
	struct kmp	*k;

	k = xcalloc(1, sizeof(*k));
	k->k_conf = conf;
	k->k_topo = topo;
	k->k_base = base;
	TAILQ_INIT(&k->k_pending);
	if ((k->k_db = kmp_db_open(conf->kc_common.cc_store, base, kmp_durable,
	    k)) == NULL)
		goto fail;
	k->k_barrier = conn_barrier_new(kmp_written, k);
	k->k_keys = keysrc_new(conf->kc_key_source, base, topo->t_qkd.ep_host,
	    topo->t_qkd.ep_port, client_tls, (int)conf->kc_key_timeout_ms);
	if (k->k_keys == NULL) {
		log_warnx("cannot set up the key source %s",
		    conf->kc_key_source);
		goto fail;
	}
	if (kmp_listen(k, server_tls) == -1)
		goto fail;
	log_info("listening on %s:%u (vehicles) and %s:%u (mutual TLS) as %s; "
	    "keys from the %s", topo->t_kmp.ep_host, topo->t_kmp.ep_port,
	    topo->t_kmp_tls.ep_host, topo->t_kmp_tls.ep_port,
	    conf->kc_common.cc_id, keysrc_name(k->k_keys));
	return k;
 fail:
	kmp_free(k);
	return NULL;
}

void
kmp_free(struct kmp *k)
{
	if (k == NULL)
		return;
	listener_free(k->k_vlis);
	listener_free(k->k_clis);
	kmp_apply_shutdown(k);
	if (k->k_keys != NULL)
		keysrc_free(k->k_keys);
	kmp_db_close(k->k_db);
	conn_barrier_free(k->k_barrier);
	free(k);
}
