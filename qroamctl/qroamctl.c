/*
 * qroamctl: the control CLI of a qroam deployment.  Shows the state of
 * the daemons from their admin endpoints (tables for people, JSON with
 * --json) and runs the operator actions: fill a chip, register or
 * re-register a vehicle, switch the eavesdropper of a QKD link, add a
 * cloud encryptor to the key management platform.
 *
 *   qroamctl [-f CONF] [-a [HOST:]PORT] [-j|--json] [-w TIMEOUT_MS] [-v]
 *	      COMMAND [ARGS]
 *
 * Exit 0 on success, 1 on a failure (reason on stderr), 2 on a usage
 * error.
 */
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event2/event.h>

#include "conf.h"
#include "log.h"
#include "topo.h"

#include "ctl.h"

static const char ctl_usage_text[] =
    "usage: qroamctl [-f CONF] [-a [HOST:]PORT] [-j|--json] [-w TIMEOUT_MS]"
    " [-v] COMMAND [ARGS]\n"
    "       qroamctl [-f CONF] -n\n"
    "commands:\n"
    "  status [NAME ...]        state of every daemon (up or down)\n"
    "  sessions NAME            open sessions of a TSP\n"
    "  vehicles NAME            registered vehicles of a TSP\n"
    "  handovers [NAME ...]     handovers in flight (TSPs, scheduler)\n"
    "  outbox [NAME ...]        provisioning messages waiting to be sent\n"
    "  pools [NAME ...]         QKD key pools\n"
    "  metrics NAME             Prometheus metrics of a daemon\n"
    "  health [NAME ...]        exit 0 if every daemon answers /healthz\n"
    "  fill -s CHIPSTORE [-m N]\n"
    "  register -s CHIPSTORE -V VIN [--rebind]\n"
    "  eavesdrop LINK on|off\n"
    "  kmp add-encryptor ID -o FILE  provision a cloud encryptor at kmpd\n"
    "  map [-l ADDR:PORT] [-d DIR]  serve the live map (default "
    "127.0.0.1:8470)\n";

int
ctl_usage(const char *fmt, ...)
{
	va_list	ap;

	fflush(stdout);
	if (fmt != NULL) {
		fputs("qroamctl: ", stderr);
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fputc('\n', stderr);
	}
	fputs(ctl_usage_text, stderr);
	return CTL_USAGE;
}

/* sessions NAME */
static int
ctl_sessions(struct ctl *c, int argc, char **argv)
{
	return ctl_list(c, "sessions", argc, argv);
}

/* vehicles NAME */
static int
ctl_vehicles(struct ctl *c, int argc, char **argv)
{
	return ctl_list(c, "vehicles", argc, argv);
}

struct ctl_cmd {
	const char	*cm_name;
	int		(*cm_fn)(struct ctl *, int, char **);
	int		 cm_argv0;	/* the command gets its own name */
	int		 cm_operator;	/* needs the configuration, even with -a */
};

static const struct ctl_cmd ctl_cmds[] = {
	{ "status", ctl_status, 0, 0 },
	{ "sessions", ctl_sessions, 0, 0 },
	{ "vehicles", ctl_vehicles, 0, 0 },
	{ "handovers", ctl_handovers, 0, 0 },
	{ "outbox", ctl_outbox, 0, 0 },
	{ "pools", ctl_pools, 0, 0 },
	{ "metrics", ctl_metrics, 0, 0 },
	{ "health", ctl_health, 0, 0 },
	{ "fill", ctl_fill, 1, 1 },
	{ "register", ctl_register, 1, 1 },
	{ "eavesdrop", ctl_eavesdrop, 0, 1 },
	{ "kmp", ctl_kmp, 1, 1 },
	{ "map", ctl_map, 1, 0 },
	{ NULL, NULL, 0, 0 },
};

