"""The ``kontaktstation`` command: the composition root for everything started from a shell.

Each sub-command imports what it needs inside its own function, so ``kontaktstation hub``
never loads the station's hardware and the locked UI never loads the vault.
"""

from __future__ import annotations

import argparse
import faulthandler
import sys
from collections.abc import Callable, Sequence

__all__ = ["main"]


def _self_check(args: argparse.Namespace) -> int:
    from hardware.system_alsa import use_system_alsa_lib

    use_system_alsa_lib()  # as stationd does: before anything imports av
    from kontaktstation.selfcheck import run_self_check

    return run_self_check(verbose=not args.quiet)


def _demo(args: argparse.Namespace) -> int:
    from kontaktstation.demo import main as demo_main

    return demo_main(args.rest)


def _ui(args: argparse.Namespace) -> int:
    from tui.supervisor import main as ui_main

    return ui_main(args.rest)


def _ui_host(args: argparse.Namespace) -> int:
    from tui.uihost import main as ui_host_main

    return ui_host_main(args.rest)


def _hw_check(args: argparse.Namespace) -> int:
    from hardware.system_alsa import use_system_alsa_lib

    use_system_alsa_lib()  # as stationd does: before anything imports av
    from hardware.health import hw_check_main
    from provisioning.identity import fingerprint_line
    from station.storage.datadir import data_dir

    status = hw_check_main(args.rest)
    # hardware/ may not import provisioning (a contract), so the identity line is added here.
    if "--json" not in args.rest:
        print(fingerprint_line(data_dir()))
    return status


def _admin(args: argparse.Namespace) -> int:
    from hub.admin import main as admin_main

    return admin_main(args.rest)


def _daemon(args: argparse.Namespace) -> int:
    from hardware.system_alsa import use_system_alsa_lib

    use_system_alsa_lib()  # before anything imports av
    from station.daemon.app import main as daemon_main

    return daemon_main(args.rest)


def _update(args: argparse.Namespace) -> int:
    from provisioning.updater import main as updater_main

    return updater_main(args.rest)


def _surface(args: argparse.Namespace) -> int:
    from hardware.surface.app import main as surface_main

    return surface_main(args.rest)


def _guide(args: argparse.Namespace) -> int:
    from tui.staff.guide import main as guide_main

    return guide_main(args.rest)


def _hub(args: argparse.Namespace) -> int:
    from hub import server

    return server.main(args.rest)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kontaktstation",
        description="KontaktStation: booked GP video consultations for care homes.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func: Callable[[argparse.Namespace], int], help_: str) -> None:
        p = sub.add_parser(name, help=help_, description=help_)
        if func not in _PASSTHROUGH.values():
            p.add_argument("-q", "--quiet", action="store_true", help="print only failures")
        p.set_defaults(func=func, rest=[])

    add("demo", _demo, "run the whole station on embedded defaults: hub, stationd, UI, GP link")
    add("ui", _ui, "the kiosk terminal: the locked UI, and the staff UI after log-in")
    add("ui-host", _ui_host, "a tmux server of this Unix user for one of the kiosk's UIs")
    add("self-check", _self_check, "check vault, sealed store, lock and audit on a scratch dir")
    add("hw-check", _hw_check, "check camera, microphone, loudspeaker, button and LED")
    add("daemon", _daemon, "run stationd: hardware, call, blind store and the local API")
    add("surface", _surface, "show the GP's video and the self-view on the station's screen")
    add("update", _update, "install the release IT's configuration names (the root updater)")
    add("admin", _admin, "IT's provisioning commands: stations, configuration, staff, commands")
    add("hub", _hub, "run the municipality's server: rendezvous and the GP's web page")
    add("guide", _guide, "print the staff's one-page quick guide (the help screens' text)")
    return parser


#: Sub-commands that parse their own options (``--help`` included).
_PASSTHROUGH: dict[str, Callable[[argparse.Namespace], int]] = {
    "admin": _admin,
    "daemon": _daemon,
    "demo": _demo,
    "ui": _ui,
    "ui-host": _ui_host,
    "hub": _hub,
    "guide": _guide,
    "hw-check": _hw_check,
    "surface": _surface,
    "update": _update,
}


#: The services whose standard error is the journal: a crash in native code (PyAV, FFmpeg,
#: OpenSSL, SDL) prints where every thread was (files, lines and function names; never a value,
#: so no personal data) instead of a bare ``status=11/SEGV``. Not the UIs: their standard error
#: is the screen.
_CRASH_TRACED = frozenset({"daemon", "surface", "hub", "update"})


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``kontaktstation`` console command."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in _CRASH_TRACED:
        faulthandler.enable(all_threads=True)
    if argv and argv[0] in _PASSTHROUGH:
        return _PASSTHROUGH[argv[0]](argparse.Namespace(rest=argv[1:]))
    args = _parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    return func(args)


if __name__ == "__main__":
    sys.exit(main())
