"""`alvh health`: one JSON line and an exit status for a container HEALTHCHECK or a monitor.

Checks the database (reachable, at the newest schema), the Bot API (`getMe` with the token;
skipped without one) and the age of the last scheduled round (reported; unhealthy only past
`--max-round-age`, default 4 days, so weekends and holidays pass). Exit 0 healthy, 1 not.
"""

from __future__ import annotations

import argparse
import json
import sys

MAX_ROUND_AGE_S = 4 * 24 * 3600  # Friday's report to Tuesday's (a long weekend) and a margin
GET_ME_TIMEOUT_S = 5.0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("health", help="check database, Bot API and scheduler; one JSON line")
    p.add_argument("--max-round-age", type=float, default=MAX_ROUND_AGE_S, metavar="SECONDS",
                   help="unhealthy when the last scheduled round is older (default 4 days)")
    p.set_defaults(func=run)


def bot_api_health(base_url: str, token: str | None) -> dict:
    if not token:
        return {"ok": True, "skipped": "no TELEGRAM_BOT_TOKEN"}
    import httpx

    try:
        reply = httpx.get(f"{base_url}{token}/getMe", timeout=GET_ME_TIMEOUT_S).json()
    except (httpx.HTTPError, ValueError) as err:
        return {"ok": False, "error": type(err).__name__}
    if not reply.get("ok"):
        return {"ok": False, "error": str(reply.get("description", "refused"))[:200]}
    return {"ok": True, "username": reply["result"].get("username")}


def run(args: argparse.Namespace) -> int:
    from bot.config import ConfigError, Settings
    from bot.store.health import database_health

    try:
        settings = Settings.load()
    except ConfigError as err:
        print(json.dumps({"ok": False, "settings": err.problems}))
        return 1
    database = database_health(settings.database_url)
    bot_api = bot_api_health(settings.telegram_api_base_url, settings.telegram_bot_token)
    age = database.get("last_round_age_s")
    scheduler = {"ok": age is None or age <= args.max_round_age, "last_round_age_s": age}
    database.pop("last_round_age_s", None)
    report = {"ok": database["ok"] and bot_api["ok"] and scheduler["ok"],
              "database": database, "bot_api": bot_api, "scheduler": scheduler}
    print(json.dumps(report, separators=(",", ":")))
    sys.stdout.flush()
    return 0 if report["ok"] else 1
