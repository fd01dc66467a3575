/* Redis Cluster hash slots.
 *
 * A key's slot is CRC16 (XMODEM) of the key, modulo 16384; when the key has
 * a hash tag, a "{...}" with at least one byte inside, only the bytes
 * between the first '{' and the next '}' count. Every key of one script
 * call must share a slot: tickq's keys carry their queue's tag for that
 * (common/keys.h). */
#ifndef TQ_SLOT_H
#define TQ_SLOT_H

#include <stddef.h>

#define TQ_SLOT_COUNT 16384

/* The slot of the key [key, key + len). */
int tq_slot(const char *key, size_t len);

/* The slot of a command given as an argument vector (lens may be NULL for C
 * strings): that of its first key, or -1 for a command without keys (PING,
 * INFO, ROLE, WAIT, FUNCTION, SCRIPT, CLIENT, CLUSTER, MULTI, EXEC, SCAN,
 * an FCALL with no keys, ...). The first key is argv[1] but for FCALL,
 * FCALL_RO, EVAL and EVALSHA (after numkeys), XREAD (after STREAMS) and
 * MEMORY USAGE and OBJECT (argv[2]). */
int tq_slot_argv(int argc, const char *const *argv, const size_t *lens);

#endif
