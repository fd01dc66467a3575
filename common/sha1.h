/* SHA-1, only to name Lua scripts for EVALSHA (not for security). */
#ifndef TQ_SHA1_H
#define TQ_SHA1_H

#include <stddef.h>

/* Writes the 40 lowercase hex digits of SHA-1(data) and a NUL into hex. */
void tq_sha1_hex(const void *data, size_t len, char hex[41]);

#endif
