/*
 * The configuration parsers of every daemon and the topology parser, on
 * a file of the fuzzed bytes.  Byte 0 picks the parser, the rest is the
 * file.  As common/daemon.c does, the configuration is freed after every
 * load, failed or not; the topology loader frees a failed load itself.
 * A loaded topology is also asked what the daemons ask of it.
 */
#include <stdlib.h>
#include <string.h>

#include "geo.h"
#include "topo.h"
#include "fuzz.h"
#include "../../fillerd/config.h"
#include "../../qkdd/config.h"
#include "../../registrard/config.h"
#include "../../schedd/config.h"
#include "../../tspd/config.h"
#include "../../vehicled/config.h"

static void
fuzz_topo(const char *path)
{
	struct topo	 t, u;
	struct geo_point p = { 48.1, 11.5 };
	char		 buf[128];

	if (topo_load(path, &t) == -1)
		return;
	(void)topo_need(&t, path, "sched");
	(void)topo_tsp(&t, "tsp-a");
	(void)topo_tsp_at(&t, p);
	if (topo_load(path, &u) == 0) {
		if (topo_differs(&t, &u, buf, sizeof(buf)) != NULL)
			abort();	/* the same file twice */
		topo_free(&u);
	}
	topo_free(&t);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	union {
		struct fillerd_conf	fc;
		struct qkdd_conf	qc;
		struct registrard_conf	rc;
		struct schedd_conf	sc;
		struct tspd_config	tc;
		struct vconf		vc;
	} u;
	const char	*path;

	if (len < 1)
		return 0;
	path = fuzz_file(data + 1, len - 1);
	fuzz_quiet(1);
	switch (data[0] % 7) {
	case 0:
		(void)fillerd_conf_load(path, &u.fc);
		fillerd_conf_free(&u.fc);
		break;
	case 1:
		(void)qkdd_conf_load(path, &u.qc);
		qkdd_conf_free(&u.qc);
		break;
	case 2:
		(void)registrard_conf_load(path, &u.rc);
		registrard_conf_free(&u.rc);
		break;
	case 3:
		(void)schedd_conf_load(path, &u.sc);
		schedd_conf_free(&u.sc);
		break;
	case 4:
		(void)tspd_config_load(path, &u.tc);
		tspd_config_free(&u.tc);
		break;
	case 5:
		(void)vconf_load(path, &u.vc);
		vconf_free(&u.vc);
		break;
	default:
		fuzz_topo(path);
		break;
	}
	fuzz_quiet(0);
	return 0;
}
