"""``gridmap user``, ``gridmap key`` and ``gridmap audit``: who may sign in, which devices may report, and
what everyone did. Every change made here is written to the audit log as the CLI's user (GRIDMAP_USER)."""
import os
import secrets
import sys

import click

from gis import access, api_keys, users
from gis.access import Scope
from gis.cli import pass_ctx, reports_errors
from gis.errors import BadInput

_SCOPE_HELP = "'city' (the default) or the code of a district, street, community or unit grid"


def _scope(cur, scope_text, department):
    scope = Scope.parse(scope_text, department)
    access.check_scope_exists(cur, scope)
    return scope


def _password(from_stdin, confirm=True):
    """From stdin (one line; for scripts) or asked twice without echo."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return click.prompt("password", hide_input=True, confirmation_prompt=confirm)


@click.group()
def user():
    """People who sign in to the web app."""


@user.command("add")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(access.USER_ROLES))
@click.option("--scope", "scope_text", default=access.CITY, show_default=True, help=_SCOPE_HELP)
@click.option("--department", help="a handler's department code, e.g. CGJ")
@click.option("--display-name", default="", help="the name pages show, e.g. 张伟")
@click.option("--password-stdin", is_flag=True, help="read the password from the first line of stdin")
@pass_ctx
@reports_errors
def user_add(ctx, name, role, scope_text, department, display_name, password_stdin):
    """Add a user with a role and a scope."""
    password = _password(password_stdin)
    with ctx.db.cursor() as cur:
        scope = _scope(cur, scope_text, department)
        users.add(cur, name, role=role, scope=scope, password=password, created_by=ctx.settings.actor,
                  display_name=display_name)
        users.audit(cur, ctx.settings.actor, "cli", "user add", user=name, role=role, scope=str(scope))
    click.echo(f"added {role} {name!r}, scope {scope}")


@user.command("init-admin")
@click.option("--name", default="admin", show_default=True)
@pass_ctx
@reports_errors
def user_init_admin(ctx, name):
    """Create the first city-wide admin unless one exists (`make setup` runs this).

    The password is GRIDMAP_ADMIN_PASSWORD if set, else a random one printed once."""
    password = os.environ.get("GRIDMAP_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
    with ctx.db.cursor() as cur:
        if users.any_admin(cur):
            click.echo("a city-wide admin exists already")
            return
        users.add(cur, name, role="admin", scope=Scope(), password=password, created_by=ctx.settings.actor)
        users.audit(cur, ctx.settings.actor, "cli", "user add", user=name, role="admin", scope=access.CITY)
    click.echo(f"created the first admin {name!r}")
    if not os.environ.get("GRIDMAP_ADMIN_PASSWORD"):
        click.echo(f"its password, shown this once: {password}")


@user.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="read the password from the first line of stdin")
@pass_ctx
@reports_errors
def user_passwd(ctx, name, password_stdin):
    """Set a user's password (its sessions end)."""
    password = _password(password_stdin)
    with ctx.db.cursor() as cur:
        users.set_password(cur, name, password)
        users.audit(cur, ctx.settings.actor, "cli", "user passwd", user=name)
    click.echo(f"password of {name!r} set; its sessions have ended")


@user.command("disable")
@click.argument("name")
@pass_ctx
@reports_errors
def user_disable(ctx, name):
    """Disable a user: its sessions end at once."""
    with ctx.db.cursor() as cur:
        users.disable(cur, name)
        users.audit(cur, ctx.settings.actor, "cli", "user disable", user=name)
    click.echo(f"disabled {name!r}")


@user.command("list")
@pass_ctx
@reports_errors
def user_list(ctx):
    with ctx.db.cursor() as cur:
        for r in users.list_users(cur):
            state = f"disabled {r['disabled_at']:%Y-%m-%d}" if r["disabled_at"] else "enabled"
            scope = r["scope"] + (f" ({r['department']})" if r["department"] else "")
            click.echo(f"{r['name']:<20} {r['role']:<12} {scope:<22} {state:<20} {r['display_name']}")


@click.group()
def key():
    """API keys for field devices, Open311 clients and other systems."""


@key.command("create")
@click.argument("name")
@click.option("--role", default="device", show_default=True, type=click.Choice(tuple(access.ROLES)))
@click.option("--scope", "scope_text", default=access.CITY, show_default=True, help=_SCOPE_HELP)
@click.option("--department", help="a handler key's department code")
@click.option("--per-minute", default=api_keys.DEFAULT_PER_MINUTE, show_default=True, type=int,
              help="rate limit in requests per minute; 0 for none")
@pass_ctx
@reports_errors
def key_create(ctx, name, role, scope_text, department, per_minute):
    """Create a key; it is printed once and only its hash is kept."""
    if per_minute < 0:
        raise BadInput("--per-minute is 0 (no limit) or more")
    with ctx.db.cursor() as cur:
        scope = _scope(cur, scope_text, department)
        secret = api_keys.create(cur, name, created_by=ctx.settings.actor, role=role, scope=scope,
                                 per_minute=per_minute or None)
        users.audit(cur, ctx.settings.actor, "cli", "key create", key=name, role=role, scope=str(scope),
                    per_minute=per_minute or None)
    click.echo(secret)
    click.echo(f"created {role} API key {name!r}, scope {scope}; store it now, it cannot be shown again", err=True)


@key.command("revoke")
@click.argument("name")
@pass_ctx
@reports_errors
def key_revoke(ctx, name):
    """Revoke a key at once."""
    with ctx.db.cursor() as cur:
        api_keys.revoke(cur, name)
        users.audit(cur, ctx.settings.actor, "cli", "key revoke", key=name)
    click.echo(f"revoked API key {name!r}")


@key.command("list")
@pass_ctx
@reports_errors
def key_list(ctx):
    with ctx.db.cursor() as cur:
        for r in api_keys.list_keys(cur):
            state = f"revoked {r['revoked_at']:%Y-%m-%d %H:%M}" if r["revoked_at"] else "in use"
            scope = r["scope"] + (f" ({r['department']})" if r["department"] else "")
            rate = f"{r['per_minute']}/min" if r["per_minute"] else "no limit"
            click.echo(f"{r['name']:<24} {r['role']:<11} {scope:<20} {rate:<10} {state:<24} "
                       f"created {r['created_at']:%Y-%m-%d} by {r['created_by']}")


@click.command()
@click.option("--actor", help="only this user's or key's lines")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 100000))
@pass_ctx
@reports_errors
def audit(ctx, actor, limit):
    """The newest lines of the audit log, newest first."""
    with ctx.db.cursor() as cur:
        for r in users.audit_lines(cur, actor=actor, limit=limit):
            status = "" if r["status"] is None else str(r["status"])
            click.echo(f"{r['at']:%Y-%m-%d %H:%M:%S} {r['actor'] or '-':<20} {r['via']:<9} {r['action']:<40} "
                       f"{status:<4} {r['address'] or ''}")
