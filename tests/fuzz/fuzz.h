/*
 * Shared helpers of the libFuzzer targets in tests/fuzz/ (README.md,
 * "Fuzzing").  Each target is one fuzz_*.c with LLVMFuzzerTestOneInput;
 * the first input byte of the multi-part targets picks the part.
 */
#ifndef QROAM_FUZZ_H
#define QROAM_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/evp.h>

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);
int	LLVMFuzzerInitialize(int *, char ***);

/*
 * Silence stderr (the parsers' "file:line: message" and log_warnx lines)
 * around one call: fuzz_quiet(1) before, fuzz_quiet(0) after.  A crash in
 * between still reports: the sanitizers write to the saved descriptor.
 */
void	fuzz_quiet(int on);
/* A file holding data (in memory, replaced on each call): its path. */
const char *fuzz_file(const uint8_t *data, size_t len);

/*
 * The names and keys the targets open messages under; seeds.c seals its
 * seeds under the same, so they reach past the AEAD tags.
 */
#define FUZZ_VID	"WVWZZZ1JZXW000001"
#define FUZZ_TSP	"tsp-a"		/* this TSP, TSPA of a handover */
#define FUZZ_PEER	"tsp-b"		/* the other cloud, TSPB */
#define FUZZ_HID	"0123456789abcdef0123456789abcdef"
#define FUZZ_CHIP	"00112233445566778899aabbccddeeff" \
			"00112233445566778899aabbccddeeff"
#define FUZZ_FILL_M	64		/* keys in the chip's fill record */
/* Key number which (FUZZ_K_*): 32 bytes of a fixed pattern. */
enum { FUZZ_K_PFK = 1, FUZZ_K_K1, FUZZ_K_CK1, FUZZ_K_CK2 };
void	fuzz_key(int which, uint8_t out[32]);
/* A 2048-bit RSA key made on the first call (slow: call it at start-up). */
EVP_PKEY *fuzz_rsa(void);

/* The MsgTypes of fuzz_payload, picked by its first byte. */
#define FUZZ_NTYPES	17
extern const uint32_t fuzz_payload_types[FUZZ_NTYPES];

#endif
