/*
 * qprobe: the integration tests' vehicle.  A thin command-line driver over
 * vehicled's chip store, provisioning and message code: every command does
 * one protocol step and prints one final line "RESULT <STATUS> k=v ...".
 * Exit 0 when the command ran (whatever the status), 2 on usage or local
 * errors.  This file holds the command line, F1, F2 and F3; F4, F5 and
 * the handover messages are in probe_session.c.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event2/event.h>

#include "crypto.h"
#include "ids.h"
#include "log.h"
#include "msg.h"
#include "store.h"
#include "tls.h"

#include "provision.h"
#include "vmsg.h"

#include "probe.h"


/* Usage on stderr and a USAGE result. */
int
probe_usage(const char *why)
{
	fprintf(stderr, "qprobe: %s\n"
	    "usage: qprobe -s CHIPSTORE -t TOPOLOGY [-c CA -C CERT -K KEY]"
	    " [-w TIMEOUT_MS] COMMAND [options]\n"
	    "  fill [-m N]\n"
	    "  register -V VIN [--rebind]\n"
	    "  auth -T TSP [--vid VIN] [--chip-id HEX] [--as-tsp ID]"
	    " [--time-offset MS] [--save FILE]\n"
	    "  m3 -T TSP [--mode seq|arb] [--index N] [--code CODE]"
	    " [--tamper cek|g1] [--keep-key] [--save FILE]\n"
	    "  telemetry -T TSP -n COUNT [--replay-last] [--at LAT,LON"
	    " [--heading DEG] [--speed M_S]] [--m6 TSP|decline]\n"
	    "            [--await-ready]\n"
	    "  send -T TSP FILE [--provision]\n", why);
	return result_print(PROBE_LOCAL, "USAGE", "reason=%s", "bad-arguments");
}

/* Provisioning parameters from the global options. */
static void
probe_vprov(const struct probe *p, struct vprov *vp)
{
	memset(vp, 0, sizeof(*vp));
	vp->vp_topo = &p->p_topo;
	vp->vp_ca = p->p_ca;
	vp->vp_cert = p->p_cert;
	vp->vp_key = p->p_key;
	vp->vp_max_frame = FRAME_MAX_DEFAULT;
	vp->vp_timeout_ms = p->p_wait_ms;
}

/* Load the registration of the chip store (Pbv, vehicle id, chip id). */
int
probe_load_reg(struct probe *p)
{
	if (chip_reg_load(p->p_db, &p->p_reg) != 1) {
		fprintf(stderr, "qprobe: %s holds no registration\n", p->p_store);
		return -1;
	}
	p->p_pbv = crypto_pub_from_der(p->p_reg.cr_pbv, p->p_reg.cr_pbvlen);
	if (p->p_pbv == NULL) {
		fprintf(stderr, "qprobe: the stored Pbv does not decode\n");
		return -1;
	}
	return 0;
}

/* Connect to a TSP's vehicle (plain) or provisioning (mTLS) endpoint. */
struct conn *
probe_connect(struct probe *p, const char *tsp_id, int provision)
{
	const struct topo_tsp	*tt;
	const struct endpoint	*ep;
	struct conn_opts	 opts;
	struct conn		*c;
	char			 err[256];

	if ((tt = topo_tsp(&p->p_topo, tsp_id)) == NULL) {
		fprintf(stderr, "qprobe: %s is not in the topology\n", tsp_id);
		return NULL;
	}
	ep = provision ? &tt->tt_provision : &tt->tt_vehicle;
	memset(&opts, 0, sizeof(opts));
	opts.co_max_frame = PROBE_MAXFILE;
	opts.co_connect_ms = p->p_wait_ms;
	if (provision) {
		if (p->p_tls == NULL && (p->p_tls = tls_client_ctx(p->p_ca,
		    p->p_cert, p->p_key)) == NULL) {
			fprintf(stderr, "qprobe: cannot load -c/-C/-K\n");
			return NULL;
		}
		opts.co_tls = p->p_tls;
		opts.co_peer_role = "tsp";
	}
	c = conn_open_sync(p->p_base, ep->ep_host, ep->ep_port, &opts,
	    p->p_wait_ms, err, sizeof(err));
	if (c == NULL)
		fprintf(stderr, "qprobe: %s\n", err);
	return c;
}

