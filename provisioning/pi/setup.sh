#!/usr/bin/env bash
# Turn a fresh Raspberry Pi OS (Lite, 64-bit) into a KontaktStation, idempotently.
#
#   sudo provisioning/pi/setup.sh --hub-url URL [--it-key KEY]... [--station-token FILE]
#                                 [--target auto|pi4|pi5|generic] [--wheels DIR]
#                                 [--set KEY=VALUE]... [--keep-user NAME]...
#                                 [--source DIR-OR-WHEEL] [--dry-run] [--print-packages]
#
# Releases: Raspberry Pi OS trixie (Debian 13, Python 3.13) and Bookworm (legacy, 3.11).
# Targets:  pi4, pi5 (numpy, simplejpeg, picamera2 and lgpio from apt; the venv never
#           shadows them), generic (any other Debian board with a GPIO chip: no picamera2,
#           lgpio from pip); auto (default) reads /proc/device-tree/model.
#
# --hub-url        the hub IT runs (https://...): the station enrolls there. Needed on the
#                  first run; later runs keep the settings already written.
# --it-key         an Ed25519 public key (base64url, `kontaktstation admin key`) that signs
#                  the station's configuration; repeat for several. The station trusts only
#                  these, never a key the hub offers. Without one it trusts the hub's keys
#                  when IT approves it.
# --station-token  LEGACY: a file with the hub's shared station token, only for a hub where IT
#                  still allows it (hub/README.md); installed root-only and handed to stationd
#                  as a systemd credential. Without it (the default) the station signs in to
#                  the hub with its own identity key once IT has approved it.
# --wheels         install Python packages from this directory only (no index: offline).
# --set            an extra line for stationd's settings (station.env), e.g.
#                  KONTAKTSTATION_CAMERA=v4l2 for a USB webcam on a Pi.
# --keep-user      a login account not to lock (by default every human account, such as the
#                  one Raspberry Pi Imager made, is locked: IT reaches a station via its hub).
# --source         the project to install into the venv: a source checkout or a built wheel
#                  (default: the checkout this script is in).
# --dry-run        print every step and what it would do; change nothing (runs as any user).
# --print-packages print the apt packages for the target, one a line, and stop.
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

# Where the board and the release are read (tests point these at their own files).
DT_MODEL="${KONTAKTSTATION_DT_MODEL:-/proc/device-tree/model}"
OS_RELEASE="${KONTAKTSTATION_OS_RELEASE:-/etc/os-release}"

PREFIX=/opt/kontaktstation
# Every unit runs from ${VENV}: a symbolic link to one release's venv, which the updater
# (provisioning/updater.py) switches in one rename. The set-up's own install is the release
# "setup".
VENV="${PREFIX}/venv"
SETUP_VENV="${PREFIX}/releases/setup/venv"
ETC=/etc/kontaktstation
STATION_ENV="${ETC}/station.env"
TOKEN="${ETC}/station-token"
CONSTRAINTS="${ETC}/constraints.txt"
STATION_USER=kontaktstation
KIOSK_USER=kontaktstation-kiosk
# The two UIs' own users (issue 14 item 7): each runs its UI in a tmux server of its own.
LOCKED_USER=kontaktstation-locked
STAFF_USER=kontaktstation-staff
UNITS=(kontaktstation-stationd.service kontaktstation-kiosk.service kontaktstation-surface.service
    kontaktstation-ui-locked.service kontaktstation-ui-staff.service)
# The updater: the path unit starts the (oneshot) service when stationd asks.
UPDATE_UNITS=(kontaktstation-update.service kontaktstation-update.path)
# Every target: the kiosk (labwc, foot, tmux), sound (PipeWire), the spoken reminders'
# voice (espeak-ng, with a Danish voice in its data), the surface's EGL/Wayland libraries
# (pygame-ce's SDL loads them), zram, curl for the last check.
APT_COMMON=(
    python3-venv python3-pip
    labwc foot tmux fonts-dejavu-core
    libegl1 libgles2 libegl-mesa0 libgl1-mesa-dri libwayland-egl1 libxkbcommon0
    pipewire pipewire-alsa wireplumber libspa-0.2-modules espeak-ng
    zram-tools curl ca-certificates
)
# The Pi: the camera stack and GPIO come from apt (Raspberry Pi's archive), and so does numpy,
# which apt's simplejpeg and picamera2 are built against.
# rpi-eeprom brings rpi-otp-private-key (the device secret's OTP key, below).
APT_PI=(python3-picamera2 python3-lgpio python3-numpy python3-simplejpeg rpi-eeprom)
# Any other board: lgpio is built from PyPI's source (it has no wheel for it) unless --wheels
# brings one.
APT_GENERIC=(gcc make swig python3-dev)
# What the venv must take from apt on a Pi (never a copy of its own): the constraints file.
PI_FROM_APT=(numpy simplejpeg picamera2 lgpio)
# gpiozero names the button GPIO17 after the Pi's header; on a generic board it needs a Pi
# revision to map the names onto the first GPIO chip's lines (a Pi 4 B: c03114).
GENERIC_REVISION=c03114

