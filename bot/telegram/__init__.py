"""The Telegram adapter: the python-telegram-bot `Application` builder (`app`), the handlers
(`handlers/`, one module per command family), the terminal console (`console`) and the
in-process Bot API server it runs on (`botapi_server`).

Only this package and `bot.cli` (which starts it) import it; the services, parsing, rendering
and the scheduler below it never do (tests/test_architecture.py checks).
"""
