/* UTF-8 validation, for the JSON the codec and the logger write. */
#ifndef TQ_UTF8_H
#define TQ_UTF8_H

#include <stddef.h>

/* Length (1 to 4) of the valid UTF-8 sequence at s, which has n bytes left,
 * or 0 if s does not start one (overlong forms and surrogates are invalid;
 * a NUL byte is a valid 1-byte sequence). n must be at least 1. */
size_t tq_utf8_seq(const unsigned char *s, size_t n);

#endif