DRY_RUN=0
PRINT_PACKAGES=0
SOURCE="${REPO}"
TARGET=auto
HUB_URL=""
WHEELS=""
TOKEN_SOURCE=""
IT_KEYS=()
EXTRA_SETTINGS=()
KEEP_USERS=()
while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) DRY_RUN=1 ;;
        --print-packages) PRINT_PACKAGES=1 ;;
        --source) SOURCE="${2:?--source needs a directory or a wheel}"; shift ;;
        --source=*) SOURCE="${1#--source=}" ;;
        --target) TARGET="${2:?--target needs auto, pi4, pi5 or generic}"; shift ;;
        --target=*) TARGET="${1#--target=}" ;;
        --hub-url) HUB_URL="${2:?--hub-url needs a URL}"; shift ;;
        --hub-url=*) HUB_URL="${1#--hub-url=}" ;;
        --it-key) IT_KEYS+=("${2:?--it-key needs a key}"); shift ;;
        --it-key=*) IT_KEYS+=("${1#--it-key=}") ;;
        --station-token) TOKEN_SOURCE="${2:?--station-token needs a file}"; shift ;;
        --station-token=*) TOKEN_SOURCE="${1#--station-token=}" ;;
        --wheels) WHEELS="${2:?--wheels needs a directory}"; shift ;;
        --wheels=*) WHEELS="${1#--wheels=}" ;;
        --set) EXTRA_SETTINGS+=("${2:?--set needs KEY=VALUE}"); shift ;;
        --set=*) EXTRA_SETTINGS+=("${1#--set=}") ;;
        --keep-user) KEEP_USERS+=("${2:?--keep-user needs a user name}"); shift ;;
        --keep-user=*) KEEP_USERS+=("${1#--keep-user=}") ;;
        -h|--help) sed -n '2,36p' "$0"; exit 0 ;;
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
    if [ "${DRY_RUN}" -eq 1 ]; then
        # What would be written, for the reader of a dry run (no secret goes through here).
        printf '%s\n' "${text}" | sed 's/^/    | /'
    else
        tmp="$(mktemp)"
        printf '%s\n' "${text}" >"${tmp}"
        install -D -m "${mode}" "${tmp}" "${dst}"
        rm -f "${tmp}"
    fi
}
uid_of() { id -u "$1" 2>/dev/null || echo "<uid of $1>"; }
# The Python distribution version of an apt package's module, as pip sees it.
apt_dist_version() {
    if [ "${DRY_RUN}" -eq 1 ]; then
        echo "<apt's version>"
    else
        python3 -c 'import importlib.metadata as m, sys; print(m.version(sys.argv[1]))' "$1" \
            2>/dev/null || echo "<not installed>"
    fi
}

# --------------------------------------------------------------------------------------
# Which board: the device tree's model names a Pi; anything else is a generic board.
model="$(tr -d '\0' 2>/dev/null <"${DT_MODEL}" || true)"
case "${model}" in
    *"Raspberry Pi 5"*|*"Compute Module 5"*) detected=pi5 ;;
    *"Raspberry Pi 4"*|*"Compute Module 4"*) detected=pi4 ;;  # the Pi 400 too
    *"Raspberry Pi"*) detected=unsupported ;;
    *) detected=generic ;;
esac
[ "${TARGET}" = auto ] && TARGET="${detected}"
case "${TARGET}" in
    pi4|pi5) APT_PACKAGES=("${APT_COMMON[@]}" "${APT_PI[@]}") ;;
    generic) APT_PACKAGES=("${APT_COMMON[@]}" "${APT_GENERIC[@]}") ;;
    unsupported)
        echo "this board (${model}) is not a Pi 4 or Pi 5; a station needs one of them" >&2
        exit 1 ;;
    *) echo "unknown target: ${TARGET} (auto, pi4, pi5 or generic)" >&2; exit 2 ;;
