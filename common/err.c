/* Texts for the TQ_E... codes, generated from the same list as the codes. */
#include "common/err.h"

const char *tq_strerror(int code)
{
    switch (code) {
    case TQ_OK:
        return "ok";
#define TQ_ERR_TEXT(name, text)                                              \
    case TQ_E##name:                                                         \
        return text;
        TQ_ERR_MAP(TQ_ERR_TEXT)
#undef TQ_ERR_TEXT
    }
    return "unknown error";
}
