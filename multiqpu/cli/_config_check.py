"""``multiqpu config check``: validate the config file and say which credentials resolve,
and from where, without building a device, touching the network or printing a value."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TYPE_CHECKING, Any

from multiqpu.cli import _format as fmt

if TYPE_CHECKING:
    from multiqpu.config import Config, DeviceConfig
    from multiqpu.providers import Provider

__all__ = ["add_config_command", "check_config", "credential_options", "run_config_check"]

#: option names that carry an identity even when not secret (besides the provider's
#: ``secret_options`` and ``env_options``)
_IDENTITY = ("account", "aws_profile", "profile")


def add_config_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
) -> None:
    """Register ``config check`` on the ``multiqpu`` parser's subcommands."""
    config = commands.add_parser(
        "config",
        parents=[common],
        help="check the config file and where each credential comes from",
        description="Commands about the fleet config file (see docs/configuration.md).",
    )
    sub = config.add_subparsers(dest="config_command", metavar="COMMAND", required=True)
    check = sub.add_parser(
        "check",
        parents=[common],
        help="validate the config file; say which credentials resolve and from where",
        description=(
            "Read and validate the config file in effect (--config, $MULTIQPU_CONFIG or your "
            "user config file), then resolve every declared device's options with the one "
            "precedence rule (argument > environment > file > default) and report, per "
            "device, which credential options are set and where each comes from: never their "
            "values. Builds no device and needs no network. Exits 2 naming the file, the key "
            "and what was expected when the file is broken."
        ),
    )
    check.add_argument("--config", metavar="PATH", help="config file to check")
    check.add_argument("--json", action="store_true", help="print a JSON object")
    check.set_defaults(handler=run_config_check)


def credential_options(provider: Provider) -> list[str]:
    """The options of ``provider`` that identify or authenticate a user."""
    names = [*provider.secret_options, *provider.env_options, *_IDENTITY]
    return list(dict.fromkeys(names))


def _where_found(path: str | None) -> str:
    if path is not None:
        return "--config"
    if os.environ.get("MULTIQPU_CONFIG", "").strip():
        return "$MULTIQPU_CONFIG"
    return "user config file"


def _device_row(dc: DeviceConfig) -> dict[str, Any]:
    from multiqpu import _config_parse as _p
    from multiqpu.config import resolve_options
    from multiqpu.providers import get_provider

    provider = get_provider(dc.provider)
    resolved = resolve_options(
        provider, dc.options, None, None, source=dc.source, label=dc.label, inherited=dc.inherited
    )
    wanted = credential_options(provider)
    extra = [k for k in resolved.options if _p.is_secret_key(k, provider) and k not in wanted]
    creds = []
    for key in [*wanted, *extra]:
        if key in resolved.options:
            creds.append(
                {
                    "option": key,
                    "set": True,
                    "secret": _p.is_secret_key(key, provider),
                    "source": resolved.sources[key],
                }
            )
        elif key in provider.env_options or key in provider.secret_options:
            creds.append({"option": key, "set": False, "secret": False, "source": None})
    return {
        "label": dc.label,
        "spec": dc.spec,
        "provider": dc.provider,
        "credentials": creds,
        "limits": None if dc.limits is None else str(dc.limits),
    }


def check_config(path: str | None) -> tuple[Config, dict[str, Any]]:
    """The parsed config and a JSON-ready report (raises the config's ``ConfigError``)."""
    from multiqpu.config import config_path, load_config, user_config_file

    found = config_path(path)
    config = load_config(path)
    report: dict[str, Any] = {
        "ok": True,
        "file": None if found is None else str(found),
        "found_by": None if found is None else _where_found(path),
        "user_config_file": str(user_config_file()),
        "include_default": config.fleet.include_default,
        "queue_time_scale": config.fleet.queue_time_scale,
        "devices": [_device_row(dc) for dc in config.devices],
    }
    return config, report


def run_config_check(args: argparse.Namespace) -> int:
    _config, report = check_config(args.config)
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    from rich.markup import escape

    out = fmt.console()
    if report["file"] is None:
        out.print(
            f"no config file (none given, $MULTIQPU_CONFIG unset, no {report['user_config_file']}):"
            " multiqpu uses the embedded default fleet, which needs no credentials"
        )
        return 0
    out.print(escape(f"{report['file']} (found by {report['found_by']}): valid"))
    default = "included" if report["include_default"] else "not included"
    out.print(f"  embedded default devices: {default}; {len(report['devices'])} declared device(s)")
    for dev in report["devices"]:
        out.print(escape(f"  [devices.{dev['label']}] {dev['spec']}"))
        if not dev["credentials"]:
            out.print("    credentials: none needed by this provider")
        for c in dev["credentials"]:
            if c["set"]:
                kind = "secret, hidden" if c["secret"] else "value not shown"
                out.print(escape(f"    {c['option']}: set ({kind}) from {c['source']}"))
            else:
                out.print(f"    {c['option']}: not set (the provider's default applies)")
    return 0