esac
if [ "${PRINT_PACKAGES}" -eq 1 ]; then
    printf '%s\n' "${APT_PACKAGES[@]}"
    exit 0
fi

# --------------------------------------------------------------------------------------
step "preflight: Raspberry Pi OS trixie (or Bookworm, legacy), 64-bit, as root"
# shellcheck source=/dev/null
codename="$(. "${OS_RELEASE}" 2>/dev/null && echo "${VERSION_CODENAME:-unknown}")"
case "${codename}" in
    trixie) release="trixie (Debian 13, Python 3.13)" ;;
    bookworm) release="Bookworm (Debian 12, Python 3.11; legacy)" ;;
    *)
        echo "this script is for trixie or Bookworm; this system is ${codename}" >&2
        [ "${DRY_RUN}" -eq 1 ] || exit 1
        release="${codename} (unsupported; dry run only)" ;;
esac
if [ "${DRY_RUN}" -eq 0 ] && [ "$(id -u)" -ne 0 ]; then
    echo "run as root (sudo), or with --dry-run" >&2
    exit 1
fi
if [ ! -e "${SOURCE}" ]; then
    echo "no project at ${SOURCE}" >&2
    exit 1
fi
if [ "${TARGET}" != "${detected}" ]; then
    echo "--target ${TARGET}, but this board is ${detected} (${model:-no device-tree model})" >&2
    [ "${DRY_RUN}" -eq 1 ] || exit 1
fi
if [ -z "${HUB_URL}" ] && [ ! -f "${STATION_ENV}" ] && [ "${DRY_RUN}" -eq 0 ]; then
    echo "--hub-url is needed on the first run: without it the station cannot enroll" >&2
    exit 2
fi
if [ -n "${TOKEN_SOURCE}" ] && [ ! -r "${TOKEN_SOURCE}" ]; then
    echo "cannot read the station token file ${TOKEN_SOURCE}" >&2
    exit 2
fi
if [ -n "${WHEELS}" ] && [ ! -d "${WHEELS}" ]; then
    echo "no wheel directory at ${WHEELS}" >&2
    exit 2
fi
already "${release}, target ${TARGET}, $(uname -m), installing ${SOURCE}"

step "apt: packages for the kiosk, audio, zram and the ${TARGET} board"
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

step "users: ${STATION_USER} (stationd), ${KIOSK_USER} (screen), ${LOCKED_USER} and ${STAFF_USER} (the UIs)"
if [ "${TARGET}" = generic ]; then
    # Raspberry Pi OS has a gpio group owning /dev/gpiochip*; a generic Debian has neither.
    if getent group gpio >/dev/null 2>&1; then
        already "group gpio exists"
    else
        act groupadd --system gpio
    fi
    rule=/etc/udev/rules.d/60-kontaktstation-gpio.rules
    if [ -f "${rule}" ] && cmp -s "${FILES}/60-kontaktstation-gpio.rules" "${rule}"; then
        already "${rule} is up to date"
    else
        act install -D -m 0644 "${FILES}/60-kontaktstation-gpio.rules" "${rule}"
        act udevadm control --reload
        act udevadm trigger --subsystem-match=gpio --action=add
    fi
fi
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
# Each UI's user: stationd's group (its socket) and a group of its own, which the kiosk's user
# joins (the UI's tmux socket) and the other UI's user does not.
for ui_user in "${LOCKED_USER}" "${STAFF_USER}"; do
    if id -u "${ui_user}" >/dev/null 2>&1; then
        already "user ${ui_user} exists"
    else
        act useradd --system --user-group --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin --groups "${STATION_USER}" "${ui_user}"
    fi
    if id -nG "${KIOSK_USER}" 2>/dev/null | tr ' ' '\n' | grep -qx "${ui_user}"; then
        already "${KIOSK_USER} is in group ${ui_user}"
    else
        act usermod --append --groups "${ui_user}" "${KIOSK_USER}"
    fi
done

step "accounts: human logins locked (the imager's admin user); IT works through the hub"
locked_any=0
while IFS=: read -r name _ uid _ _ _ shell; do
    if [ "${uid}" -lt 1000 ] || [ "${uid}" -ge 60000 ]; then continue; fi
    case "${shell}" in */nologin|*/false) continue ;; esac
    keep=0
    for kept in "${KEEP_USERS[@]+"${KEEP_USERS[@]}"}"; do
        [ "${kept}" = "${name}" ] && keep=1
    done
    if [ "${keep}" -eq 1 ]; then
        already "${name} kept (--keep-user)"
        continue
    fi
    locked_any=1
    # Locked: the shadow password starts with "!"; expired: the account's expiry day is 1.
    shadow="$(getent shadow "${name}" 2>/dev/null || true)"
    if [ "$(cut -d: -f2 <<<"${shadow}" | cut -c1)" = "!" ] \
        && [ "$(cut -d: -f8 <<<"${shadow}")" = 1 ]; then
        already "${name} is locked"
    else
        act usermod --lock --expiredate 1 --shell /usr/sbin/nologin "${name}"
    fi
