/*
 * schedd: the cloud scheduling platform of the handover (PROTOCOL F6).
 * Takes A1/A2/A3 from the TSPs of the topology over mutual TLS, gets CK1
 * and CK2 from the QKD layer through its ETSI GS QKD 014 key source,
 * forwards A2 to the target TSP and answers the initiator with M7.  Each
 * handover is a state machine with a timeout, persisted with an audit log
 * of IDs and times (never keys) in its SQLite store.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "daemon.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "sched.h"
#include "tls.h"
#include "topo.h"

/* The configuration and its topology, which must name sched and qkd. */
static int
schedd_load(const char *path, struct schedd_conf *conf, struct topo *topo)
{
	const char	*file;

	if (schedd_conf_load(path, conf) == -1)
		return -1;
	file = conf->sc_common.cc_topology;
	if (topo_load(file, topo) == 0 && topo_need(topo, file, "sched") == 0 &&
	    topo_need(topo, file, "qkd") == 0)
		return 0;
	topo_free(topo);
	schedd_conf_free(conf);
	return -1;
}

/* What the signal handlers of main() work on. */
struct schedd {
	struct event_base	*sd_base;
	const char		*sd_path;
	int			 sd_cmd_verbose;	/* -d/-v given */
	struct schedd_conf	 sd_conf;	/* the scheduler reads it */
	struct topo		 sd_topo;
};

/*
 * SIGHUP: parse the whole configuration and topology again; if both are
 * sound, log what only a restart changes and take over handover_timeout
 * (for handovers from now on), ck2_lifetime and verbose.  With errors
 * nothing changes.
 */
static void
schedd_reload(void *arg)
{
	struct schedd		*sd = arg;
	struct schedd_conf	 conf;
	struct topo		 topo;
	int			 n;

	if (schedd_load(sd->sd_path, &conf, &topo) == -1) {
		log_warnx("reload: configuration has errors, keeping the old one");
		return;
	}
	n = daemon_reload_restart_only(&sd->sd_conf.sc_common,
	    &conf.sc_common);
	n += topo_reload_restart_only(&sd->sd_topo, &topo);
	topo_free(&topo);
	sd->sd_conf.sc_handover_timeout_ms = conf.sc_handover_timeout_ms;
	sd->sd_conf.sc_ck2_lifetime_ms = conf.sc_ck2_lifetime_ms;
	sd->sd_conf.sc_common.cc_verbose = conf.sc_common.cc_verbose;
	if (!sd->sd_cmd_verbose)
		log_setverbose(conf.sc_common.cc_verbose);
	log_info("reloaded: verbose %d, handover_timeout %llums, ck2_lifetime "
	    "%llums%s", log_getverbose(),
	    (unsigned long long)conf.sc_handover_timeout_ms,
	    (unsigned long long)conf.sc_ck2_lifetime_ms,
	    n > 0 ? " (settings that need a restart are kept)" : "");
	schedd_conf_free(&conf);
}

/* SIGTERM, SIGINT: leave the event loop for a clean shutdown. */
static void
schedd_stop(void *arg)
{
	struct schedd	*sd = arg;

	daemon_stop_loop(sd->sd_base);
}

int
main(int argc, char **argv)
{
	struct daemon_opts	 opts;
	struct schedd		 sd;
	struct daemon_signals	*sigs;
	struct admin		*admin;
	struct sched		*s;
	SSL_CTX			*srv, *cli;

	daemon_getopt(argc, argv, "/etc/qroam/schedd.conf", &opts);
	log_init("schedd", opts.do_verbose);
	memset(&sd, 0, sizeof(sd));
	sd.sd_path = opts.do_config;
	sd.sd_cmd_verbose = opts.do_verbose;
	if (schedd_load(opts.do_config, &sd.sd_conf, &sd.sd_topo) == -1)
		return 1;
	if (opts.do_check) {
		printf("%s: configuration OK\n", opts.do_config);
		topo_free(&sd.sd_topo);
		schedd_conf_free(&sd.sd_conf);
		return 0;
	}
	if (opts.do_verbose == 0)
		log_setverbose(sd.sd_conf.sc_common.cc_verbose);
	daemon_tls(&sd.sd_conf.sc_common, &srv, &cli);
	if ((sd.sd_base = event_base_new()) == NULL)
		fatalx("event_base_new");
	if ((s = sched_new(sd.sd_base, &sd.sd_conf, &sd.sd_topo, srv,
	    cli)) == NULL)
		fatalx("cannot start");
	sigs = daemon_signals_new(sd.sd_base, schedd_stop, schedd_reload,
	    NULL, &sd);
	sched_ops_init(s);
	admin = daemon_admin(sd.sd_base, &sd.sd_conf.sc_common, "schedd",
	    sched_status, s);
	log_info("started: handover_timeout=%llums ck2_lifetime=%llums",
	    (unsigned long long)sd.sd_conf.sc_handover_timeout_ms,
	    (unsigned long long)sd.sd_conf.sc_ck2_lifetime_ms);
	notify_ready("scheduling handovers on %s:%u",
	    sd.sd_topo.t_sched.ep_host, sd.sd_topo.t_sched.ep_port);
	event_base_dispatch(sd.sd_base);
	admin_free(admin);
	sched_ops_free(s);
	sched_free(s);
	daemon_signals_free(sigs);
	event_base_free(sd.sd_base);
	SSL_CTX_free(srv);
	SSL_CTX_free(cli);
	topo_free(&sd.sd_topo);
	schedd_conf_free(&sd.sd_conf);
	metrics_reset();
	return 0;
}
