#!/usr/bin/env bash
# Turn a fresh Raspberry Pi OS Bookworm (Lite, 64-bit) into a KontaktStation, idempotently.
#
#   sudo provisioning/pi/setup.sh [--dry-run] [--source DIR-OR-WHEEL]
#
# --dry-run  print every step and what it would do; change nothing (runs as any user).
# --source   the project to install into the venv: a source checkout or a built wheel
#            (default: the checkout this script is in).
#
# Output: one "STEP nn name: what" line per step, in order, then one line per action:
#   "  + command"   done now (or, with --dry-run, would be done)
#   "  = reason"    already so, nothing to do (what makes a second run change nothing)
# Read-only checks (id, getent, cmp, test) run in both modes; everything that changes the
# system goes through `act`, which only prints under --dry-run.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "${HERE}/../.." && pwd)"
FILES="${HERE}/files"

PREFIX=/opt/kontaktstation
VENV="${PREFIX}/venv"
ETC=/etc/kontaktstation
STATION_USER=kontaktstation
KIOSK_USER=kontaktstation-kiosk
UNITS=(kontaktstation-stationd.service kontaktstation-kiosk.service kontaktstation-surface.service)
APT_PACKAGES=(
    python3-venv python3-pip python3-picamera2 python3-lgpio
    labwc foot tmux fonts-dejavu-core
    pipewire pipewire-alsa wireplumber libspa-0.2-modules
    zram-tools curl
)

DRY_RUN=0
SOURCE="${REPO}"
while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) DRY_RUN=1 ;;
        --source) SOURCE="${2:?--source needs a directory or a wheel}"; shift ;;
        --source=*) SOURCE="${1#--source=}" ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "unknown option: $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done

STEP=0
step() {
    STEP=$((STEP + 1))
    printf 'STEP %02d %s\n' "${STEP}" "$*"
}
act() {
    printf '  + %s\n' "$*"
    if [ "${DRY_RUN}" -eq 0 ]; then "$@"; fi
}
already() {
    printf '  = %s\n' "$*"
}
# Install a file only when its content or mode differs.
put() {
    local mode="$1" src="$2" dst="$3"
    if [ -f "${dst}" ] && cmp -s "${src}" "${dst}" \
        && [ "$(stat -c %a "${dst}")" = "${mode#0}" ]; then
        already "${dst} is up to date"
    else
        act install -D -m "${mode}" "${src}" "${dst}"
    fi
}
# Write generated content to a file only when its content or mode differs.
put_text() {
    local mode="$1" dst="$2" text="$3" tmp
    if [ -f "${dst}" ] && [ "$(cat "${dst}")" = "${text}" ] \
        && [ "$(stat -c %a "${dst}")" = "${mode#0}" ]; then
        already "${dst} is up to date"
        return
    fi
    printf '  + write %s (mode %s)\n' "${dst}" "${mode}"
    if [ "${DRY_RUN}" -eq 0 ]; then
        tmp="$(mktemp)"
        printf '%s\n' "${text}" >"${tmp}"
        install -D -m "${mode}" "${tmp}" "${dst}"
        rm -f "${tmp}"
    fi
}
uid_of() { id -u "$1" 2>/dev/null || echo "<uid of $1>"; }

# --------------------------------------------------------------------------------------
step "preflight: Raspberry Pi OS Bookworm, 64-bit, as root"
# shellcheck source=/dev/null
codename="$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-unknown}")"
if [ "${codename}" != bookworm ]; then
    echo "this script is for Bookworm; this system is ${codename}" >&2
    [ "${DRY_RUN}" -eq 1 ] || exit 1
fi
if [ "${DRY_RUN}" -eq 0 ] && [ "$(id -u)" -ne 0 ]; then
    echo "run as root (sudo), or with --dry-run" >&2
    exit 1
fi
if [ ! -e "${SOURCE}" ]; then
    echo "no project at ${SOURCE}" >&2
    exit 1
fi
already "Bookworm (${codename}), $(uname -m), installing ${SOURCE}"