done < <(getent passwd)
[ "${locked_any}" -eq 1 ] || already "no human login accounts"

step "venv: ${SETUP_VENV} with --system-site-packages (${VENV} links to it); constraints for the ${TARGET} board"
if [ -x "${SETUP_VENV}/bin/python" ]; then
    already "${SETUP_VENV} exists"
else
    act install -d -m 0755 "${PREFIX}" "${PREFIX}/releases" "${PREFIX}/releases/setup"
    act python3 -m venv --system-site-packages "${SETUP_VENV}"
fi
# On a Pi, apt's numpy is what apt's simplejpeg and picamera2 are built against: a numpy in
# the venv would shadow it and `import picamera2` would fail (picamera2 issues 1088, 1211).
# The constraints pin each to the version apt installed, so pip keeps apt's copy.
if [ "${TARGET}" = generic ]; then
    constraints="# Written by provisioning/pi/setup.sh: target generic; nothing comes from apt."
else
    constraints="# Written by provisioning/pi/setup.sh: target ${TARGET}; these come from apt only."
    for module in "${PI_FROM_APT[@]}"; do
        constraints+=$'\n'"${module}==$(apt_dist_version "${module}")"
    done
fi
put_text 0644 "${CONSTRAINTS}" "${constraints}"
pip_args=(--quiet --disable-pip-version-check --upgrade --constraint "${CONSTRAINTS}")
if [ -n "${WHEELS}" ]; then
    pip_args+=(--no-index --find-links "${WHEELS}")
fi
if [ "${TARGET}" = generic ]; then
    # lgpio for gpiozero from PyPI: only its source is there; PYPI=1 is lgpio's own switch to
    # link the C library it bundles (Debian has no liblgpio).
    act env PYPI=1 "${SETUP_VENV}/bin/pip" install "${pip_args[@]}" "${SOURCE}" lgpio
else
    act "${SETUP_VENV}/bin/pip" install "${pip_args[@]}" "${SOURCE}"
fi
# The station's own code, every time: its version number does not yet tell two builds apart,
# so pip would keep an older build of the same version.
act "${SETUP_VENV}/bin/pip" install "${pip_args[@]}" --force-reinstall --no-deps "${SOURCE}"
# The link is the updater's once it exists: a second run leaves a release it switched to.
if [ -L "${VENV}" ]; then
    already "${VENV} -> $(readlink "${VENV}")"
else
    if [ -d "${VENV}" ]; then
        # A venv from a set-up before releases: kept aside (running units still use it).
        act mv "${VENV}" "${PREFIX}/venv.before-releases"
    fi
    act ln -s "${SETUP_VENV}" "${VENV}"
fi
if [ "${TARGET}" != generic ]; then
    # Proof, not hope: the venv's numpy is apt's.
    act "${VENV}/bin/python" -c 'import numpy, sys; sys.exit(numpy.__file__.startswith("/usr/lib/python3/dist-packages/") is False)'
fi

step "kiosk config: ${ETC} (labwc, foot, tmux)"
put 0644 "${REPO}/systemd/kiosk/labwc/rc.xml" "${ETC}/labwc/rc.xml"
put 0644 "${REPO}/systemd/kiosk/labwc/menu.xml" "${ETC}/labwc/menu.xml"
put 0644 "${REPO}/systemd/kiosk/labwc/environment" "${ETC}/labwc/environment"
put 0644 "${REPO}/systemd/kiosk/foot.ini" "${ETC}/foot.ini"
put 0644 "${REPO}/systemd/kiosk/tmux.conf" "${ETC}/tmux.conf"

step "audio: PipeWire echo cancellation for the speakerphone, for ${STATION_USER}"
put 0644 "${FILES}/60-kontaktstation-echo-cancel.conf" \
    /etc/pipewire/pipewire.conf.d/60-kontaktstation-echo-cancel.conf
