/* Helpers shared by the fuzz targets (fuzz.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/mman.h>

#include "crypto.h"
#include "fuzz.h"
#include "qroam.pb-c.h"

const uint32_t fuzz_payload_types[FUZZ_NTYPES] = {
	QROAM__MSG_TYPE__MT_STATUS,
	QROAM__MSG_TYPE__MT_FILL_REQUEST,
	QROAM__MSG_TYPE__MT_FILL_REPLY,
	QROAM__MSG_TYPE__MT_FILL_RECORD,
	QROAM__MSG_TYPE__MT_REGISTER,
	QROAM__MSG_TYPE__MT_M1,
	QROAM__MSG_TYPE__MT_M2,
	QROAM__MSG_TYPE__MT_M4,
	QROAM__MSG_TYPE__MT_AUTH_RESULT,
	QROAM__MSG_TYPE__MT_M3,
	QROAM__MSG_TYPE__MT_SESSION_MSG,
	QROAM__MSG_TYPE__MT_KEY_REQUEST,
	QROAM__MSG_TYPE__MT_ACCESS_REQUEST,
	QROAM__MSG_TYPE__MT_KEY_REPLY,
	QROAM__MSG_TYPE__MT_M7,
	QROAM__MSG_TYPE__MT_M8,
	QROAM__MSG_TYPE__MT_M8_ACK,
};

static int	saved_fd = -1, null_fd = -1;

void
fuzz_quiet(int on)
{
	if (getenv("FUZZ_VERBOSE") != NULL)
		return;
	if (null_fd == -1 &&
	    ((null_fd = open("/dev/null", O_WRONLY)) == -1 ||
	    (saved_fd = dup(STDERR_FILENO)) == -1))
		abort();
	fflush(stderr);
	if (dup2(on ? null_fd : saved_fd, STDERR_FILENO) == -1)
		abort();
}

/* An in-memory file (memfd), opened again by its /proc path. */
const char *
fuzz_file(const uint8_t *data, size_t len)
{
	static char	 path[64];
	static int	 fd = -1;

	if (fd == -1) {
		if ((fd = memfd_create("qroam-fuzz", 0)) == -1)
			abort();
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	}
	if (ftruncate(fd, 0) == -1 ||
	    (len > 0 && pwrite(fd, data, len, 0) != (ssize_t)len))
		abort();
	return path;
}

void
fuzz_key(int which, uint8_t out[32])
{
	int	i;

	for (i = 0; i < 32; i++)
		out[i] = (uint8_t)(which * 37 + i);
}

EVP_PKEY *
fuzz_rsa(void)
{
	static EVP_PKEY	*pk;

	if (pk == NULL && (pk = crypto_rsa_generate(2048)) == NULL)
		abort();
	return pk;
}
