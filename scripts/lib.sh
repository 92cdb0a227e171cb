# Shared by the scripts in scripts/ and by .ci/run; not run on its own. Source it right after
# `set -Eeuo pipefail`, naming the script (the prefix of every message):
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" ci-fuzz
#
# It sets `repo` (the repository root) and gives:
#   step NAME [HINT]        names what runs next (and a hint printed if it fails)
#   log MSG...              prints "=== NAME: MSG ==="
#   say MSG... / warn MSG...  prints "NAME: MSG" on stdout / stderr
#   die MSG...              prints "NAME: MSG" on stderr and exits 1
#   need_apt [--why TEXT] PKG...    installs Debian packages as root or with sudo
#   need_rustup_target T...         adds the rustup targets that are missing
#   need_toolchain TC [COMPONENT...]  installs a rustup toolchain (profile minimal) and components
#   need_kotlinc            the npm kotlin-compiler, once for every script: sets kotlin_home
#   build_insn_count_plugin DIR QEMU_PKG  the instruction-counting TCG plugin, built in DIR against
#                           the qemu-plugin.h of QEMU_PKG's version: sets insn_count_plugin
#   thousands N             prints N with thousands separators (1234567 -> 1,234,567)
#   qemu_count_insn PLUGIN COUNTS CPU EXE ARGS...  runs EXE under qemu-aarch64 with the plugin;
#                           prints EXE's output, then "min median max" instructions per marked run
#   timed NAME CMD...       runs CMD, prints "=== step NAME: N s ===" and records it for
#   print_timings           the table of every timed step (trap it on EXIT to get it on failure)
# A command that fails outside an `if`/`||` ends the script through the ERR trap, which prints
# "NAME: FAILED during: <step>" and the step's hint.
# shellcheck shell=bash

lib_name="${1:-$(basename "$0")}"
# shellcheck disable=SC2034 # for the scripts that source this file
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
step="setup"
hint=""

log() { echo "=== $lib_name: $* ==="; }
say() { echo "$lib_name: $*"; }
warn() { echo "$lib_name: $*" >&2; }
die() {
    warn "$@"
    exit 1
}

step() {
    step="$1"
    hint="${2:-}"
}

fail() {
    warn "FAILED during: $step"
    [[ -n "$hint" ]] && warn "hint: $hint"
    exit 1
}
set -E
trap fail ERR

# need_apt [--why TEXT] PKG...: apt-get installs PKG... (quietly, no recommends), as root or
# through sudo. The caller decides whether they are needed (a command or file it looks for).
need_apt() {
    local why=""
    if [[ "${1:-}" == --why ]]; then
        why="$2"
        shift 2
    fi
    step "apt-get install $*" \
        "run as root (or with sudo) on Debian/Ubuntu: apt-get update && apt-get install -y --no-install-recommends $*"
    local sudo=()
    if [[ "$(id -u)" != 0 ]]; then
        command -v sudo >/dev/null || { warn "not root and no sudo"; false; }
        sudo=(sudo)
    fi
    log "installing ${why:-$*}"
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "$@"
}