# PipeWire and WirePlumber run for stationd's user only: the kiosk's login session would start
# its own (the user units are enabled for every user) and claim the sound card.
for unit in pipewire.socket pipewire.service pipewire-pulse.socket pipewire-pulse.service \
    wireplumber.service filter-chain.service; do
    put 0644 "${FILES}/user-unit-station-only.conf" \
        "/etc/systemd/user/${unit}.d/10-kontaktstation.conf"
done
# stationd reaches its user's PipeWire through /run/user/<uid>; lingering starts that
# session at boot without anyone logging in.
if [ -e "/var/lib/systemd/linger/${STATION_USER}" ]; then
    already "lingering on for ${STATION_USER}"
else
    act loginctl enable-linger "${STATION_USER}"
fi

step "station: hub, IT's keys, call credential and hardware backends (${STATION_ENV})"
case "${TARGET}" in
    generic) camera=v4l2 ;;
    *) camera=picamera2 ;;
esac
if [ -z "${HUB_URL}" ] && [ -f "${STATION_ENV}" ]; then
    already "${STATION_ENV} kept (no --hub-url given)"
else
    settings="# Written by provisioning/pi/setup.sh (target ${TARGET}): stationd's settings.
KONTAKTSTATION_HUB_URL=${HUB_URL:-<hub URL>}"
    if [ ${#IT_KEYS[@]} -gt 0 ]; then
        settings+=$'\n'"KONTAKTSTATION_IT_KEYS=$(IFS=,; echo "${IT_KEYS[*]}")"
    fi
    if [ "${TARGET}" != generic ]; then
        # The device secret from the SoC's OTP key, not a file on the SD card (issue 14).
        settings+=$'\n'"KONTAKTSTATION_DEVICE_SECRET=otp"
    fi
    settings+=$'\n'"KONTAKTSTATION_CAMERA=${camera}"
    settings+=$'\n'"KONTAKTSTATION_AUDIO=pyav"
    settings+=$'\n'"GPIOZERO_PIN_FACTORY=lgpio"
    for line in "${EXTRA_SETTINGS[@]+"${EXTRA_SETTINGS[@]}"}"; do
        settings+=$'\n'"${line}"
    done
    put_text 0644 "${STATION_ENV}" "${settings}"
fi
if [ -n "${TOKEN_SOURCE}" ]; then
    put 0600 "${TOKEN_SOURCE}" "${TOKEN}"
fi
# IT's keys given again: the updater trusts these from now on (it forgets the keys and the
# station it learnt from configurations: a re-enrolled station, a rotation it missed).
if [ ${#IT_KEYS[@]} -gt 0 ] && [ -e /var/lib/kontaktstation-update/trust.json ]; then
    act rm -f /var/lib/kontaktstation-update/trust.json
fi
if [ "${TARGET}" != generic ]; then
    # The device secret's root: a 256-bit key in the SoC's one-time-programmable memory, read
    # by stationd through the firmware mailbox (station/keys/device_secret.py). Programmed once
    # and for good (OTP bits never go back to 0); a key already there (a re-run, or IT's own)
    # is kept. The key is never printed: it is generated and burnt in one pipe.
    if [ "${DRY_RUN}" -eq 1 ]; then
        printf '  + rpi-otp-private-key -y -w <a new random 256-bit key, not shown> (if empty)\n'
    elif rpi-otp-private-key -c >/dev/null 2>&1; then
        already "the OTP device key is programmed"
    else
        printf '  + rpi-otp-private-key -y -w <a new random 256-bit key, not shown>\n'
        rpi-otp-private-key -y -w "$(openssl rand -hex 32)" >/dev/null
        rpi-otp-private-key -c >/dev/null || { echo "the OTP device key was not programmed" >&2; exit 1; }
    fi
fi
station_uid="$(uid_of "${STATION_USER}")"
kiosk_uid="$(uid_of "${KIOSK_USER}")"
# The units hide /home, /root and /run/user (ProtectHome=tmpfs); each gets back only its own
# user's runtime directory: stationd its PipeWire session, the kiosk and the surface the
# Wayland socket. The uids exist only now, so these lines live in drop-ins.
dropin="# Written by provisioning/pi/setup.sh: stationd's PipeWire session (uid ${station_uid}).
[Unit]
Wants=user@${station_uid}.service
After=user@${station_uid}.service

[Service]
Environment=XDG_RUNTIME_DIR=/run/user/${station_uid}
BindPaths=/run/user/${station_uid}"
if [ -n "${TOKEN_SOURCE}" ] || [ -f "${TOKEN}" ]; then
    dropin+="
# The station's credential for calls: readable by stationd alone, never in its environment.
LoadCredential=station-token:${TOKEN}
Environment=KONTAKTSTATION_HUB_STATION_TOKEN_FILE=%d/station-token"
fi
if [ "${TARGET}" != generic ]; then
    dropin+="
# The firmware mailbox, for the OTP device key (KONTAKTSTATION_DEVICE_SECRET=otp).
DeviceAllow=char-vcio r"
fi
if [ "${TARGET}" = generic ]; then
    # gpiozero's pin names need a Pi revision: stationd alone sees one in its /proc/cpuinfo.
    if [ "${DRY_RUN}" -eq 1 ]; then
        printf '  + write %s (this cpuinfo and "Revision: %s")\n' \
            "${ETC}/generic-board/cpuinfo" "${GENERIC_REVISION}"
    else
        put_text 0644 "${ETC}/generic-board/cpuinfo" \
            "$(grep -v -e '^Revision' -e '^cpu MHz' /proc/cpuinfo)
Revision	: ${GENERIC_REVISION}"
    fi
    dropin+="
# A generic board: gpiozero maps GPIO17 to line 17 of gpiochip0 as on a Pi 4.
BindReadOnlyPaths=${ETC}/generic-board/cpuinfo:/proc/cpuinfo"
fi
put_text 0644 /etc/systemd/system/kontaktstation-stationd.service.d/10-station.conf "${dropin}"
put_text 0644 /etc/systemd/system/kontaktstation-kiosk.service.d/10-session.conf \
"# Written by provisioning/pi/setup.sh: the kiosk session's runtime directory (uid ${kiosk_uid}).
[Service]
BindPaths=/run/user/${kiosk_uid}"
# The surface starts beside the kiosk, before the kiosk's login session has made its runtime
# directory: the bind would fail. It waits for the directory's own unit instead.
put_text 0644 /etc/systemd/system/kontaktstation-surface.service.d/10-session.conf \
"# Written by provisioning/pi/setup.sh: the kiosk session's runtime directory (uid ${kiosk_uid}).
[Unit]
Wants=user-runtime-dir@${kiosk_uid}.service
After=user-runtime-dir@${kiosk_uid}.service

[Service]
BindPaths=/run/user/${kiosk_uid}"

step "units: stationd, kiosk, video surface, the UIs' terminals; logind, coredump, journald and manager drop-ins"
for unit in "${UNITS[@]}" "${UPDATE_UNITS[@]}"; do
    put 0644 "${REPO}/systemd/${unit}" "/etc/systemd/system/${unit}"
done
put 0644 "${REPO}/systemd/logind.conf.d/kontaktstation.conf" \
    /etc/systemd/logind.conf.d/kontaktstation.conf
put 0644 "${REPO}/systemd/coredump.conf.d/kontaktstation.conf" \
    /etc/systemd/coredump.conf.d/kontaktstation.conf
put 0644 "${REPO}/systemd/journald.conf.d/kontaktstation.conf" \
    /etc/systemd/journald.conf.d/kontaktstation.conf
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
# PrivateTmp= directories live under /tmp: keep them in RAM too. (trixie: a tmpfs already.)
if systemctl is-enabled --quiet tmp.mount 2>/dev/null \
    || [ "$(findmnt -n -o FSTYPE /tmp 2>/dev/null)" = tmpfs ]; then
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

step "enable: stationd, kiosk, video surface, the UIs' terminals and the updater at boot"
for unit in "${UNITS[@]}"; do
    if [ -e "/etc/systemd/system/multi-user.target.wants/${unit}" ] \
        || [ -e "/etc/systemd/system/graphical.target.wants/${unit}" ] \
        || [ -e "/etc/systemd/system/kontaktstation-kiosk.service.wants/${unit}" ]; then
        already "${unit} enabled"
    else
        act systemctl enable "${unit}"
    fi
done
if [ -e /etc/systemd/system/multi-user.target.wants/kontaktstation-update.path ]; then
    already "kontaktstation-update.path enabled"
else
    act systemctl enable --now kontaktstation-update.path
fi

step "enrollment: start stationd; the station waits for IT to approve it"
act systemctl start kontaktstation-stationd.service
# /v1/enrollment answers 404 until the agent has reached the hub: retry on every error.
act curl --silent --show-error --fail --retry 60 --retry-delay 1 --retry-all-errors \
    --unix-socket /run/kontaktstation/stationd.sock http://stationd/v1/enrollment -o /dev/null
echo "Done. Reboot (sudo reboot): the screen shows the enrollment code for IT to approve."
