/*
 * One rule for every daemon's configuration loader: a load that fails
 * leaves nothing allocated and the struct zeroed, whether the error is in
 * a directive, in the checks after the parse or in the file's absence.
 * Under ASan the leak check at exit proves the "nothing allocated".
 */
#include <stdarg.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "log.h"
#include "testutil.h"

#include "../../fillerd/config.h"
#include "../../qkdd/config.h"
#include "../../registrard/config.h"
#include "../../schedd/config.h"
#include "../../tspd/config.h"
#include "../../vehicled/config.h"

/* Every path directive (allocated by the parser), then tail. */
static const char *
conf_file(const char *dir, const char *name, const char *tail)
{
	char	 text[2048];

	snprintf(text, sizeof(text), "id x1\nstore %s/s.db\ntopology %s/t\n"
	    "ca %s/ca.pem\ncert %s/c.pem\nkey %s/c.key\n%s", dir, dir, dir,
	    dir, dir, tail);
	return tu_write_file(dir, name, text);
}

/* The bad tails: a bad directive, and a common check that fails. */
static const char *const tails[] = {
	"no_such_directive 1\n",
	"max_frame 1\n",
};

/* load fails on path and leaves its struct (filled with junk) zeroed. */
#define LOAD_FAILS(type, load, path)					\
	do {								\
		type	c;						\
									\
		memset(&c, 0x5a, sizeof(c));				\
		assert_int_equal(load(path, &c), -1);			\
		assert_true(tu_all_zero(&c, sizeof(c)));		\
	} while (0)

static void
test_failed_loads_release(void **state)
{
	char		 dir[64];
	const char	*p;
	size_t		 i;

	(void)state;
	assert_int_equal(tu_tmpdir_new(dir, sizeof(dir), "conf_load"), 0);
	tu_capture_begin();
	for (i = 0; i < sizeof(tails) / sizeof(tails[0]); i++) {
		p = conf_file(dir, "d.conf", tails[i]);
		LOAD_FAILS(struct qkdd_conf, qkdd_conf_load, p);
		LOAD_FAILS(struct fillerd_conf, fillerd_conf_load, p);
		LOAD_FAILS(struct registrard_conf, registrard_conf_load, p);
		LOAD_FAILS(struct schedd_conf, schedd_conf_load, p);
		LOAD_FAILS(struct tspd_config, tspd_config_load, p);
		LOAD_FAILS(struct vconf, vconf_load, p);
	}
	/* fillerd's own check after the parse: n above k. */
	p = conf_file(dir, "f.conf", "k 4\nn 5\n");
	LOAD_FAILS(struct fillerd_conf, fillerd_conf_load, p);
	/* No file at all. */
	LOAD_FAILS(struct qkdd_conf, qkdd_conf_load, "/nonexistent/qkdd.conf");
	LOAD_FAILS(struct registrard_conf, registrard_conf_load,
	    "/nonexistent/registrard.conf");
	tu_capture_end();
	assert_int_equal(tu_tmpdir_free(dir), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_failed_loads_release),
	};

	log_init("test_conf_load", 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
