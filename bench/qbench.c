/*
 * qbench: the load generator of `make bench`.  Each command runs one
 * measurement against real daemons on loopback and prints one final line
 * "RESULT <STATUS> key=value ..." (and, with -S, the raw samples as
 * "SAMPLES name v1 v2 ...").  Exit 0 when the command ran, whatever the
 * numbers; 2 on usage or local errors.  This file holds the command line,
 * enrolment of the vehicles, the raw TCP round-trip baseline and the
 * statistics helpers.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ids.h"
#include "log.h"

#include "provision.h"

#include "qbench.h"

#define QB_RTT_MAXLEN	65536

double
qb_now_us(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}


void
qb_store_path(const struct qbench *q, uint32_t i, char *buf, size_t len)
{
	snprintf(buf, len, "%s/v%06u.db", q->q_dir, (unsigned)i);
}

const struct endpoint *
qb_vehicle_ep(const struct qbench *q, const char *tsp)
{
	const struct topo_tsp	*tt;

	if (tsp == NULL || (tt = topo_tsp(&q->q_topo, tsp)) == NULL) {
		fprintf(stderr, "qbench: TSP %s is not in the topology\n",
		    tsp ? tsp : "(none)");
		return NULL;
	}
	return &tt->tt_vehicle;
}

/* Order doubles ascending, for qsort. */
static int
qb_cmp(const void *a, const void *b)
{
	double	x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The q-quantile of n sorted samples, linearly interpolated. */
static double
qb_quantile(const double *v, size_t n, double q)
{
	double	pos = q * (double)(n - 1);
	size_t	i = (size_t)pos;

	if (i + 1 >= n)
		return v[n - 1];
	return v[i] + (v[i + 1] - v[i]) * (pos - (double)i);
}

void
qb_percentiles(double *v, size_t n, double *p50, double *p99)
{
	*p50 = *p99 = 0;
	if (n == 0)
		return;
	qsort(v, n, sizeof(*v), qb_cmp);
	*p50 = qb_quantile(v, n, 0.50);
	*p99 = qb_quantile(v, n, 0.99);
}

void
qb_print_samples(const struct qbench *q, const char *name, const double *v,
    size_t n)
{
	size_t	i;

	if (!q->q_samples)
		return;
	printf("SAMPLES %s", name);
	for (i = 0; i < n; i++)
		printf(" %.1f", v[i]);
	putchar('\n');
}

/* Echo every byte back on one accepted connection after another. */
static void *
qb_echo_main(void *arg)
{
	int	 lfd = (int)(intptr_t)arg, fd, on = 1;
	char	 buf[QB_RTT_MAXLEN];
	ssize_t	 n;

	for (;;) {
		if ((fd = accept(lfd, NULL, NULL)) == -1) {
			if (errno == EINTR)
				continue;
			return NULL;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
		while ((n = read(fd, buf, sizeof(buf))) > 0)
			if (write(fd, buf, (size_t)n) != n)
				break;
		close(fd);
	}
}

uint16_t
qb_echo_start(void)
{
	struct sockaddr_in	sin;
	socklen_t		len = sizeof(sin);
	pthread_t		th;
	int			fd;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1 ||
	    bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    listen(fd, 16) == -1 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) == -1) {
		fprintf(stderr, "qbench: echo server: %s\n", strerror(errno));
		return 0;
	}
	if (pthread_create(&th, NULL, qb_echo_main, (void *)(intptr_t)fd) != 0)
		return 0;
	pthread_detach(th);
	return ntohs(sin.sin_port);
}

/* Read exactly len bytes; 0 or -1. */
static int
qb_read_full(int fd, char *buf, size_t len)
{
	size_t	off = 0;
	ssize_t	n;

	while (off < len) {
		if ((n = read(fd, buf + off, len - off)) <= 0)
			return -1;
		off += (size_t)n;
	}
	return 0;
}

int
qb_rtt(uint16_t port, size_t len, double *out, size_t n)
{
	struct endpoint	ep;
	struct bconn	bc;
	char		buf[QB_RTT_MAXLEN];
	double		t0;
	size_t		i;
	int		rc = 0;

	if (len == 0 || len > sizeof(buf))
		return -1;
	memset(&ep, 0, sizeof(ep));
	snprintf(ep.ep_host, sizeof(ep.ep_host), "127.0.0.1");
	ep.ep_port = port;
	if (bconn_open(&bc, &ep) == -1)
		return -1;
	memset(buf, 0x5a, len);
	for (i = 0; i < n && rc == 0; i++) {
		t0 = qb_now_us();
		if (write(bc.bc_fd, buf, len) != (ssize_t)len ||
		    qb_read_full(bc.bc_fd, buf, len) == -1)
			rc = -1;
		out[i] = qb_now_us() - t0;
	}
	bconn_close(&bc);
	return rc;
}

