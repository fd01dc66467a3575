/* Redis Cluster hash slots: CRC16-CCITT (XMODEM), as Redis computes them. */
#include "common/slot.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* CRC16-CCITT (XMODEM, polynomial 0x1021) a byte at a time from a table
 * built once: a key costs a lookup per byte, cheap enough to check every
 * call's keys (common/broker.c). */
static uint16_t table[256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void table_init(void)
{
    for (int b = 0; b < 256; b++) {
        uint16_t crc = (uint16_t)(b << 8);
        for (int i = 0; i < 8; i++)
            crc = (uint16_t)(crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1);
        table[b] = crc;
    }
}

static uint16_t crc16(const char *p, size_t len)
{
    pthread_once(&table_once, table_init);
    uint16_t crc = 0;
    for (size_t i = 0; i < len; i++)
        crc = (uint16_t)((crc << 8) ^ table[((crc >> 8) ^ (unsigned char)p[i]) & 0xff]);
    return crc;
}

int tq_slot(const char *key, size_t len)
{
    const char *open = memchr(key, '{', len);
    if (open) {
        size_t rest = len - (size_t)(open - key) - 1;
        const char *close = memchr(open + 1, '}', rest);
        if (close && close > open + 1)
            return crc16(open + 1, (size_t)(close - open - 1)) & (TQ_SLOT_COUNT - 1);
    }
    return crc16(key, len) & (TQ_SLOT_COUNT - 1);
}

static size_t len_of(const char *const *argv, const size_t *lens, int i)
{
    return lens ? lens[i] : strlen(argv[i]);
}

/* 1 if argument i is the word w, in any case. */
static int is(const char *const *argv, const size_t *lens, int i, const char *w)
{
    size_t n = strlen(w);
    return len_of(argv, lens, i) == n && strncasecmp(argv[i], w, n) == 0;
}

int tq_slot_argv(int argc, const char *const *argv, const size_t *lens)
{
    static const char *const keyless[] = {
        "PING",   "ECHO",     "INFO",      "ROLE",    "TIME",    "WAIT",     "FUNCTION",
        "SCRIPT", "CLIENT",   "CLUSTER",   "MULTI",   "EXEC",    "DISCARD",  "UNWATCH",
        "SCAN",   "DBSIZE",   "CONFIG",    "COMMAND", "HELLO",   "AUTH",     "SELECT",
        "ASKING", "READONLY", "READWRITE", "SLOWLOG", "LATENCY", "FLUSHALL", "FLUSHDB"};
    if (argc < 2)
        return -1;
    for (size_t i = 0; i < sizeof keyless / sizeof *keyless; i++)
        if (is(argv, lens, 0, keyless[i]))
            return -1;
    int k = 1;
    if (is(argv, lens, 0, "FCALL") || is(argv, lens, 0, "FCALL_RO") ||
        is(argv, lens, 0, "EVAL") || is(argv, lens, 0, "EVALSHA") ||
        is(argv, lens, 0, "EVAL_RO") || is(argv, lens, 0, "EVALSHA_RO")) {
        if (argc < 4)
            return -1;
        char n[24];
        size_t l = len_of(argv, lens, 2);
        if (l == 0 || l >= sizeof n)
            return -1;
        memcpy(n, argv[2], l);
        n[l] = '\0';
        if (strtol(n, NULL, 10) <= 0)
            return -1;
        k = 3;
    } else if (is(argv, lens, 0, "XREAD") || is(argv, lens, 0, "XREADGROUP")) {
        for (k = 1; k < argc && !is(argv, lens, k, "STREAMS"); k++)
            ;
        k++;
    } else if (is(argv, lens, 0, "MEMORY") || is(argv, lens, 0, "OBJECT")) {
        k = 2;
    }
    return k < argc ? tq_slot(argv[k], len_of(argv, lens, k)) : -1;
}
