# Sourced by the scripts that run Python tools against rosterd
# (schemathesis.sh, scim-suites.sh): a virtualenv of their own, filled
# from PyPI, with python3 and venv apt-installed on Debian as root (or
# password-less sudo) when missing, unless ROSTERD_NO_APT=1.

# apt_install TAG PACKAGE...
apt_install() {
    local tag=$1
    shift
    [[ ${ROSTERD_NO_APT:-0} != 1 ]] && command -v apt-get >/dev/null 2>&1 || return 1
    local sudo=()
    [[ $EUID -eq 0 ]] || sudo=(sudo -n)
    [[ $EUID -eq 0 ]] || { command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; } || return 1
    echo "$tag: installing $* with apt-get" >&2
    { "${sudo[@]}" apt-get update &&
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y --no-install-recommends "$@"; } >&2
}

# make_venv TAG VENV PACKAGE...: a fresh virtualenv at VENV holding PACKAGEs.
make_venv() {
    local tag=$1 venv=$2
    shift 2
    command -v python3 >/dev/null 2>&1 || apt_install "$tag" python3 python3-venv || true
    command -v python3 >/dev/null 2>&1 || {
        echo "$tag: python3 not found (Debian: apt-get install python3 python3-venv)" >&2
        exit 1
    }
    rm -rf "$venv"
    if ! python3 -m venv "$venv" >/dev/null 2>&1; then
        rm -rf "$venv"
        apt_install "$tag" python3-venv || true
        python3 -m venv "$venv" >&2 || {
            echo "$tag: python3 -m venv failed (Debian: apt-get install python3-venv)" >&2
            exit 1
        }
    fi
    echo "$tag: installing $* from PyPI into $venv" >&2
    "$venv/bin/python" -m pip install -q --disable-pip-version-check "$@" >&2
}

# serve_rosterd TAG BIN LOG PORT VAR=VALUE...: `BIN serve` on 127.0.0.1:PORT
# with RUST_LOG=warn, JSON logs to LOG and the given environment; stopped
# when the throwaway cluster's exit trap runs; returns once /readyz answers.
serve_rosterd() {
    local tag=$1 bin=$2 log=$3 port=$4
    shift 4
    env -u RUST_LOG BIND_ADDR="127.0.0.1:$port" RUST_LOG=warn LOG_FORMAT=json "$@" \
        "$bin" serve >"$log" 2>&1 &
    ROSTERD_PID=$!
    throwaway_pg_at_exit stop_rosterd
    local _
    for _ in $(seq 1 400); do
        if "$venv/bin/python" -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)" \
            "http://127.0.0.1:$port/readyz" 2>/dev/null; then
            return 0
        fi
        kill -0 "$ROSTERD_PID" 2>/dev/null || break
        sleep 0.05
    done
    echo "$tag: rosterd did not become ready; its log:" >&2
    cat "$log" >&2
    exit 1
}

stop_rosterd() {
    [[ -n ${ROSTERD_PID:-} ]] || return 0
    kill "$ROSTERD_PID" 2>/dev/null && wait "$ROSTERD_PID" 2>/dev/null || true
    ROSTERD_PID=""
}

# free_port: a loopback port nobody listens on now.
free_port() {
    "$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
