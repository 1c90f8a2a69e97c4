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
import textwrap

from civiq.errors import CiviqError


def _setup_logging(verbose: bool) -> None:
    level = logging.DEBUG if verbose else getattr(logging, os.environ.get("CIVIQ_LOG_LEVEL", "INFO").upper(),
                                                  logging.INFO)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


GW_CONFIG = "gateway settings YAML (default: the built-in settings); env CIVIQ_GW_* override either"

#: each command's description and examples, shown by ``civiq <command> --help`` (a test checks every one has them)
COMMANDS: dict[str, tuple[str, str]] = {
    "config": ("Tools for center config files (the YAML a technician writes for one center).",
               "civiq config check /etc/civiq/center.yaml"),
    "config check": ("Validate center config files: every problem is listed with its file:line and field, in "
                     "words. Exit status 0 when every file is valid.",
                     "civiq config check /etc/civiq/center.yaml\n"
                     "civiq config check firmware-config/*.yaml"),
    "edge": ("The Raspberry Pi agent of one service center: its queue, its devices and its link to the gateway.",
             "civiq edge doctor /etc/civiq/center.yaml\n"
             "civiq edge run firmware-config/simulated.yaml --simulate"),
    "edge run": ("Run the agent of a center: the queue, the devices, the local API and the MQTT link, until "
                 "SIGTERM or Ctrl-C. With --simulate every device is emulated (no Pi needed).",
                 "civiq edge run /etc/civiq/center.yaml\n"
                 "civiq edge run firmware-config/simulated.yaml --simulate --api-port 8091"),
    "edge doctor": ("Check a center in plain words: the config, the pins, each device answering, the printer's "
                    "paper, the broker, the clock and the disk. Each line is ✔ (fine), ! (look at it) or ✘ "
                    "(broken, with what to do); docs/technician.md explains every line.",
                    "sudo civiq edge doctor /etc/civiq/center.yaml\n"
                    "civiq edge doctor firmware-config/simulated.yaml --simulate"),
    "edge test-print": ("Print a test ticket (center, printer, version, time) on each printer, or one.",
                        "sudo civiq edge test-print /etc/civiq/center.yaml\n"
                        "sudo civiq edge test-print /etc/civiq/center.yaml --printer p1"),
    "edge display-test": ("Show 8888, then each display's own id, on every counter display.",
                          "sudo civiq edge display-test /etc/civiq/center.yaml"),
    "edge say-test": ("Play the chime and a sample call on the hall speaker; prints what was said.",
                      "sudo civiq edge say-test /etc/civiq/center.yaml\n"
                      "civiq edge say-test /etc/civiq/center.yaml --text \"Xin chào\" --out test.wav"),
    "edge voice-pack": ("The clip pack of the voice call: build it offline with espeak-ng, or check it.",
                        "sudo civiq edge voice-pack build --config /etc/civiq/center.yaml"),
    "edge voice-pack build": ("Generate the default clip pack (numbers, counters, phrases) with espeak-ng, "
                              "offline.",
                              "sudo civiq edge voice-pack build --config /etc/civiq/center.yaml\n"
                              "civiq edge voice-pack build --out /tmp/pack --voice vi-vn-x-south"),
    "edge voice-pack check": ("Check a clip pack: every clip present, usable and in the right format.",
                              "sudo civiq edge voice-pack check --config /etc/civiq/center.yaml\n"
                              "civiq edge voice-pack check /tmp/pack"),
    "edge install": ("Put the center config and the systemd unit in place (checked first), and the voice pack "
                     "when espeak-ng is installed.",
                     "sudo civiq edge install /media/usb/center.yaml"),
    "gateway": ("The province gateway: ingest from every center, the dashboard, alerts, reports.",
                "civiq gateway run --config /etc/civiq/gateway.yaml"),
    "gateway run": ("Run the gateway until SIGTERM or Ctrl-C.",
                    "civiq gateway run --config /etc/civiq/gateway.yaml\n"
                    "CIVIQ_GW_HTTP__PORT=8081 civiq gateway run"),
    "gateway install": ("Put the gateway settings and the systemd unit in place.",
                        "sudo civiq gateway install --settings gateway.yaml"),
    "gateway ticket-key": ("Print a center's ticket key: the edge signs the QR links of its tickets with it "
                           "(put it in the center's center.ticket_key_file).",
                           "civiq gateway ticket-key hcm-q1 > hcm-q1.ticket.key"),
    "gateway user": ("Add (or update) a dashboard user.",
                     "civiq gateway user admin --role province_admin --password-stdin\n"
                     "civiq gateway user lan --role clerk --center hcm-q1 --clerk c01"),
    "gateway report": ("Write a center's report (day, week or month) as .xlsx, .csv or JSON, from the "
                       "gateway's store (docs/reports.md).",
                       "civiq gateway report --center hcm-q1 --period week --date 2026-12-05 --out bao-cao.xlsx\n"
                       "civiq gateway report --center hcm-q1 --format json --out -"),
    "gateway ratings-drop": ("Write the ratings CSV of a day (ratings-<center>-<day>.csv) for another system "
                             "to pick up.",
                             "civiq gateway ratings-drop --date 2026-12-05 --out-dir /var/lib/civiq-gateway/drop"),
    "gateway acl": ("Write the Mosquitto ACL (and the passwords of new nodes) from a list of nodes.",
                    "civiq gateway acl nodes.txt --acl /etc/mosquitto/civiq.acl --passwd /etc/mosquitto/passwd"),
    "demo": ("Everything on this machine: a broker, the gateway and simulated centers with simulated people, "
             "the dashboard opened in a browser.",
             "civiq demo\n"
             "civiq demo --centers 5 --speed 120 --port 8090 --no-browser"),
}


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and examples as written; an option's default after its help, when it has one worth
    saying (not None, not a flag's False, not already said in the help)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        h = action.help or ""
        if (action.default in (None, False, argparse.SUPPRESS) or action.required or "default" in h
                or not action.option_strings or action.help == argparse.SUPPRESS):
            return h
        return f"{h} (default: %(default)s)"


def _describe(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> None:
    """Give every subcommand its description, examples and the formatter (walks the whole tree)."""
    for action in parser._actions:  # noqa: SLF001 - argparse keeps its subcommands there
        if not isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            continue
        helps = {a.dest: a.help for a in action._choices_actions}  # noqa: SLF001
        for name, sub in action.choices.items():
            key = " ".join((*path, name))
            desc, examples = COMMANDS.get(key, ("", ""))
            sub.formatter_class = HelpFormatter
            sub.description = sub.description or (textwrap.fill(desc, 78) if desc else helps.get(name))
            if examples:
                sub.epilog = "examples:\n" + "\n".join(f"  {line}" for line in examples.splitlines())
            _describe(sub, (*path, name))


def build_parser() -> argparse.ArgumentParser:
    from civiq import __version__

    examples = __doc__.split("\n\n")[1]  # the command list at the top of this module
    p = argparse.ArgumentParser(prog="civiq", description="civiq: queue hardware edge agents and gateway",
                                epilog="commands:\n" + examples + "\n\nEach command has its own --help.",
                                formatter_class=HelpFormatter)
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.add_argument("--version", action="version", version=f"civiq {__version__}")
    sub = p.add_subparsers(dest="area", required=True)

    cfg = sub.add_parser("config", help="center config tools").add_subparsers(dest="cmd", required=True)
    chk = cfg.add_parser("check", help="validate center config files")
    chk.add_argument("files", nargs="+", help="center config YAML files")

    edge = sub.add_parser("edge", help="the Raspberry Pi agent").add_subparsers(dest="cmd", required=True)
    run = edge.add_parser("run", help="run the agent")
    run.add_argument("config", help="the center config YAML")
    run.add_argument("--simulate", action="store_true", help="mock GPIO pins and emulated serial devices")
    run.add_argument("--api-port", type=int, default=None,
                     help="local HTTP port (QR page, simulator API); default: the config's http.port")
    run.add_argument("--speed", type=float, default=1.0, help="simulated clock speed (simulate only)")
    doc = edge.add_parser("doctor", help="diagnose an agent's config, devices, broker, clock and disk")
    doc.add_argument("config", help="the center config YAML")
    doc.add_argument("--simulate", action="store_true", help="check a running simulation's devices")
    tp = edge.add_parser("test-print", help="print a test ticket")
    tp.add_argument("config", help="the center config YAML")
    tp.add_argument("--printer", default=None, help="one printer's id (default: every printer)")
    tp.add_argument("--simulate", action="store_true", help="on an emulated printer (no hardware)")
    dt = edge.add_parser("display-test", help="show a test pattern on every display")
    dt.add_argument("config", help="the center config YAML")
    dt.add_argument("--simulate", action="store_true", help="on emulated displays (no hardware)")
    from civiq.edge.voice.cli import add_arguments as voice_arguments

    voice_arguments(edge)
    ins = edge.add_parser("install", help="install config and systemd unit")
    ins.add_argument("config", help="the center config YAML to install")
    ins.add_argument("--root", default="/", help="install under this root (for tests and images)")

    gw = sub.add_parser("gateway", help="the province gateway").add_subparsers(dest="cmd", required=True)
    gr = gw.add_parser("run", help="run the gateway")
    gr.add_argument("--config", default=None, help="gateway settings YAML (env CIVIQ_GW_* override it)")
    gi = gw.add_parser("install", help="install settings and systemd unit")
    gi.add_argument("--root", default="/", help="install under this root (for tests and images)")
    gi.add_argument("--settings", default=None, help="gateway settings YAML to install")
    gk = gw.add_parser("ticket-key", help="print a center's ticket key (for its edge's center.ticket_key_file)")
    gk.add_argument("center", help="the center's id")
    gk.add_argument("--config", default=None, help=GW_CONFIG)
    gu = gw.add_parser("user", help="add a dashboard user")
    gu.add_argument("name", help="the user's login name")
    gu.add_argument("--role", required=True,
                    choices=["province_admin", "center_manager", "technician", "viewer", "clerk"],
                    help="what the user may see and do (docs/manager.md)")
    gu.add_argument("--center", default=None, help="the center a center_manager (or clerk) may see")
    gu.add_argument("--clerk", default=None, help="role clerk: the clerk id the center's edge uses (e.g. c01)")
    gu.add_argument("--password", default=None, help="the password (better: --password-stdin, kept out of the shell history)")
    gu.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    gu.add_argument("--config", default=None, help=GW_CONFIG)
    gp = gw.add_parser("report", help="a center's report (day, week or month) as .xlsx or .csv, from the store")
    gp.add_argument("--center", required=True, help="the center's id")
    gp.add_argument("--period", choices=["day", "week", "month"], default="day", help="the report's period")
    gp.add_argument("--date", default=None, help="any local day in the period, e.g. 2026-12-05 (default: today)")
    gp.add_argument("--format", choices=["xlsx", "csv", "json"], default="xlsx", help="the file's format")
    gp.add_argument("--out", required=True, help="the file to write ('-' for standard output)")
    gp.add_argument("--config", default=None, help=GW_CONFIG)
    gd = gw.add_parser("ratings-drop", help="write the ratings CSV of a day (ratings-<center>-<day>.csv)")
    gd.add_argument("--date", default=None, help="the local day (default: yesterday)")
    gd.add_argument("--center", default=None, help="one center (default: every center with events)")
    gd.add_argument("--out-dir", default=None, help="default: the setting ratings_drop_dir")
    gd.add_argument("--config", default=None, help=GW_CONFIG)
    from civiq.acl import add_arguments as acl_arguments

    acl_arguments(gw.add_parser("acl", help="Mosquitto ACL (and node passwords) from a list of nodes"))

    demo = sub.add_parser("demo", help="everything on this machine: broker, gateway, simulated centers")
    demo.add_argument("--centers", type=int, default=3, help="how many simulated centers")
    demo.add_argument("--speed", type=float, default=60.0, help="simulated seconds per real second")
    demo.add_argument("--duration", type=float, default=None, help="stop after this many real seconds")
    demo.add_argument("--port", type=int, default=8080, help="dashboard port")
    demo.add_argument("--no-browser", action="store_true", help="do not open the dashboard in a browser")
    _describe(p)
    return p


# the import name of each extra's distributions -> the extra that brings it (pyproject.toml)
EXTRA_OF = {"gpiozero": "edge", "serial": "edge", "PIL": "edge", "qrcode": "edge",
            "influxdb_client": "gateway", "openpyxl": "gateway", "msgspec": "gateway", "amqtt": "demo"}


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


def config_check(files: list[str]) -> int:
    """``civiq config check FILE...``: a center config is checked by the edge's rules, a gateway settings
    file (no ``center:``, gateway keys such as ``gateway_id``) by the gateway's; each says which it was."""
    from civiq.yamlconf import ConfigError, load_yaml

    status = 0
    for f in files:
        try:
            data = load_yaml(f).data
        except ConfigError:
            data = None  # the edge's check reports it, located
        if isinstance(data, dict) and "center" not in data:  # a center config never loads gateway code
            from civiq.gateway.settings import check_file, looks_like_gateway_settings

            if looks_like_gateway_settings(data):
                status = max(status, check_file(f))
                continue
        from civiq.edge.config import check_main

        status = max(status, check_main([f]))
    return status


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
    except CiviqError as e:  # an error raised on purpose says what is wrong in words: no traceback
        if args.verbose:
            raise
        print(f"civiq {args.area}: {e}", file=sys.stderr)
        return 2


def _dispatch(args: argparse.Namespace) -> int:
    if args.area == "config":
        return config_check(args.files)
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
