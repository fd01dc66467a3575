# Installs the Debian packages tickq needs to build, test and run, if any is
# missing. Sourced by scripts/start.sh and scripts/test.sh; root or sudo.
tq_deps_install() {
    local pkgs=(build-essential cmake pkg-config libhiredis-dev libjansson-dev
                libcivetweb-dev libcmocka-dev redis-server redis-tools curl jq python3 tzdata
                python3-croniter "$@")
    local missing=()
    for p in "${pkgs[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
            missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "installing Debian packages: ${missing[*]}" >&2
    local sudo=
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
}

# clang and its libFuzzer runtime, for the fuzz stage of scripts/test.sh
# (tests/fuzz). Best effort: where the packages have other names, the stage
# says it is skipped instead of failing the run.
tq_deps_install_fuzz() {
    tq_deps_install clang libclang-rt-dev 2>/dev/null ||
        echo "could not install clang and libclang-rt-dev: the fuzz stage will be skipped" >&2
}
