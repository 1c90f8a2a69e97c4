"""``civiq gateway run`` / ``install`` / ``user`` / ``report`` / ``ratings-drop``."""

from __future__ import annotations

import argparse
import sys


def load_settings(path: str | None):  # noqa: ANN201
    from civiq.gateway.settings import GatewaySettings, SettingsError

    try:
        return GatewaySettings.from_file(path) if path else GatewaySettings.load()
    except SettingsError as e:
        print(f"The gateway settings are not valid:\n{e}", file=sys.stderr)
        return None


def main(args: argparse.Namespace) -> int:
    if args.cmd == "install":
        from civiq.install import install_gateway

        return install_gateway(root=args.root, settings=args.settings)
    if args.cmd == "ticket-key":
        settings = load_settings(args.config)
        if settings is None:
            return 2
        from civiq.gateway.service import load_secret
        from civiq.tickettoken import center_key

        print(center_key(load_secret(settings.data_dir / "secret.key"), args.center).hex())
        return 0
    if args.cmd == "user":
        settings = load_settings(args.config)
        if settings is None:
            return 2
        from civiq.gateway.web.auth import AuthError, UserStore

        settings.data_dir.mkdir(parents=True, exist_ok=True)
        users = UserStore(settings.data_dir / "users.db")
        password = sys.stdin.readline().rstrip("\n") if args.password_stdin else args.password
        try:
            users.add_user(args.name, password, args.role, center=args.center, clerk=args.clerk)
        except AuthError as e:
            print(f"user not added: {e}", file=sys.stderr)
            return 1
        print(f"user {args.name} ({args.role}{', center ' + args.center if args.center else ''}"
              f"{', clerk ' + args.clerk if args.clerk else ''}) added")
        return 0
    if args.cmd in ("report", "ratings-drop"):
        settings = load_settings(args.config)
        if settings is None:
            return 2
        from civiq.gateway.reports.cli import ratings_drop_main, report_main

        return report_main(settings, args) if args.cmd == "report" else ratings_drop_main(settings, args)
    settings = load_settings(args.config)
    if settings is None:
        return 2
    from civiq.gateway.service import Gateway

    gw = Gateway(settings)
    print(f"civiq gateway {settings.gateway_id}: broker {settings.mqtt.host}:{settings.mqtt.port}, "
          f"dashboard http://{settings.http.host}:{settings.http.port}/", flush=True)
    gw.run_forever()
    return 0
