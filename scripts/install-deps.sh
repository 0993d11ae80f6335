#!/usr/bin/env bash
# Installs everything a fresh Debian 12 machine lacks to build and test ctrdiag:
# protoc (tonic/prost codegen), containerd 1.6 (Debian 12), docker-registry, dbus, ripgrep
# (the scanner benchmark's peer), kubectl (when the machine has none), lintian and man-db
# (the Debian package's checks), cargo-deb (the version scripts/package.sh pins),
# containerd 1.7.24 / 2.1.9 unpacked from Debian's newer suites, and Prometheus (promtool
# and the server) and systemd-journal-remote (writes real journal files without systemd)
# unpacked with dpkg -x into $CTRDIAG_LAB_DIR: their maintainer scripts call systemd
# tools, which must not run here.
# Idempotent: re-running skips what is already there.
set -euo pipefail

LAB_DIR="${CTRDIAG_LAB_DIR:-/opt/ctrdiag-lab}"
V17="1.7.24~ds1-6+deb13u1"
V21="2.1.9+ds1-5"

need_apt=()
for pair in protoc:protobuf-compiler containerd:containerd docker-registry:docker-registry systemd-analyze:systemd \
            dbus-daemon:dbus htpasswd:apache2-utils rg:ripgrep kubectl:kubernetes-client \
            lintian:lintian man:man-db; do
    cmd="${pair%%:*}"; pkg="${pair#*:}"
    command -v "$cmd" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if ((${#need_apt[@]})); then
    echo "install-deps: apt-get install ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # policy-rc.d keeps the packages' maintainer scripts from trying to start services.
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

# An independent gRPC client for the API tests (Python's grpcio, from PyPI).
if ! python3 -c "import grpc, grpc_tools" >/dev/null 2>&1; then
    echo "install-deps: pip install grpcio-tools"
    python3 -m pip install -q --disable-pip-version-check "grpcio-tools==1.85.1"
fi

# cargo-deb, the version scripts/package.sh pins (a cargo install when it is missing).
bash "$(dirname "$0")/package.sh" --tools-only

# The mirror the machine already uses, so no host name is hard-coded here.
mirror="$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)"
if [[ -z "$mirror" ]]; then
    mirror="$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)"
fi

fetch_version() { # $1 = short name (1.7 / 2.1), $2 = debian version
    local short="$1" ver="$2" dest="$LAB_DIR/containerd-$1"
    if [[ -x "$dest/usr/bin/containerd" ]]; then return 0; fi
    [[ -n "$mirror" ]] || { echo "install-deps: cannot find the Debian mirror" >&2; exit 1; }
    local d="$LAB_DIR/apt"
    mkdir -p "$d/lists/partial" "$d/debs"
    printf 'deb %s trixie main\ndeb %s forky main\n' "$mirror" "$mirror" > "$d/sources.list"
    local o=(-o "Dir::Etc::SourceList=$d/sources.list" -o Dir::Etc::SourceParts=/dev/null
             -o "Dir::State::Lists=$d/lists" -o Debug::NoLocking=1)
    if [[ ! -f "$d/.updated" ]]; then apt-get "${o[@]}" update -qq; touch "$d/.updated"; fi
    (cd "$d/debs" && apt-get "${o[@]}" download "containerd=$ver")
    rm -rf "$dest.tmp"; mkdir -p "$dest.tmp"
    dpkg -x "$d"/debs/containerd_"${ver//\~/%7e}"*.deb "$dest.tmp" 2>/dev/null \
        || dpkg -x "$(ls "$d"/debs/containerd_"${ver%%+*}"*.deb | head -1)" "$dest.tmp"
    mv "$dest.tmp" "$dest"
    echo "install-deps: containerd $short at $dest/usr/bin/containerd"
}
mkdir -p "$LAB_DIR"
fetch_version 1.7 "$V17"
fetch_version 2.1 "$V21"

# $1 = package from the machine's own suite, $2 = a file the package must bring.
unpack_package() {
    local pkg="$1" probe="$2" dest="$LAB_DIR/$1"
    if [[ -e "$dest/$probe" ]]; then return 0; fi
    local d="$LAB_DIR/apt/debs-own"
    mkdir -p "$d"
    (cd "$d" && rm -f "${pkg}"_*.deb && { apt-get download "$pkg" || { apt-get update -qq && apt-get download "$pkg"; }; })
    rm -rf "$dest.tmp"; mkdir -p "$dest.tmp"
    dpkg -x "$d/${pkg}"_*.deb "$dest.tmp"
    mv "$dest.tmp" "$dest"
    echo "install-deps: $pkg unpacked at $dest"
}
unpack_package prometheus usr/bin/promtool
unpack_package systemd-journal-remote lib/systemd/systemd-journal-remote
# systemd-journal-remote links libmicrohttpd, which has no maintainer scripts to fear.
if ! ldconfig -p | grep -q 'libmicrohttpd\.so\.12'; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libmicrohttpd12
fi
"$LAB_DIR/prometheus/usr/bin/promtool" --version | head -1
"$LAB_DIR/systemd-journal-remote/lib/systemd/systemd-journal-remote" --version | head -1

"$LAB_DIR/containerd-1.7/usr/bin/containerd" --version
"$LAB_DIR/containerd-2.1/usr/bin/containerd" --version
containerd --version