static const struct option ctl_longopts[] = {
	{ "json", no_argument, NULL, 'j' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* The global options; returns the index of COMMAND, or -1 (usage). */
static int
ctl_getopt(struct ctl *c, int argc, char **argv, const char **single)
{
	uint64_t	v;
	int		ch;

	opterr = 0;
	while ((ch = getopt_long(argc, argv, "+a:f:hjnvw:", ctl_longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'a':
			*single = optarg;
			break;
		case 'f':
			c->c_conffile = optarg;
			c->c_conf_given = 1;
			break;
		case 'h':
			fputs(ctl_usage_text, stdout);
			exit(CTL_OK);
		case 'j':
			c->c_json = 1;
			break;
		case 'n':
			c->c_check = 1;
			break;
		case 'v':
			log_setverbose(1);
			break;
		case 'w':
			if (conf_uint(optarg, 1, 3600000, &v) == -1) {
				ctl_usage("-w wants 1..3600000 ms");
				return -1;
			}
			c->c_wait_ms = (int)v;
			c->c_wait_given = 1;
			break;
		default:
			ctl_usage("bad option %s", argv[optind - 1]);
			return -1;
		}
	}
	if (optind >= argc && !c->c_check) {
		ctl_usage("no COMMAND");
		return -1;
	}
	return optind;
}

/*
 * -n: check the configuration and the topology it names, print
 * "<config>: configuration OK" and exit 0, or the errors and exit 1.
 */
static int
ctl_check(struct ctl *c)
{
	struct topo	topo;
	int		rc = CTL_FAIL;

	memset(&topo, 0, sizeof(topo));
	if (ctl_conf_load(c, c->c_conffile) == 0 && (c->c_topology == NULL ||
	    topo_load(c->c_topology, &topo) == 0)) {
		printf("%s: configuration OK\n", c->c_conffile);
		rc = CTL_OK;
	}
	topo_free(&topo);
	ctl_conf_free(c);
	return rc;
}

/* -j and --json may also follow the command: take them out of argv. */
static int
ctl_json_anywhere(struct ctl *c, int argc, char **argv)
{
	int	i, n = 0;

	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "-j") == 0 ||
		    strcmp(argv[i], "--json") == 0)
			c->c_json = 1;
		else
			argv[n++] = argv[i];
	}
	argv[n] = NULL;
	return n;
}

/* Read the configuration a command needs and apply -a; a CTL_* code. */
static int
ctl_setup(struct ctl *c, const struct ctl_cmd *cm, const char *single)
{
	if ((single == NULL || c->c_conf_given || cm->cm_operator) &&
	    ctl_conf_load(c, c->c_conffile) == -1)
		return CTL_FAIL;
	if (single != NULL) {
		free(c->c_daemons);
		c->c_daemons = NULL;
		c->c_ndaemons = 0;
		if (ctl_conf_single(c, single) == -1)
			return ctl_usage("-a wants [HOST:]PORT, not \"%s\"",
			    single);
	}
	return CTL_OK;
}

int
main(int argc, char *argv[])
{
	struct ctl		 c;
	const struct ctl_cmd	*cm;
	const char		*single = NULL;
	int			 i, rc;

	memset(&c, 0, sizeof(c));
	c.c_conffile = CTL_CONF_DEFAULT;
	c.c_wait_ms = CTL_WAIT_DEFAULT;
	log_init("qroamctl", 0);
	/* A daemon closing its end must not end qroamctl mid-request. */
	signal(SIGPIPE, SIG_IGN);
	if ((i = ctl_getopt(&c, argc, argv, &single)) == -1)
		return CTL_USAGE;
	if (c.c_check)
		return ctl_check(&c);
	argc = i + ctl_json_anywhere(&c, argc - i, argv + i);
	for (cm = ctl_cmds; cm->cm_name != NULL; cm++)
		if (strcmp(cm->cm_name, argv[i]) == 0)
			break;
	if (cm->cm_name == NULL)
		return ctl_usage("unknown command \"%s\"", argv[i]);
	if (cm->cm_operator && !c.c_wait_given)
		c.c_wait_ms = CTL_WAIT_OPERATOR;
	if ((rc = ctl_setup(&c, cm, single)) != CTL_OK) {
		ctl_conf_free(&c);
		return rc;
	}
	if ((c.c_base = event_base_new()) == NULL)
		fatalx("event_base_new");
	if (cm->cm_argv0)
		rc = cm->cm_fn(&c, argc - i, argv + i);
	else
		rc = cm->cm_fn(&c, argc - i - 1, argv + i + 1);
	event_base_free(c.c_base);
	ctl_conf_free(&c);
	return rc;
}
