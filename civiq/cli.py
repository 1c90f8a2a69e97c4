"""The ``civiq`` command. It dispatches lazily: ``civiq edge ...`` never imports the gateway, and the reverse.

    civiq config check FILE...             validate center configs (file:line:field errors)
    civiq edge run CONFIG [--simulate]     run an edge agent (on a Pi, or with emulated hardware)
    civiq edge doctor CONFIG [--simulate]  check config, pins, devices, broker, clock, disk in plain words
    civiq edge test-print CONFIG           print a test ticket on each printer
    civiq edge display-test CONFIG         show a test pattern on each display
    civiq edge say-test CONFIG [--text T]  chime + a sample call on the speaker, prints what was said
    civiq edge voice-pack build|check      generate (espeak-ng, offline) or check the voice clip pack
    civiq edge install CONFIG              put config and systemd unit in place
    civiq gateway run [--config FILE]      run the gateway
    civiq gateway install                  put settings and systemd unit in place
    civiq gateway acl NODES_FILE           Mosquitto ACL (+ node passwords) from a list of center/node
    civiq demo                             broker + gateway + simulated centers, all in one
"""

from __future__ import annotations

import argparse
import logging
import os
import sys


def _setup_logging(verbose: bool) -> None:
    level = logging.DEBUG if verbose else getattr(logging, os.environ.get("CIVIQ_LOG_LEVEL", "INFO").upper(),
                                                  logging.INFO)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def build_parser() -> argparse.ArgumentParser:
    from civiq import __version__

    examples = __doc__.split("\n\n")[1]  # the command list at the top of this module
    p = argparse.ArgumentParser(prog="civiq", description="civiq: queue hardware edge agents and gateway",
                                epilog="commands:\n" + examples + "\n\nEach command has its own --help.",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.add_argument("--version", action="version", version=f"civiq {__version__}")
    sub = p.add_subparsers(dest="area", required=True)

    cfg = sub.add_parser("config", help="center config tools").add_subparsers(dest="cmd", required=True)
    chk = cfg.add_parser("check", help="validate center config files")
    chk.add_argument("files", nargs="+")

    edge = sub.add_parser("edge", help="the Raspberry Pi agent").add_subparsers(dest="cmd", required=True)
    run = edge.add_parser("run", help="run the agent")
    run.add_argument("config")
    run.add_argument("--simulate", action="store_true", help="mock GPIO pins and emulated serial devices")
    run.add_argument("--api-port", type=int, default=None, help="local HTTP port (QR page, simulator API)")
    run.add_argument("--speed", type=float, default=1.0, help="simulated clock speed (simulate only)")
    doc = edge.add_parser("doctor", help="diagnose an agent's config, devices, broker, clock and disk")
    doc.add_argument("config")
    doc.add_argument("--simulate", action="store_true", help="check a running simulation's devices")
    tp = edge.add_parser("test-print", help="print a test ticket")
    tp.add_argument("config")
    tp.add_argument("--printer", default=None)
    tp.add_argument("--simulate", action="store_true")
    dt = edge.add_parser("display-test", help="show a test pattern on every display")
    dt.add_argument("config")
    dt.add_argument("--simulate", action="store_true")
    from civiq.edge.voice.cli import add_arguments as voice_arguments

    voice_arguments(edge)
    ins = edge.add_parser("install", help="install config and systemd unit")
    ins.add_argument("config")
    ins.add_argument("--root", default="/", help="install under this root (for tests and images)")

    gw = sub.add_parser("gateway", help="the province gateway").add_subparsers(dest="cmd", required=True)
    gr = gw.add_parser("run", help="run the gateway")
    gr.add_argument("--config", default=None, help="gateway settings YAML (env CIVIQ_GW_* override it)")
    gi = gw.add_parser("install", help="install settings and systemd unit")
    gi.add_argument("--root", default="/")
    gi.add_argument("--settings", default=None, help="gateway settings YAML to install")
    gk = gw.add_parser("ticket-key", help="print a center's ticket key (for its edge's center.ticket_key_file)")
    gk.add_argument("center")
    gk.add_argument("--config", default=None)
    gu = gw.add_parser("user", help="add a dashboard user")
    gu.add_argument("name")
    gu.add_argument("--role", required=True,
                    choices=["province_admin", "center_manager", "technician", "viewer", "clerk"])
    gu.add_argument("--center", default=None, help="the center a center_manager (or clerk) may see")
    gu.add_argument("--clerk", default=None, help="role clerk: the clerk id the center's edge uses (e.g. c01)")
    gu.add_argument("--password", default=None)
    gu.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    gu.add_argument("--config", default=None)
    gp = gw.add_parser("report", help="a center's report (day, week or month) as .xlsx or .csv, from the store")
    gp.add_argument("--center", required=True)
    gp.add_argument("--period", choices=["day", "week", "month"], default="day")
    gp.add_argument("--date", default=None, help="any local day in the period, e.g. 2026-12-05 (default: today)")
    gp.add_argument("--format", choices=["xlsx", "csv", "json"], default="xlsx")
    gp.add_argument("--out", required=True, help="the file to write ('-' for standard output)")
    gp.add_argument("--config", default=None)
    gd = gw.add_parser("ratings-drop", help="write the ratings CSV of a day (ratings-<center>-<day>.csv)")
    gd.add_argument("--date", default=None, help="the local day (default: yesterday)")
    gd.add_argument("--center", default=None, help="one center (default: every center with events)")
    gd.add_argument("--out-dir", default=None, help="default: the setting ratings_drop_dir")
    gd.add_argument("--config", default=None)
    from civiq.acl import add_arguments as acl_arguments

    acl_arguments(gw.add_parser("acl", help="Mosquitto ACL (and node passwords) from a list of nodes"))

    demo = sub.add_parser("demo", help="everything on this machine: broker, gateway, simulated centers")
    demo.add_argument("--centers", type=int, default=3)
    demo.add_argument("--speed", type=float, default=60.0, help="simulated seconds per real second")
    demo.add_argument("--duration", type=float, default=None, help="stop after this many real seconds")
    demo.add_argument("--port", type=int, default=8080, help="dashboard port")
    demo.add_argument("--no-browser", action="store_true")
    return p


# the import name of each extra's distributions -> the extra that brings it (pyproject.toml)
EXTRA_OF = {"gpiozero": "edge", "serial": "edge", "PIL": "edge", "qrcode": "edge",
            "influxdb_client": "gateway", "openpyxl": "gateway", "amqtt": "demo"}


def missing_extra(e: ModuleNotFoundError) -> str | None:
    """The one-line advice when ``e`` is a part an extra brings, else None.

    >>> missing_extra(ModuleNotFoundError("No module named 'influxdb_client'", name="influxdb_client"))
    "this needs the gateway's parts (influxdb_client is not installed): pip install 'civiq[gateway]'"
    >>> missing_extra(ModuleNotFoundError("No module named 'nope'", name="nope")) is None
    True
    """
    top = (e.name or "").split(".")[0]
    extra = EXTRA_OF.get(top)
    if extra is None:
        return None
    return f"this needs the {extra}'s parts ({top} is not installed): pip install 'civiq[{extra}]'"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(args.verbose)
    try:
        return _dispatch(args)
    except ModuleNotFoundError as e:
        advice = missing_extra(e)
        if advice is None:
            raise
        print(f"civiq {args.area}: {advice}", file=sys.stderr)
        return 2


def _dispatch(args: argparse.Namespace) -> int:
    if args.area == "config":
        from civiq.edge.config import check_main

        return check_main(args.files)
    if args.area == "edge":
        from civiq.edge import cli as edge_cli

        return edge_cli.main(args)
    if args.area == "gateway" and args.cmd == "acl":
        from civiq.acl import main as acl_main

        return acl_main(args)
    if args.area == "gateway":
        from civiq.gateway import cli as gw_cli

        return gw_cli.main(args)
    if args.area == "demo":
        from civiq.dev import demo

        return demo.main(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