/* rtt: round trips of a frame-sized message on loopback TCP. */
static int
qb_cmd_rtt(struct qbench *q)
{
	double		*v, p50, p99;
	uint16_t	 port;
	size_t		 n = q->q_count ? q->q_count : 1000;

	if ((port = qb_echo_start()) == 0)
		return result_print(QB_LOCAL, "ERROR", "reason=echo");
	v = xcalloc(n, sizeof(*v));
	if (qb_rtt(port, q->q_window ? q->q_window : 256, v, n) == -1) {
		free(v);
		return result_print(QB_LOCAL, "ERROR", "reason=rtt");
	}
	qb_print_samples(q, "rtt_us", v, n);
	qb_percentiles(v, n, &p50, &p99);
	free(v);
	return result_print(QB_RAN, "OK", "samples=%zu rtt_us_p50=%.1f"
	    " rtt_us_p99=%.1f", n, p50, p99);
}

/* Provisioning parameters from the global options. */
static void
qb_vprov(const struct qbench *q, struct vprov *vp)
{
	memset(vp, 0, sizeof(*vp));
	vp->vp_topo = &q->q_topo;
	vp->vp_ca = q->q_ca;
	vp->vp_cert = q->q_cert;
	vp->vp_key = q->q_key;
	vp->vp_max_frame = FRAME_MAX_DEFAULT;
	vp->vp_timeout_ms = 30000;
}

/* Fill and register vehicle i unless its store is registered already. */
static int
qb_enroll_one(struct qbench *q, const struct vprov *vp, uint32_t i)
{
	struct chip_info	ci;
	struct chip_reg		reg;
	sqlite3			*db;
	char			 path[1024], vid[18];
	int			 rc;

	qb_store_path(q, i, path, sizeof(path));
	snprintf(vid, sizeof(vid), "%.11s%06u", q->q_vin, (unsigned)i);
	if (!id_valid_vin(vid)) {
		fprintf(stderr, "qbench: %s is no valid VIN\n", vid);
		return -1;
	}
	if ((db = chip_open(path)) == NULL)
		return -1;
	memset(&reg, 0, sizeof(reg));
	if (chip_reg_load(db, &reg) == 1) {
		chip_reg_clear(&reg);
		chip_close(db);
		return 0;
	}
	rc = vprov_fill(vp, db, q->q_fill_m, &ci);
	if (rc == QROAM__STATUS_CODE__OK)
		rc = vprov_register(vp, db, vid, 0);
	chip_close(db);
	if (rc != QROAM__STATUS_CODE__OK) {
		fprintf(stderr, "qbench: enrolment of %s: %s\n", vid,
		    vprov_result_name(rc));
		return -1;
	}
	return 0;
}

/* enroll: fill and register vehicles first .. first + count - 1. */
static int
qb_cmd_enroll(struct qbench *q)
{
	struct vprov	vp;
	uint32_t	i;
	double		t0 = qb_now_us();

	if (q->q_vin == NULL || strlen(q->q_vin) != 17 || q->q_count == 0)
		return result_print(QB_LOCAL, "USAGE", "reason=enroll needs -V VIN"
		    " -n N");
	qb_vprov(q, &vp);
	for (i = q->q_first; i < q->q_first + q->q_count; i++)
		if (qb_enroll_one(q, &vp, i) == -1)
			return result_print(QB_RAN, "FAILED", "vehicle=%u", i);
	return result_print(QB_RAN, "OK", "vehicles=%u seconds=%.2f", q->q_count,
	    (qb_now_us() - t0) / 1e6);
}