step "apt: packages for camera, GPIO, kiosk, audio and zram"
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "${pkg}" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("${pkg}")
done
if [ ${#missing[@]} -eq 0 ]; then
    already "all ${#APT_PACKAGES[@]} packages installed"
else
    act env DEBIAN_FRONTEND=noninteractive apt-get update -q
    act env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        "${missing[@]}"
fi

step "users: ${STATION_USER} (stationd) and ${KIOSK_USER} (screen), sharing one group"
if id -u "${STATION_USER}" >/dev/null 2>&1; then
    already "user ${STATION_USER} exists"
else
    # A home outside the data directory, for its PipeWire session (wireplumber state).
    act useradd --system --user-group --create-home --home-dir "/var/lib/${STATION_USER}-home" \
        --shell /usr/sbin/nologin --groups video,gpio,audio,render "${STATION_USER}"
fi
if id -u "${KIOSK_USER}" >/dev/null 2>&1; then
    already "user ${KIOSK_USER} exists"
else
    act useradd --system --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin --groups "${STATION_USER},video,render,input" "${KIOSK_USER}"
fi

step "venv: ${VENV} with --system-site-packages (picamera2, lgpio from apt)"
if [ -x "${VENV}/bin/python" ]; then
    already "${VENV} exists"
else
    act install -d -m 0755 "${PREFIX}"
    act python3 -m venv --system-site-packages "${VENV}"
fi
act "${VENV}/bin/pip" install --quiet --disable-pip-version-check --upgrade "${SOURCE}"

step "kiosk config: ${ETC} (labwc, foot, tmux)"
put 0644 "${REPO}/systemd/kiosk/labwc/rc.xml" "${ETC}/labwc/rc.xml"
put 0644 "${REPO}/systemd/kiosk/labwc/menu.xml" "${ETC}/labwc/menu.xml"
put 0644 "${REPO}/systemd/kiosk/labwc/environment" "${ETC}/labwc/environment"
put 0644 "${REPO}/systemd/kiosk/foot.ini" "${ETC}/foot.ini"
put 0644 "${REPO}/systemd/kiosk/tmux.conf" "${ETC}/tmux.conf"

step "audio: PipeWire echo cancellation for the speakerphone, for ${STATION_USER}"
put 0644 "${FILES}/60-kontaktstation-echo-cancel.conf" \
    /etc/pipewire/pipewire.conf.d/60-kontaktstation-echo-cancel.conf
# stationd reaches its user's PipeWire through /run/user/<uid>; lingering starts that
# session at boot without anyone logging in.
if [ -e "/var/lib/systemd/linger/${STATION_USER}" ]; then
    already "lingering on for ${STATION_USER}"
else
    act loginctl enable-linger "${STATION_USER}"
fi
station_uid="$(uid_of "${STATION_USER}")"
put_text 0644 /etc/systemd/system/kontaktstation-stationd.service.d/10-audio.conf \
"# Written by provisioning/pi/setup.sh: stationd's PipeWire session (uid ${station_uid}).
[Unit]
Wants=user@${station_uid}.service
After=user@${station_uid}.service

[Service]
Environment=XDG_RUNTIME_DIR=/run/user/${station_uid}"

step "units: stationd, kiosk, video surface; logind, coredump and manager drop-ins"
for unit in "${UNITS[@]}"; do
    put 0644 "${REPO}/systemd/${unit}" "/etc/systemd/system/${unit}"
done
put 0644 "${REPO}/systemd/logind.conf.d/kontaktstation.conf" \
    /etc/systemd/logind.conf.d/kontaktstation.conf
put 0644 "${REPO}/systemd/coredump.conf.d/kontaktstation.conf" \
    /etc/systemd/coredump.conf.d/kontaktstation.conf
put 0644 "${REPO}/systemd/system.conf.d/kontaktstation.conf" \
    /etc/systemd/system.conf.d/kontaktstation.conf
act systemctl daemon-reload

step "swap: off the SD card, compressed RAM (zram) only; /tmp in RAM"
if [ -e /var/swap ] || systemctl is-enabled --quiet dphys-swapfile.service 2>/dev/null; then
    act dphys-swapfile swapoff
    act dphys-swapfile uninstall
    act systemctl disable --now dphys-swapfile.service
else
    already "no swap file on the SD card"
fi
put 0644 "${FILES}/zramswap" /etc/default/zramswap
if systemctl is-enabled --quiet zramswap.service 2>/dev/null; then
    already "zramswap enabled"
else
    act systemctl enable zramswap.service
fi
# PrivateTmp= directories live under /tmp: keep them in RAM too.
if systemctl is-enabled --quiet tmp.mount 2>/dev/null; then
    already "/tmp is a tmpfs"
else
    put 0644 /usr/share/systemd/tmp.mount /etc/systemd/system/tmp.mount
    act systemctl enable tmp.mount
fi

step "kernel: SysRq off, core dumps off, ptrace restricted"
put 0644 "${FILES}/60-kontaktstation-sysctl.conf" /etc/sysctl.d/60-kontaktstation.conf
put 0644 "${FILES}/60-kontaktstation-limits.conf" \
    /etc/security/limits.d/60-kontaktstation.conf
act sysctl --quiet --system

step "consoles: the kiosk owns tty1; no gettys, no VT switching"
for n in 1 2 3 4 5 6; do
    if [ "$(readlink "/etc/systemd/system/getty@tty${n}.service" 2>/dev/null)" = /dev/null ]; then
        already "getty@tty${n} masked"
    else
        act systemctl mask "getty@tty${n}.service"
    fi
done
if [ "$(readlink /etc/systemd/system/autovt@.service 2>/dev/null)" = /dev/null ]; then
    already "autovt@ masked"
else
    act systemctl mask autovt@.service
fi
act systemctl set-default graphical.target

step "enable: stationd, kiosk and video surface at boot"
for unit in "${UNITS[@]}"; do
    if [ -e "/etc/systemd/system/multi-user.target.wants/${unit}" ] \
        || [ -e "/etc/systemd/system/graphical.target.wants/${unit}" ] \
        || [ -e "/etc/systemd/system/kontaktstation-kiosk.service.wants/${unit}" ]; then
        already "${unit} enabled"
    else
        act systemctl enable "${unit}"
    fi
done

step "enrollment: start stationd; the station waits for IT to approve it"
act systemctl start kontaktstation-stationd.service
act curl --silent --show-error --fail --retry 30 --retry-delay 1 --retry-connrefused \
    --unix-socket /run/kontaktstation/stationd.sock http://stationd/v1/enrollment -o /dev/null
echo "Done. Reboot (sudo reboot): the screen shows the enrollment code for IT to approve."
