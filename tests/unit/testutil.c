/*
 * Helpers shared by the unit test programs; see testutil.h.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "crypto.h"
#include "log.h"
#include "rand.h"
#include "tls.h"

#include "testutil.h"

const char *const tu_vec_codes[TU_VEC_M] = {
	"fc8b584c8d", "3f46cde218", "3cfe019e5e", "7f60039f1e", "bcf5e735f2",
};
const unsigned tu_vec_order[TU_VEC_M] = { 2, 1, 3, 4, 0 };

static FILE	*capture_fp;
static int	 capture_saved = -1;
static char	 capture_buf[8192];

/* mkdtemp(3) under /tmp, named after the test program. */
int
tu_tmpdir_new(char *dir, size_t len, const char *name)
{
	if ((size_t)snprintf(dir, len, "/tmp/%s.XXXXXX", name) >= len)
		return -1;
	return mkdtemp(dir) == NULL ? -1 : 0;
}

/* rm -rf, so that whatever a test left in dir goes too. */
int
tu_tmpdir_free(const char *dir)
{
	char	cmd[256];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Replace dir/name with text; the path is kept in a static buffer. */
const char *
tu_write_file(const char *dir, const char *name, const char *text)
{
	static char	 path[256];
	FILE		*fp;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fp = fopen(path, "w");
	assert_non_null(fp);
	assert_true(fputs(text, fp) >= 0);
	assert_int_equal(fclose(fp), 0);
	return path;
}

/* Point descriptor 2 at an unnamed tmpfile(3), keeping the real one. */
void
tu_capture_begin(void)
{
	fflush(stderr);
	capture_fp = tmpfile();
	assert_non_null(capture_fp);
	capture_saved = dup(STDERR_FILENO);
	assert_true(capture_saved >= 0);
	assert_true(dup2(fileno(capture_fp), STDERR_FILENO) >= 0);
}

/* Put the real stderr back and read what the test wrote. */
const char *
tu_capture_end(void)
{
	size_t	n;

	fflush(stderr);
	assert_true(dup2(capture_saved, STDERR_FILENO) >= 0);
	close(capture_saved);
	capture_saved = -1;
	rewind(capture_fp);
	n = fread(capture_buf, 1, sizeof(capture_buf) - 1, capture_fp);
	capture_buf[n] = '\0';
	fclose(capture_fp);
	capture_fp = NULL;
	return capture_buf;
}

/* Prepare, step once and finalize; a query without a row fails the test. */
int64_t
tu_query_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt	*st;
	int64_t		 v;

	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* Whether a buffer was wiped or never written. */
int
tu_all_zero(const void *p, size_t len)
{
	const uint8_t	*b = p;
	size_t		 i;

	for (i = 0; i < len; i++)
		if (b[i] != 0)
			return 0;
	return 1;
}

/* Tests that plug a scripted source must not leave it to the next one. */
int
tu_rand_restore(void **state)
{
	(void)state;
	qrand_set_source(NULL, NULL);
	return 0;
}

/* SHA-256 of the text "key" followed by i in decimal. */
void
tu_vec_key(unsigned i, uint8_t key[KEYSEQ_KEYLEN])
{
	char	s[16];

	snprintf(s, sizeof(s), "key%u", i);
	crypto_sha256(s, strlen(s), key);
}

/* Wire every ChipKey and the record to tf's own arrays. */
void
tu_fill_init(struct tu_fill *tf, size_t m, uint64_t created_ms)
{
	size_t	i;

	assert_true(m <= TU_FILL_MAXKEYS);
	memset(tf, 0, sizeof(*tf));
	qroam__fill_record__init(&tf->tf_rec);
	for (i = 0; i < m; i++) {
		qroam__chip_key__init(&tf->tf_ck[i]);
		tf->tf_ck[i].key.data = tf->tf_key[i];
		tf->tf_ck[i].key.len = KEYSEQ_KEYLEN;
		tf->tf_ck[i].code = tf->tf_code[i];
		tf->tf_ckp[i] = &tf->tf_ck[i];
	}
	tf->tf_rec.chip_id = tf->tf_chip_id;
	tf->tf_rec.m = m;
	tf->tf_rec.k = 10;
	tf->tf_rec.n = 6;
	tf->tf_rec.n_keys = m;
	tf->tf_rec.keys = tf->tf_ckp;
	tf->tf_rec.created_ms = created_ms;
}

/* The vector's keys and codes in sequence order, and its chip id. */
void
tu_fill_vector(struct tu_fill *tf)
{
	size_t	i;

	tu_fill_init(tf, TU_VEC_M, 1);
	for (i = 0; i < TU_VEC_M; i++) {
		tu_vec_key(tu_vec_order[i], tf->tf_key[i]);
		strcpy(tf->tf_code[i], tu_vec_codes[tu_vec_order[i]]);
	}
	strcpy(tf->tf_chip_id, TU_VEC_CHIP_ID);
}

/* Run a shell command in dir, quietly; 0 or -1. */
static int
pki_sh(const char *dir, const char *cmd)
{
	char	full[1024];

	snprintf(full, sizeof(full), "cd '%s' && %s >/dev/null 2>&1", dir, cmd);
	return system(full) == 0 ? 0 : -1;
}

/* Make one certificate of tu_pki_make with openssl(1). */
static int
pki_cert(const char *dir, const struct tu_cert *c)
{
	char	cmd[768];
	size_t	n;

	n = (size_t)snprintf(cmd, sizeof(cmd), "openssl ecparam"
	    " -name prime256v1 -genkey -noout -out %1$s.key &&"
	    " openssl req -new -sha256 -key %1$s.key -subj '/CN=%2$s/OU=%3$s'",
	    c->tc_file, c->tc_cn, c->tc_role);
	assert_true(n < sizeof(cmd));
	if (c->tc_issuer == NULL)
		snprintf(cmd + n, sizeof(cmd) - n, " -x509 -days 2"
		    " -addext basicConstraints=critical,CA:TRUE"
		    " -addext keyUsage=critical,keyCertSign,cRLSign"
		    " -out %s.pem", c->tc_file);
	else
		snprintf(cmd + n, sizeof(cmd) - n, " -out %1$s.csr &&"
		    " openssl x509 -req -sha256 -in %1$s.csr -CA %2$s.pem"
		    " -CAkey %2$s.key -CAcreateserial -extfile party.ext"
		    " -days 2 -out %1$s.pem", c->tc_file, c->tc_issuer);
	return pki_sh(dir, cmd);
}

/* party.ext holds the extensions of every non-CA certificate. */
int
tu_pki_make(const char *dir, const struct tu_cert *certs)
{
	if (pki_sh(dir, "printf '%s\\n' basicConstraints=critical,CA:FALSE"
	    " keyUsage=critical,digitalSignature,keyAgreement"
	    " extendedKeyUsage=serverAuth,clientAuth"
	    " subjectAltName=DNS:localhost,IP:127.0.0.1 > party.ext") == -1)
		goto fail;
	for (; certs->tc_file != NULL; certs++)
		if (pki_cert(dir, certs) == -1)
			goto fail;
	return 0;
 fail:
	fprintf(stderr, "cannot make the test PKI in %s\n", dir);
	return -1;
}

/* Every test PKI calls its trust anchor "ca". */
SSL_CTX *
tu_tls_ctx(const char *dir, const char *name, int server)
{
	char	 ca[256], cert[256], key[256];
	SSL_CTX	*ctx;

	snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
	snprintf(cert, sizeof(cert), "%s/%s.pem", dir, name);
	snprintf(key, sizeof(key), "%s/%s.key", dir, name);
	ctx = server ? tls_server_ctx(ca, cert, key) :
	    tls_client_ctx(ca, cert, key);
	assert_non_null(ctx);
	return ctx;
}

/* Bind port 0 on loopback, note the port and close the socket again. */
uint16_t
tu_free_port(void)
{
	struct sockaddr_in	sin;
	socklen_t		len = sizeof(sin);
	int			fd;
	uint16_t		port;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	port = ntohs(sin.sin_port);
	close(fd);
	return port;
}

/* Timer callback of run_until: the time is up. */
static void
run_expired(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	*(int *)arg = 1;
}

/* Run base one iteration at a time until done(arg) holds or ms pass. */
static int
run_until(struct event_base *base, int (*done)(void *), void *arg, int ms)
{
	struct event	*t;
	struct timeval	 tv;
	int		 expired = 0;

	t = evtimer_new(base, run_expired, &expired);
	assert_non_null(t);
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(t, &tv);
	while ((done == NULL || !done(arg)) && !expired)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(t);
	return done != NULL && done(arg) ? 0 : -1;
}

/* run_until, and a condition still false when the time is up fails. */
void
tu_wait(struct event_base *base, int (*done)(void *), void *arg, int ms)
{
	assert_int_equal(run_until(base, done, arg, ms), 0);
}

/* What tu_wait_count waits for. */
struct wait_count {
	const int	*wc_counter;
	int		 wc_want;
};

/* Condition of tu_wait_count: the counter has reached its goal. */
static int
wait_count_reached(void *arg)
{
	const struct wait_count	*wc = arg;

	return *wc->wc_counter >= wc->wc_want;
}

/* tu_wait with a counter as the condition. */
void
tu_wait_count(struct event_base *base, const int *counter, int want, int ms)
{
	struct wait_count	wc = { counter, want };

	tu_wait(base, wait_count_reached, &wc, ms);
}

/* run_until with no condition: runs until the timer fires. */
void
tu_run_for(struct event_base *base, int ms)
{
	(void)run_until(base, NULL, NULL, ms);
}

int
tu_pki_setup(const char *name, char *dir, size_t len,
    const struct tu_cert *certs)
{
	log_init(name, 0);
	signal(SIGPIPE, SIG_IGN);
	if (tu_tmpdir_new(dir, len, name) == -1)
		return -1;
	return tu_pki_make(dir, certs);
}
