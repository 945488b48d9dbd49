/* Identifier syntax of PROTOCOL section 3. */
#include <stddef.h>
#include <string.h>

#include "ids.h"

/* VIN characters: digits and capitals without I, O and Q. */
static int
id_vin_char(char c)
{
	if (c >= '0' && c <= '9')
		return 1;
	if (c < 'A' || c > 'Z')
		return 0;
	return c != 'I' && c != 'O' && c != 'Q';
}

/* Exactly VIN_LEN VIN characters; never reads past the terminating NUL. */
int
id_valid_vin(const char *s)
{
	size_t	 i;

	if (s == NULL)
		return 0;
	for (i = 0; i < VIN_LEN; i++)
		if (!id_vin_char(s[i]))
			return 0;
	return s[VIN_LEN] == '\0';
}

/* 1 to NAME_MAXLEN characters of [a-z0-9._-]. */
int
id_valid_name(const char *s)
{
	size_t	 i;
	char	 c;

	if (s == NULL || s[0] == '\0')
		return 0;
	for (i = 0; s[i] != '\0'; i++) {
		if (i >= NAME_MAXLEN)
			return 0;
		c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

/* Exactly len lowercase hex digits, then the end of the string. */
int
id_valid_hex(const char *s, size_t len)
{
	size_t	 i;

	if (s == NULL)
		return 0;
	for (i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		    (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return s[len] == '\0';
}
