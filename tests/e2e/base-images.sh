#!/usr/bin/env bash
# Makes sure the base images the Dockerfiles and docker-compose.yml name
# exist locally. With a registry, `docker pull` gets them; without one (this
# project's CI), they are built here:
#   debian:trixie-slim    debootstrap --variant=minbase trixie, from the
#   debian:bookworm-slim  Debian mirror in /etc/apt/sources.list.d/, trimmed
#                         of docs, man pages, locales and apt caches (the
#                         tickq images build on trixie, whose hiredis has TLS)
#   redis:7               a stand-in: bookworm-slim plus Debian 12's
#                         redis-server 7.0, the same entrypoint contract
#                         (redis-server args)
set -euo pipefail

have() { docker image inspect "$1" >/dev/null 2>&1; }
pull() { timeout 60 docker pull -q "$1" >/dev/null 2>&1; }

mirror() {
    local m
    m=$(sed -n 's/^URIs: *\(http[^ ]*\/debian\)\/\{0,1\}$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)
    [ -n "$m" ] || m=$(sed -n 's/^deb \(http[^ ]*\/debian\)\/\{0,1\} bookworm .*/\1/p' /etc/apt/sources.list 2>/dev/null | head -n1)
    echo "${m:-http://deb.debian.org/debian}"
}

base() { # SUITE: makes debian:SUITE-slim
    local suite=$1
    have "debian:$suite-slim" || pull "debian:$suite-slim" && return 0
    root=$(mktemp -d /tmp/tickq-rootfs.XXXXXX)
    trap 'rm -rf "$root"' EXIT
    echo "building debian:$suite-slim with debootstrap from $(mirror)" >&2
    debootstrap --variant=minbase "$suite" "$root" "$(mirror)" >/dev/null
    # What the official slim image leaves out, and the download caches.
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
        "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
        "$root"/usr/share/locale/* "$root"/var/log/*.log "$root"/tmp/*
    # The apt and dpkg settings of the official image: no package caches or
    # docs left behind by later apt-get runs either.
    cat >"$root/etc/dpkg/dpkg.cfg.d/docker-slim" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
CFG
    cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'CFG'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CFG
    echo 'Acquire::Languages "none";' >"$root/etc/apt/apt.conf.d/docker-no-languages"
    rm -f "$root"/var/cache/apt/*.bin
    tar -C "$root" -c . | docker import -c 'CMD ["bash"]' - "debian:$suite-slim" >/dev/null
    rm -rf "$root"
    trap - EXIT
}
base bookworm
base trixie

if ! have redis:7 && ! pull redis:7; then
    echo "building a stand-in redis:7 from debian:bookworm-slim" >&2
    # Like the official image: protected mode off (the container network is
    # the boundary), data in /data, "redis-server ARGS" as the command.
    docker build -q -t redis:7 - >/dev/null <<'DOCKERFILE'
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends redis-server redis-tools \
 && rm -rf /var/lib/apt/lists/* && mkdir -p /data && chown redis:redis /data \
 && printf '#!/bin/sh\nif [ "$1" = redis-server ]; then shift; exec redis-server --protected-mode no "$@"; fi\nexec "$@"\n' \
    >/usr/local/bin/docker-entrypoint.sh && chmod +x /usr/local/bin/docker-entrypoint.sh
WORKDIR /data
USER redis
EXPOSE 6379
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["redis-server"]
DOCKERFILE
fi
docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' debian:bookworm-slim
docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' redis:7