/* Write bytes to path (the --save option). */
static int
probe_save(const char *path, const uint8_t *buf, size_t len)
{
	FILE	*fp;
	int	 rc = 0;

	if ((fp = fopen(path, "wb")) == NULL) {
		fprintf(stderr, "qprobe: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (fwrite(buf, 1, len, fp) != len)
		rc = -1;
	if (fclose(fp) != 0)
		rc = -1;
	return rc;
}

/*
 * Encode msg as a frame, save it if asked, send it on a new connection
 * to tsp_id and wait for one reply.  1 with *reply filled, 0 if no reply
 * came, -1 on a local error.
 */
int
probe_exchange(struct probe *p, uint32_t type, const ProtobufCMessage *msg,
    struct frame *reply)
{
	struct conn	*c;
	uint8_t		*buf;
	size_t		 len;
	int		 rc = 0;

	if (frame_encode(type, 1, msg, PROBE_MAXFILE, &buf, &len) == -1)
		return -1;
	if (p->o_save != NULL && probe_save(p->o_save, buf, len) == -1) {
		free(buf);
		return -1;
	}
	if ((c = probe_connect(p, p->o_tsp, 0)) != NULL) {
		if (conn_send_raw(c, buf, len) == 0 &&
		    conn_recv_sync(c, reply, p->p_wait_ms) == 0)
			rc = 1;
		conn_free_sync(c);
	}
	free(buf);
	return rc;
}

/* fill: F1 through vehicled's provisioning code. */
static int
probe_fill(struct probe *p)
{
	struct vprov		vp;
	struct chip_info	ci;
	int			rc;

	probe_vprov(p, &vp);
	rc = vprov_fill(&vp, p->p_db, p->o_m, &ci);
	if (rc == QROAM__STATUS_CODE__OK)
		return result_print(PROBE_RAN, "OK", "chip_id=%s m=%u",
		    ci.ci_chip_id, ci.ci_m);
	return result_print(rc == VPROV_ERROR ? PROBE_LOCAL : PROBE_RAN,
	    vprov_result_name(rc), NULL);
}

/* register: F2, optionally as an operator rebind. */
static int
probe_register(struct probe *p)
{
	struct vprov	vp;
	int		rc;

	if (p->o_vin == NULL || !id_valid_vin(p->o_vin))
		return probe_usage("register needs -V VIN (17 chars)");
	probe_vprov(p, &vp);
	rc = vprov_register(&vp, p->p_db, p->o_vin, p->o_rebind);
	if (rc == QROAM__STATUS_CODE__OK)
		return result_print(PROBE_RAN, "OK", "vehicle_id=%s", p->o_vin);
	return result_print(rc == VPROV_ERROR ? PROBE_LOCAL : PROBE_RAN,
	    vprov_result_name(rc), NULL);
}

/* auth: one M4 (with the requested forgeries) and its AuthResult. */
static int
probe_auth(struct probe *p)
{
	Qroam__M4	 m4;
	struct frame	 f;
	uint8_t		 nonce[MSG_AUTH_NONCELEN];
	const char	*vid, *chip, *as;
	int64_t		 now;
	int		 rc, code;

	if (probe_load_reg(p) == -1)
		return result_print(PROBE_LOCAL, "ERROR", "reason=unregistered");
	vid = p->o_vid ? p->o_vid : p->p_reg.cr_vid;
	chip = p->o_chip_id ? p->o_chip_id : p->p_reg.cr_chip_id;
	as = p->o_as_tsp ? p->o_as_tsp : p->o_tsp;
	now = (int64_t)store_now_ms() + p->o_time_offset;
	if (vmsg_m4(&m4, p->p_pbv, vid, chip, as, now < 0 ? 0 : (uint64_t)now,
	    nonce) == -1)
		return result_print(PROBE_LOCAL, "ERROR", "reason=m4");
	rc = probe_exchange(p, QROAM__MSG_TYPE__MT_M4, &m4.base, &f);
	vmsg_m4_clear(&m4);
	if (rc == -1)
		return result_print(PROBE_LOCAL, "ERROR", "reason=send");
	if (rc == 0)
		return result_print(PROBE_RAN, "NO_REPLY", NULL);
	switch (vmsg_auth_check(&f, p->p_pbv, vid, p->o_tsp, nonce, &code)) {
	case VMSG_AUTH_OK:
		rc = result_print(PROBE_RAN, "OK", NULL);
		break;
	case VMSG_AUTH_REFUSED:
		rc = result_print(PROBE_RAN, msg_status_name(code), NULL);
		break;
	case VMSG_AUTH_BAD_SIG:
		rc = result_print(PROBE_RAN, "BAD_SIGNATURE", NULL);
		break;
	case VMSG_AUTH_OTHER:
		rc = result_print(PROBE_RAN, "BAD_SIGNATURE", "reason=nonce");
		break;
	default:
		rc = result_print(PROBE_RAN, "MALFORMED", "type=%s",
		    frame_type_name(f.f_type));
		break;
	}
	frame_release(&f);
	return rc;
}

/* A number option in [min, max]; -1 on a bad value. */
static int
probe_number(const char *s, int64_t min, int64_t max, int64_t *out)
{
	char		*end;
	long long	 v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

enum {
	OPT_REBIND = 256, OPT_VID, OPT_CHIP_ID, OPT_AS_TSP, OPT_TIME_OFFSET,
	OPT_SAVE, OPT_MODE, OPT_INDEX, OPT_CODE, OPT_TAMPER, OPT_KEEP_KEY,
	OPT_REPLAY_LAST, OPT_PROVISION, OPT_AT, OPT_HEADING, OPT_SPEED, OPT_M6,
	OPT_AWAIT_READY,
};

static const struct option probe_longopts[] = {
	{ "rebind", no_argument, NULL, OPT_REBIND },
	{ "vid", required_argument, NULL, OPT_VID },
	{ "chip-id", required_argument, NULL, OPT_CHIP_ID },
	{ "as-tsp", required_argument, NULL, OPT_AS_TSP },
	{ "time-offset", required_argument, NULL, OPT_TIME_OFFSET },
	{ "save", required_argument, NULL, OPT_SAVE },
	{ "mode", required_argument, NULL, OPT_MODE },
	{ "index", required_argument, NULL, OPT_INDEX },
	{ "code", required_argument, NULL, OPT_CODE },
	{ "tamper", required_argument, NULL, OPT_TAMPER },
	{ "keep-key", no_argument, NULL, OPT_KEEP_KEY },
	{ "replay-last", no_argument, NULL, OPT_REPLAY_LAST },
	{ "provision", no_argument, NULL, OPT_PROVISION },
	{ "at", required_argument, NULL, OPT_AT },
	{ "heading", required_argument, NULL, OPT_HEADING },
	{ "speed", required_argument, NULL, OPT_SPEED },
	{ "m6", required_argument, NULL, OPT_M6 },
	{ "await-ready", no_argument, NULL, OPT_AWAIT_READY },
	{ NULL, 0, NULL, 0 },
};

/* A real number option in [min, max]; -1 on a bad value. */
static int
probe_real(const char *s, double min, double max, double *out)
{
	char	*end;
	double	 v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end != '\0' || !(v >= min && v <= max))
		return -1;
	*out = v;
	return 0;
}

/* The options placing telemetry samples: --at, --heading, --speed. */
static int
probe_place_option(struct probe *p, int ch, const char *arg)
{
	char	buf[64], *comma;

	switch (ch) {
	case OPT_AT:
		if (snprintf(buf, sizeof(buf), "%s", arg) >= (int)sizeof(buf) ||
		    (comma = strchr(buf, ',')) == NULL)
			return -1;
		*comma = '\0';
		p->o_has_at = 1;
		if (probe_real(buf, -90, 90, &p->o_lat) == -1)
			return -1;
		return probe_real(comma + 1, -180, 180, &p->o_lon);
	case OPT_HEADING:
		return probe_real(arg, 0, 360, &p->o_heading);
	case OPT_SPEED:
		return probe_real(arg, 0, 1000, &p->o_speed);
	case OPT_M6:
		if (strcmp(arg, "decline") != 0 && !id_valid_name(arg))
			return -1;
		p->o_m6 = arg;
		return 0;
	}
	return -1;
}

/* One command option; -1 on a bad value. */
static int
probe_option(struct probe *p, int ch, const char *arg)
{
	int64_t	v;

	switch (ch) {
	case 'm':
		if (probe_number(arg, 1, UINT32_MAX, &v) == -1)
			return -1;
		p->o_m = (uint32_t)v;
		return 0;
	case 'n':
		if (probe_number(arg, 1, 10000000, &v) == -1)
			return -1;
		p->o_count = (uint64_t)v;
		return 0;
	case OPT_TIME_OFFSET:
		return probe_number(arg, -(INT64_C(1) << 50), INT64_C(1) << 50,
		    &p->o_time_offset);
	case OPT_INDEX:
		if (probe_number(arg, 0, UINT32_MAX, &v) == -1)
			return -1;
		p->o_has_index = 1;
		p->o_index = (uint32_t)v;
		return 0;
	case OPT_MODE:
		if (strcmp(arg, "seq") == 0 || strcmp(arg, "sequential") == 0)
			p->o_mode = CHIP_SEQUENTIAL;
		else if (strcmp(arg, "arb") == 0 || strcmp(arg, "arbitrary") == 0)
			p->o_mode = CHIP_ARBITRARY;
		else
			return -1;
		return 0;
	case OPT_TAMPER:
		if (strcmp(arg, "cek") != 0 && strcmp(arg, "g1") != 0)
			return -1;
		p->o_tamper = arg;
		return 0;
	}
	return probe_place_option(p, ch, arg);
}

/* Parse the options after COMMAND; -1 on a usage error. */
static int
probe_command_opts(struct probe *p, int argc, char **argv)
{
	int	ch;

	optind = 0;
	while ((ch = getopt_long(argc, argv, "m:n:T:V:", probe_longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'T':
			p->o_tsp = optarg;
			break;
		case 'V':
			p->o_vin = optarg;
			break;
		case OPT_REBIND:
			p->o_rebind = 1;
			break;
		case OPT_VID:
			p->o_vid = optarg;
			break;
		case OPT_CHIP_ID:
			p->o_chip_id = optarg;
			break;
		case OPT_AS_TSP:
			p->o_as_tsp = optarg;
			break;
		case OPT_SAVE:
			p->o_save = optarg;
			break;
		case OPT_CODE:
			p->o_code = optarg;
			break;
		case OPT_KEEP_KEY:
			p->o_keep_key = 1;
			break;
		case OPT_AWAIT_READY:
			p->o_await_ready = 1;
			break;
		case OPT_REPLAY_LAST:
			p->o_replay_last = 1;
			break;
		case OPT_PROVISION:
			p->o_provision = 1;
			break;
		case '?':
			return -1;
		default:
			if (probe_option(p, ch, optarg) == -1) {
				fprintf(stderr, "qprobe: bad value \"%s\"\n",
				    optarg);
				return -1;
			}
			break;
		}
	}
	if (optind < argc)
		p->o_file = argv[optind++];
	return optind == argc ? 0 : -1;
}

/* Run one command on an opened probe. */
static int
probe_run(struct probe *p, const char *cmd)
{
	if (strcmp(cmd, "fill") == 0)
		return probe_fill(p);
	if (strcmp(cmd, "register") == 0)
		return probe_register(p);
	if (p->o_tsp == NULL || topo_tsp(&p->p_topo, p->o_tsp) == NULL)
		return probe_usage("-T must name a TSP of the topology");
	if (strcmp(cmd, "auth") == 0)
		return probe_auth(p);
	if (strcmp(cmd, "m3") == 0)
		return probe_m3(p);
	if (strcmp(cmd, "telemetry") == 0)
		return probe_telemetry(p);
	if (strcmp(cmd, "send") == 0)
		return probe_send(p);
	return probe_usage("unknown command");
}

int
main(int argc, char *argv[])
{
	struct probe	 p;
	const char	*cmd;
	int64_t		 v;
	int		 ch, rc;

	memset(&p, 0, sizeof(p));
	p.p_wait_ms = 3000;
	log_init("qprobe", 0);
	while ((ch = getopt(argc, argv, "+c:C:K:s:t:vw:")) != -1) {
		switch (ch) {
		case 'c':
			p.p_ca = optarg;
			break;
		case 'C':
			p.p_cert = optarg;
			break;
		case 'K':
			p.p_key = optarg;
			break;
		case 's':
			p.p_store = optarg;
			break;
		case 't':
			p.p_topofile = optarg;
			break;
		case 'v':
			log_setverbose(1);
			break;
		case 'w':
			if (probe_number(optarg, 1, 3600000, &v) == -1)
				return probe_usage("bad -w TIMEOUT_MS");
			p.p_wait_ms = (int)v;
			break;
		default:
			return probe_usage("bad option");
		}
	}
	if (p.p_store == NULL || p.p_topofile == NULL || optind >= argc)
		return probe_usage("-s, -t and a COMMAND are required");
	cmd = argv[optind];
	if (probe_command_opts(&p, argc - optind, argv + optind) == -1)
		return probe_usage("bad command options");
	if (topo_load(p.p_topofile, &p.p_topo) == -1)
		return result_print(PROBE_LOCAL, "ERROR", "reason=topology");
	if ((p.p_db = chip_open(p.p_store)) == NULL) {
		topo_free(&p.p_topo);
		return result_print(PROBE_LOCAL, "ERROR", "reason=store");
	}
	if ((p.p_base = event_base_new()) == NULL)
		fatalx("event_base_new");
	rc = probe_run(&p, cmd);
	EVP_PKEY_free(p.p_pbv);
	chip_reg_clear(&p.p_reg);
	if (p.p_tls != NULL)
		SSL_CTX_free(p.p_tls);
	/* Let deferred bufferevent callbacks drop their references. */
	event_base_loop(p.p_base, EVLOOP_NONBLOCK);
	event_base_free(p.p_base);
	chip_close(p.p_db);
	topo_free(&p.p_topo);
	return rc;
}