# need_rustup_target T...: adds those of the rustup targets T... that the default toolchain lacks.
need_rustup_target() {
    step "rustup target add" "needs rustup and network access: rustup target add $*"
    local installed missing=() t
    installed="$(rustup target list --installed)"
    for t in "$@"; do
        grep -qx "$t" <<<"$installed" || missing+=("$t")
    done
    if ((${#missing[@]})); then
        log "adding rust targets: ${missing[*]}"
        rustup target add "${missing[@]}"
    fi
}

# need_toolchain TOOLCHAIN [COMPONENT...]: installs TOOLCHAIN (profile minimal) with the
# components when missing, and adds those of the components an installed one lacks.
need_toolchain() {
    local tc="$1" c components
    shift
    local with=()
    (($#)) && with=(--component "$(IFS=,; echo "$*")")
    step "rustup toolchain install $tc${*:+ (with $*)}" \
        "needs rustup and network access: rustup toolchain install $tc --profile minimal ${with[*]}"
    if ! rustup run "$tc" rustc --version >/dev/null 2>&1; then
        log "installing the $tc toolchain"
        rustup toolchain install "$tc" --profile minimal "${with[@]}"
    fi
    (($#)) || return 0
    components="$(rustup component list --toolchain "$tc" --installed)"
    for c in "$@"; do
        if ! grep -q "^$c" <<<"$components"; then
            log "adding component $c to $tc"
            rustup component add --toolchain "$tc" "$c"
        fi
    done
}

# need_kotlinc: a current Kotlin compiler (Debian's kotlin 1.3 cannot read uniffi 0.32's output),
# from npm into one cache every script shares ($KOTLINC_CACHE): sets kotlin_home, which holds
# bin/kotlinc and lib/kotlin-stdlib.jar. Needs npm (the caller installs it with its other packages).
kotlin_version=2.4.20
need_kotlinc() {
    local cache="${KOTLINC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cnn-toolkit/kotlinc-$kotlin_version}"
    kotlin_home="$cache/node_modules/kotlin-compiler"
    [[ -x "$kotlin_home/bin/kotlinc" ]] && return 0
    step "npm install kotlin-compiler@$kotlin_version" \
        "needs npm and the npm registry: npm install --prefix $cache kotlin-compiler@$kotlin_version"
    log "installing kotlinc $kotlin_version from npm into $cache"
    mkdir -p "$cache"
    npm install --prefix "$cache" --no-audit --no-fund --silent "kotlin-compiler@$kotlin_version"
}

# timed NAME CMD...: runs CMD, prints its wall time and keeps it for print_timings. Returns
# CMD's status (so the ERR trap still stops the script on a failure).
timings=()
timed_current=""
timed() {
    local name="$1" start=$SECONDS rc=0
    shift
    timed_current="$name"
    step "$name"
    "$@" || rc=$?
    timed_current=""
    timings+=("$name|$((SECONDS - start))|$( ((rc == 0)) && echo ok || echo "FAILED (exit $rc)")")
    echo "=== step $name: $((SECONDS - start)) s ==="
    return "$rc"
}

# print_timings: a table of the timed steps so far (a step cut short by a signal shows as such).
timed_started=$SECONDS
print_timings() {
    local row name secs result
    echo
    echo "=== $lib_name: step times ==="
    printf '%-40s %8s  %s\n' step seconds result
    for row in "${timings[@]}"; do
        IFS='|' read -r name secs result <<<"$row"
        printf '%-40s %8s  %s\n' "$name" "$secs" "$result"
    done
    [[ -n "$timed_current" ]] && printf '%-40s %8s  %s\n' "$timed_current" "-" "interrupted"
    printf '%-40s %8s\n' total "$((SECONDS - timed_started))"
}

# build_insn_count_plugin DIR QEMU_PKG: builds firmware/tools/insn-count (a TCG plugin counting
# guest instructions between calls of a marker function) into DIR/libinsn_count.so, against
# qemu-plugin.h from Debian's qemu source package of the installed QEMU_PKG's version (the plugin
# API is per QEMU version; Debian ships no header, and it is GPL-2.0-or-later, so it is fetched
# here, never committed: a deb-src entry is added to apt's sources). Sets insn_count_plugin.
# Needs gcc, xz-utils and dpkg-dev (the caller installs them with its other packages).
build_insn_count_plugin() {
    local work="$1" pkg="$2"
    local header_dir="$work/qemu-plugin"
    step "qemu-plugin.h from Debian's qemu source package" \
        "needs network access to deb.debian.org (deb-src); the plugin API header is in include/qemu/ of the QEMU source"
    if [[ ! -f "$header_dir/qemu-plugin.h" ]]; then
        local src_list=/etc/apt/sources.list.d/cnn-toolkit-deb-src.sources sudo=()
        [[ "$(id -u)" == 0 ]] || sudo=(sudo)
        if ! grep -rqs "^Types:.*deb-src\|^deb-src" /etc/apt/sources.list /etc/apt/sources.list.d/; then
            log "adding Debian's deb-src entries ($src_list)"
            printf '%s\n' "# Added by cnn-toolkit's scripts/lib.sh: Debian source packages (qemu-plugin.h)." \
                "Types: deb-src" "URIs: http://deb.debian.org/debian" "Suites: bookworm bookworm-updates" \
                "Components: main" "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg" "" \
                "Types: deb-src" "URIs: http://deb.debian.org/debian-security" "Suites: bookworm-security" \
                "Components: main" "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg" \
                | "${sudo[@]}" tee "$src_list" >/dev/null
            "${sudo[@]}" apt-get update -qq
        fi
        local src_ver orig
        src_ver="$(dpkg-query -W -f='${source:Version}' "$pkg" 2>/dev/null || true)"
        mkdir -p "$work/qemu-src"
        log "apt-get source --download-only qemu${src_ver:+=$src_ver}"
        (cd "$work/qemu-src" && { apt-get source -qq --download-only "qemu${src_ver:+=$src_ver}" ||
            apt-get source -qq --download-only qemu; })
        local origs=("$work"/qemu-src/qemu_*.orig.tar.*)
        orig="${origs[0]}"
        mkdir -p "$header_dir"
        tar -xf "$orig" -C "$work/qemu-src" --wildcards '*/include/qemu/qemu-plugin.h'
        cp "$work"/qemu-src/*/include/qemu/qemu-plugin.h "$header_dir/"
    fi
    step "build the insn-count plugin" "gcc must build firmware/tools/insn-count/insn_count.c against $header_dir/qemu-plugin.h"
    insn_count_plugin="$work/libinsn_count.so"
    gcc -O2 -Wall -Wextra -Werror -shared -fPIC -I"$header_dir" -o "$insn_count_plugin" \
        "$repo/firmware/tools/insn-count/insn_count.c"
}

# qemu_count_insn PLUGIN COUNTS_FILE QEMU_CPU EXE ARGS...: runs the aarch64 program EXE (which
# calls `insn_count_mark` before its first timed run and after each) under qemu-aarch64 with the
# insn-count plugin, the marker found by name (EXE is position-independent: its load address is
# QEMU's choice). Prints EXE's output, then one line "min median max": the instructions between
# consecutive marks. Fails if EXE fails or has no marker symbol, or no two marks were counted.
qemu_count_insn() {
    local plugin="$1" counts="$2" cpu="$3" exe="$4"
    shift 4
    [[ -n "$(nm "$exe" | awk '$3 == "insn_count_mark"')" ]] || { warn "no insn_count_mark symbol in $exe"; return 1; }
    rm -f "$counts"
    env ${cpu:+QEMU_CPU="$cpu"} qemu-aarch64 -L /usr/aarch64-linux-gnu \
        -plugin "$plugin,symbol=insn_count_mark,out=$counts" "$exe" "$@"
    grep -v '^#' "$counts" | awk 'NR > 1 { print $1 - prev } { prev = $1 }' | sort -n |
        awk '{ v[NR] = $1 } END { if (NR == 0) exit 1; print v[1], v[int((NR + 1) / 2)], v[NR] }'
}

# thousands N: N with thousands separators, as the figures in bench/RESULTS.md are written.
thousands() {
    awk -v n="$1" 'BEGIN { s = sprintf("%d", n); o = ""; while (length(s) > 3) { o = "," substr(s, length(s) - 2) o; s = substr(s, 1, length(s) - 3) } print s o }'
}