static void
qb_usage(void)
{
	fprintf(stderr,
	    "usage: qbench -d DIR -t TOPOLOGY [-c CA -C CERT -K KEY] [-S]"
	    " COMMAND [options]\n"
	    "  enroll -V VIN -n N [-f FIRST] [-m FILL_M]\n"
	    "  rtt [-n SAMPLES] [-w BYTES]\n"
	    "  gap -A TSP -B TSP -f VEHICLE -n CROSSINGS [-x LON -y LAT"
	    " -v SPEED]\n"
	    "  handover -A TSP -B TSP -f FIRST -P PARALLEL -n EACH [-x LON"
	    " -y LAT -v SPEED]\n"
	    "  auth -A TSP -f VEHICLE [-w WINDOW] [-s SECONDS]\n"
	    "  telemetry -A TSP -f VEHICLE [-w WINDOW] [-s SECONDS]\n"
	    "  sessions -A TSP -f FIRST -n VEHICLES [-p TSP_PID]\n"
	    "  echo [-w WINDOW] [-s SECONDS]\n"
	    "  cost [-n SAMPLES]\n");
}

/* Options of the command after its name; 0 or -1. */
static int
qb_command_opts(struct qbench *q, int argc, char *argv[])
{
	int	ch;

	optind = 1;
	while ((ch = getopt(argc, argv, "A:B:f:m:n:P:p:s:V:v:w:x:y:")) != -1) {
		switch (ch) {
		case 'A':
			q->q_tsp_a = optarg;
			break;
		case 'B':
			q->q_tsp_b = optarg;
			break;
		case 'f':
			q->q_first = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'm':
			q->q_fill_m = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'n':
			q->q_count = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'P':
			q->q_parallel = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'p':
			q->q_pid = (int)strtol(optarg, NULL, 10);
			break;
		case 's':
			q->q_seconds = strtod(optarg, NULL);
			break;
		case 'V':
			q->q_vin = optarg;
			break;
		case 'v':
			q->q_speed = strtod(optarg, NULL);
			break;
		case 'w':
			q->q_window = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'x':
			q->q_boundary_lon = strtod(optarg, NULL);
			break;
		case 'y':
			q->q_lat = strtod(optarg, NULL);
			break;
		default:
			return -1;
		}
	}
	return optind == argc ? 0 : -1;
}

/* Global options; the index of the command name, or -1. */
static int
qb_global_opts(struct qbench *q, int argc, char *argv[])
{
	int	ch;

	while ((ch = getopt(argc, argv, "+c:C:d:K:St:")) != -1) {
		switch (ch) {
		case 'c':
			q->q_ca = optarg;
			break;
		case 'C':
			q->q_cert = optarg;
			break;
		case 'd':
			q->q_dir = optarg;
			break;
		case 'K':
			q->q_key = optarg;
			break;
		case 'S':
			q->q_samples = 1;
			break;
		case 't':
			q->q_topofile = optarg;
			break;
		default:
			return -1;
		}
	}
	if (optind >= argc || q->q_dir == NULL || q->q_topofile == NULL)
		return -1;
	return optind;
}

int
main(int argc, char *argv[])
{
	static const struct {
		const char	*name;
		int		(*fn)(struct qbench *);
	} cmds[] = {
		{ "enroll", qb_cmd_enroll }, { "rtt", qb_cmd_rtt },
		{ "gap", qb_cmd_gap }, { "handover", qb_cmd_handover },
		{ "auth", qb_cmd_auth }, { "telemetry", qb_cmd_telemetry },
		{ "cost", qb_cmd_cost }, { "sessions", qb_cmd_sessions },
		{ "echo", qb_cmd_echo },
	};
	struct qbench	q;
	size_t		i;
	int		cmd, rc;

	log_init("qbench", 0);
	memset(&q, 0, sizeof(q));
	q.q_lat = 30.05;
	q.q_boundary_lon = 120.10;
	q.q_speed = 30;
	q.q_fill_m = 256;
	q.q_parallel = 1;
	if ((cmd = qb_global_opts(&q, argc, argv)) == -1 ||
	    qb_command_opts(&q, argc - cmd, argv + cmd) == -1) {
		qb_usage();
		return result_print(QB_LOCAL, "USAGE", "reason=bad-arguments");
	}
	if (topo_load(q.q_topofile, &q.q_topo) == -1)
		return result_print(QB_LOCAL, "ERROR", "reason=topology");
	rc = -1;
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(argv[cmd], cmds[i].name) == 0)
			rc = cmds[i].fn(&q);
	if (rc == -1) {
		qb_usage();
		rc = result_print(QB_LOCAL, "USAGE", "reason=unknown-command");
	}
	topo_free(&q.q_topo);
	return rc;
}
