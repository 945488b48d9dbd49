/*
 * qroamctl kmp add-encryptor ID -o FILE: provision a cloud encryptor at
 * the key management platform (PROTOCOL 11.1).  A fresh initial key IK_c
 * is drawn here, sent to kmpd with the identity in a KmpIdentity over
 * mutual TLS with the operator's certificate, and written, once kmpd
 * took it, in hex to FILE (created with mode 0600, never overwritten) for
 * the encryptor; it is never printed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "conn.h"
#include "crypto.h"
#include "ids.h"
#include "msg.h"
#include "rand.h"
#include "tls.h"
#include "topo.h"

#include "ctl.h"

#define CTL_KMP_WAIT_MS	10000

/* Send m to the topology's kmp_tls address; the Status code, or -1. */
static int
ctl_kmp_send(struct ctl *c, const Qroam__KmpIdentity *m, char *why,
    size_t whylen)
{
	struct event_base	*base;
	struct conn_opts	 o;
	struct conn		*conn = NULL;
	struct topo		 topo;
	struct frame		 f;
	Qroam__Status		*st;
	int			 code = -1;

	memset(&topo, 0, sizeof(topo));
	memset(&o, 0, sizeof(o));
	snprintf(why, whylen, "no answer");
	if (topo_load(c->c_topology, &topo) == -1)
		return -1;
	if (topo.t_kmp_tls.ep_port == 0) {
		snprintf(why, whylen, "%s: no kmp_tls endpoint", c->c_topology);
		topo_free(&topo);
		return -1;
	}
	if ((base = event_base_new()) == NULL ||
	    (o.co_tls = tls_client_ctx(c->c_ca, c->c_cert, c->c_key)) == NULL)
		snprintf(why, whylen, "cannot load the operator credential");
	else {
		o.co_peer_role = "kmp";
		conn = conn_open_sync(base, topo.t_kmp_tls.ep_host,
		    topo.t_kmp_tls.ep_port, &o, CTL_KMP_WAIT_MS, why, whylen);
	}
	if (conn != NULL && conn_send_now(conn, QROAM__MSG_TYPE__MT_KMP_IDENTITY,
	    1, &m->base) == 0 && conn_recv_sync(conn, &f, CTL_KMP_WAIT_MS) == 0) {
		st = f.f_type == QROAM__MSG_TYPE__MT_STATUS ? (Qroam__Status *)
		    frame_unpack(&f, &qroam__status__descriptor) : NULL;
		if (st != NULL) {
			code = st->code;
			snprintf(why, whylen, "%s%s%s", msg_status_name(code),
			    st->detail != NULL ? ": " : "",
			    st->detail != NULL ? st->detail : "");
			qroam__status__free_unpacked(st, NULL);
		} else
			snprintf(why, whylen, "unexpected answer");
		frame_release(&f);
	}
	if (conn != NULL)
		conn_free_sync(conn);
	SSL_CTX_free(o.co_tls);
	if (base != NULL) {
		/* One pass runs whatever the teardown left active. */
		event_base_loop(base, EVLOOP_NONBLOCK);
		event_base_free(base);
	}
	topo_free(&topo);
	return code;
}

/* kmp add-encryptor ID -o FILE */
int
ctl_kmp(struct ctl *c, int argc, char **argv)
{
	Qroam__KmpIdentity	 m = QROAM__KMP_IDENTITY__INIT;
	uint8_t			 ik[32];
	char			 hex[2 * sizeof(ik) + 2], why[256];
	const char		*out;
	int			 fd, code;

	if (argc != 5 || strcmp(argv[1], "add-encryptor") != 0 ||
	    strcmp(argv[3], "-o") != 0)
		return ctl_usage("kmp add-encryptor ID -o FILE");
	if (!id_valid_name(argv[2]))
		return ctl_usage("bad encryptor ID \"%s\"", argv[2]);
	out = argv[4];
	if (ctl_need_operator(c) == -1)
		return CTL_FAIL;
	/* The file first, so that a key kmpd took is never lost. */
	if ((fd = open(out, O_WRONLY | O_CREAT | O_EXCL, 0600)) == -1) {
		ctl_err("%s: %s", out, strerror(errno));
		return CTL_FAIL;
	}
	qrand_bytes(ik, sizeof(ik));
	m.identity = argv[2];
	m.kind = "encryptor";
	m.ik.data = ik;
	m.ik.len = sizeof(ik);
	code = ctl_kmp_send(c, &m, why, sizeof(why));
	crypto_hex(ik, sizeof(ik), hex);
	crypto_wipe(ik, sizeof(ik));
	strcat(hex, "\n");
	if (code != QROAM__STATUS_CODE__OK ||
	    write(fd, hex, strlen(hex)) != (ssize_t)strlen(hex)) {
		crypto_wipe(hex, sizeof(hex));
		close(fd);
		unlink(out);
		ctl_err("kmp add-encryptor %s: %s", argv[2],
		    code == QROAM__STATUS_CODE__OK ? "cannot write the key file"
		    : why);
		return CTL_FAIL;
	}
	crypto_wipe(hex, sizeof(hex));
	close(fd);
	if (c->c_json)
		ctl_json_result(json_pack("{s:s, s:s, s:s}", "result", "OK",
		    "encryptor", argv[2], "key_file", out));
	else
		printf("encryptor %s added; its initial key is in %s\n",
		    argv[2], out);
	return CTL_OK;
}
