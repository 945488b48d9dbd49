/*
 * Helpers shared by the unit test programs (prefix tu_): temporary
 * directories and files, stderr capture, one-value SQLite queries, the
 * PROTOCOL section 10 test vector, a throwaway PKI with TLS contexts, and
 * an event loop run until a condition holds.  They fail the running test
 * with cmocka assertions, so they are for use inside tests only.
 */
#ifndef QROAM_TESTUTIL_H
#define QROAM_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <openssl/ssl.h>
#include <sqlite3.h>

#include "keyseq.h"

/* Make a new directory /tmp/NAME.XXXXXX and put its path in dir; 0 or -1. */
int		 tu_tmpdir_new(char *dir, size_t len, const char *name);

/* Remove dir and everything below it; 0 or -1. */
int		 tu_tmpdir_free(const char *dir);

/* Write text to dir/name; returns the path, valid until the next call. */
const char	*tu_write_file(const char *dir, const char *name,
		    const char *text);

/* Send stderr to a temporary file until tu_capture_end(). */
void		 tu_capture_begin(void);

/* Restore stderr; returns what was written, valid until the next capture. */
const char	*tu_capture_end(void);

/* The integer in the first column of the one row sql must return. */
int64_t		 tu_query_int(sqlite3 *db, const char *sql);

/* 1 if the len bytes at p are all zero, else 0. */
int		 tu_all_zero(const void *p, size_t len);

/* A cmocka teardown that puts the default random source back; 0. */
int		 tu_rand_restore(void **state);

/*
 * The test vector of PROTOCOL section 10: key_i = SHA-256("key" i) for
 * i = 0..4, codes of k = 10 characters, n = 6, sequence key_2, key_1,
 * key_3, key_4, key_0.
 */
#define TU_VEC_M	5
#define TU_VEC_CHIP_ID	\
    "ce055a97e79cbc8df07f12c729f2f8433cf27fe8310ecbfae1f974715c63d92d"

/* Code of key_i, by key index i. */
extern const char *const tu_vec_codes[TU_VEC_M];

/* Key index at each position of the sequence. */
extern const unsigned	 tu_vec_order[TU_VEC_M];

/* key_i = SHA-256("key" i), for any i, as the vector derives its keys. */
void		 tu_vec_key(unsigned i, uint8_t key[KEYSEQ_KEYLEN]);

#define TU_FILL_MAXKEYS	8

/* A fill record with its own storage, so tests may break it freely. */
struct tu_fill {
	Qroam__FillRecord	 tf_rec;
	Qroam__ChipKey		 tf_ck[TU_FILL_MAXKEYS];
	Qroam__ChipKey		*tf_ckp[TU_FILL_MAXKEYS];
	uint8_t			 tf_key[TU_FILL_MAXKEYS][KEYSEQ_KEYLEN];
	char			 tf_code[TU_FILL_MAXKEYS][KEYSEQ_MAXK + 1];
	char			 tf_chip_id[65];
};

/*
 * Zero tf and point its record (m keys, k = 10, n = 6, created at
 * created_ms) at tf's keys, codes and chip id, for the caller to fill in.
 */
void		 tu_fill_init(struct tu_fill *tf, size_t m,
		    uint64_t created_ms);

/* tf holds the record of the test vector, keys in sequence order. */
void		 tu_fill_vector(struct tu_fill *tf);

/*
 * One certificate of a test PKI: FILE.pem and FILE.key for CN=cn OU=role,
 * signed by the CA in ISSUER.pem and ISSUER.key, or a self-signed CA when
 * tc_issuer is NULL.
 */
struct tu_cert {
	const char	*tc_file;
	const char	*tc_cn;
	const char	*tc_role;
	const char	*tc_issuer;
};

/* Make certs, up to the entry with a NULL tc_file, in dir; 0 or -1. */
int		 tu_pki_make(const char *dir, const struct tu_cert *certs);

/*
 * The set-up of a test program that talks TLS: logging as name, SIGPIPE
 * ignored as the daemons do, a fresh directory (dir, len) holding certs.
 * 0 or -1.
 */
int		 tu_pki_setup(const char *name, char *dir, size_t len,
		    const struct tu_cert *certs);

/* A TLS context on dir/name.pem and dir/name.key trusting dir/ca.pem. */
SSL_CTX		*tu_tls_ctx(const char *dir, const char *name, int server);

/* A loopback TCP port nobody listens on right now. */
uint16_t	 tu_free_port(void);

/* Run base until done(arg) holds; fails the test if ms pass first. */
void		 tu_wait(struct event_base *base, int (*done)(void *),
		    void *arg, int ms);

/* Run base until *counter reaches want; fails the test if ms pass first. */
void		 tu_wait_count(struct event_base *base, const int *counter,
		    int want, int ms);

/* Run base for ms, so that deferred work and timers get their turn. */
void		 tu_run_for(struct event_base *base, int ms);

#endif /* QROAM_TESTUTIL_H */
