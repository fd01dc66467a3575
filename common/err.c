/* Texts for the TQ_E... codes, generated from the same list as the codes. */
#include "common/err.h"

#include <stdarg.h>
#include <stdio.h>

const char *tq_strerror(int code)
{
    switch (code) {
    case TQ_OK:
        return "ok";
#define TQ_ERR_TEXT(name, text)                                                          \
    case TQ_E##name:                                                                     \
        return text;
        TQ_ERR_MAP(TQ_ERR_TEXT)
#undef TQ_ERR_TEXT
    }
    return "unknown error";
}

int tq_err_set(int code, char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err && errlen)
        vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return code;
}
