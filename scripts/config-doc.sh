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
    echo "All three also take \`-h\`/\`--help\` and \`-V\`/\`--version\`. \`--check\` makes a program answer a health check: it sends one PING to Redis and exits 0 if Redis answered, 1 otherwise (for container HEALTHCHECKs)."
} >docs/CONFIG.md
