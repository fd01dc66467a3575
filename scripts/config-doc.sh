#!/usr/bin/env bash
# Regenerates docs/CONFIG.md from the option table: scripts/config-doc.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
b=${1:-build}
{
    echo "# Configuration"
    echo
    echo "Every option is a flag and an environment variable. A flag beats the environment, which beats the default. Durations are seconds (decimals allowed). A bad value is a clear message on stderr and exit code 2. This file is generated from the option table in \`common/config.c\` by \`scripts/config-doc.sh\` (\`tickq-<program> --help-markdown\`); \`tests/integration/test_docs.sh\` checks that it is current."
    for p in beat worker web; do
        echo
        echo "## tickq-$p"
        echo
        "$b/$p/tickq-$p" --help-markdown
    done
    echo
    echo "All three also take \`-h\`/\`--help\` and \`-V\`/\`--version\`. \`--check\` makes a program answer a health check: it sends one PING to Redis and exits 0 if Redis answered, 1 otherwise and prints why on stderr (for container HEALTHCHECKs)."
    echo
    cat <<'VALUES'
## Values

The same rules hold for a flag and for its variable, and a value that breaks
one is a message on stderr that names the option (or the variable), and exit
code 2; nothing starts.

- `--opt VALUE` and `--opt=VALUE` are the same. A flag that takes a value
  takes the next argument whatever it looks like: `--next-runs --help` is a
  dry run of the expression "--help", not the help. `--check` takes no
  separate value (`--check=false` is one).
- The last of a repeated flag wins (`-c 1 -c 3` is 3; `-Q a,b -Q c` is just
  `c`); a flag beats its variable.
- An empty value is an error, never "the default": an unset shell variable in
  `--next-runs "$EXPR"` must not start the daemon. Leave an option out to get
  its default (also for `--worker-id`, `--beat-id`, `--schedules`).
- No value begins or ends with a space, and none holds a control byte.
- Whole numbers are decimal digits only: no sign, `0x10`, `1e3` or `5.0`;
  seconds are digits with an optional decimal fraction (`0.25`). Numbers out
  of an option's range are refused, never cut.
- `--from` and `--count` only apply to the dry run: without `--next-runs` they
  are an error, as is `--check` together with `--next-runs`.
- `--redis-url` is `redis://[user[:password]@]host[:port][/db]`, the same
  with `rediss://` for TLS (with `--redis-tls-ca`, `--redis-tls-cert` and
  `--redis-tls-key`, which a URL that is not `rediss://` refuses; a build
  without TLS refuses `rediss://` and says why),
  `unix:///path[?db=N]`, or for Redis behind Sentinel
  `redis-sentinel://[user[:password]@]host[:port][,host[:port]...][/db]?master=NAME`
  with the sentinels (port 26379 by default, 16 at most) and the name they
  know the master by; the user and password are the master's, and
  `&sentinel_user=USER&sentinel_password=PASSWORD` log in to sentinels
  that have their own (docs/DEPLOYMENT.md). A host is a DNS name, an IPv4
  address or an IPv6 address in brackets; a space or control byte anywhere
  in the URL is refused (write a space in a password as `%20`, an `&` in a
  sentinel password as `%26`). No message shows a password: a URL is
  printed as `redis://:***@host:port/db`, a sentinel password as
  `sentinel_password=***`.
- `--wait-replicas N` (beat and worker) makes every batch of publications
  and completions wait (`WAIT N`) until N replicas have it, at most
  `--wait-timeout` seconds; after that it goes on and warns (once a minute
  at most). It narrows the window in which a failover loses acknowledged
  work; docs/DEPLOYMENT.md says what it costs and what it cannot promise.

`--check` sends one PING. When it fails it prints one line that says why on
stderr, e.g. `tickq-worker: --check: redis redis://:***@db:6379/0:
authentication failed: AUTH: WRONGPASS invalid username-password pair or user
is disabled.`

A wrong or missing password, or an ACL user who may not even PING, is
logged as one error per outage ("authentication failed" or "permission
denied"), repeated at most once a minute while it lasts; the program keeps
retrying with its capped backoff and resumes when the credentials work. A
user who lacks only some right gets that command's NOPERM error where the
command is used (the beat, denied WATCH, reloads at every check instead).
`tickq-web` checks Redis at start and logs it there.
VALUES
} >docs/CONFIG.md
