"""/add (one-liner and guided form), /positions, /close."""

from __future__ import annotations

import warnings
from datetime import date

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import (
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    ConversationHandler,
    MessageHandler,
    filters,
)
from telegram.warnings import PTBUserWarning

from bot import parsing
from bot.parsing import CondorSpec, ParseError
from bot.render import render
from bot.services import UserError
from bot.store.errors import Conflict, NotFound, ValidationError
from bot.telegram.handlers._common import (
    answer_user_error,
    command_args,
    reply,
    reply_error,
    services,
    user_errors,
    user_ref,
)
from core.models import ROOTS

ROOT, EXPIRY, STRIKES, QTY, CREDIT, CONFIRM = range(6)
DRAFT = "add_draft"
QTY_CHOICES = (1, 2, 3, 5, 10)
_USER_ERRORS = (UserError, ParseError, ValidationError, NotFound, Conflict)


def _keyboard(rows: list[list[tuple[str, str]]]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(t, callback_data=d) for t, d in row]
                                 for row in rows])


def _cancel_row() -> list[tuple[str, str]]:
    return [("Cancel", "add:cancel")]


# --- one-liner and entry ----------------------------------------------------------------------


async def add_entry(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    try:
        args = command_args(update)
        preview = await services(context).add_position(user_ref(update), args) if args else None
    except _USER_ERRORS as exc:
        await answer_user_error(update, exc, parsing.USAGE["add"])
        return ConversationHandler.END
    if preview is not None:  # the one-liner: saved
        await reply(update, render("add_done", preview=preview))
        return ConversationHandler.END
    context.user_data[DRAFT] = {}
    await reply(update, render("add_step", step="root"),
                _keyboard([[(r, f"add:root:{r}") for r in ROOTS], _cancel_row()]))
    return ROOT


async def _callback(update: Update) -> str:
    query = update.callback_query
    await query.answer()
    return query.data or ""


async def _ask_expiry(update: Update, context: ContextTypes.DEFAULT_TYPE, root: str) -> int:
    choices = services(context).expiries(root)
    rows = [[(d.strftime("%a %b %d %Y"), f"add:exp:{d.isoformat()}") for d in choices[i:i + 2]]
            for i in range(0, len(choices), 2)]
    await reply(update, render("add_step", step="expiry", root=root), _keyboard(
        [*rows, _cancel_row()]))
    return EXPIRY


async def on_root(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    if update.callback_query:
        root = (await _callback(update)).removeprefix("add:root:")
    else:
        root = (update.effective_message.text or "").strip()
    try:
        root = parsing.parse_root(root, parsing.USAGE["add"])
    except ParseError as exc:
        await reply_error(update, exc.message, "tap SPX, SPXW or XSP")
        return ROOT
    context.user_data.setdefault(DRAFT, {})["root"] = root
    return await _ask_expiry(update, context, root)


async def on_expiry(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    draft = context.user_data.get(DRAFT, {})
    if "root" not in draft:
        return await _expired(update, context)
    if update.callback_query:
        raw = (await _callback(update)).removeprefix("add:exp:")
    else:
        raw = (update.effective_message.text or "").strip()
    try:
        expiry = parsing.parse_date(raw, "tap a date or type YYYY-MM-DD")
        today = services(context).today()
        if expiry < today:
            raise ParseError(f"expiry {expiry} is in the past", "tap a date or type YYYY-MM-DD")
        problem = parsing.listed_expiry_problem(draft["root"], expiry)
        if problem:
            raise ParseError(problem, "tap a date or type YYYY-MM-DD")
    except ParseError as exc:
        await reply_error(update, exc.message, exc.usage)
        return EXPIRY
    draft["expiry"] = expiry.isoformat()
    await reply(update, render("add_step", step="strikes", root=draft["root"], expiry=expiry),
                _keyboard([_cancel_row()]))
    return STRIKES


async def on_strikes(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    draft = context.user_data.get(DRAFT, {})
    usage = "long put/short put/short call/long call, e.g. 6650/6700/8250/8300"
    try:
        strikes = parsing.parse_strikes((update.effective_message.text or "").strip(), usage)
    except ParseError as exc:
        await reply_error(update, exc.message, usage)
        return STRIKES
    k1, k2, k3, k4 = strikes
    if not k1 < k2 < k3 < k4:
        await reply_error(update, "strikes must rise: long put < short put < short call < "
                          "long call", usage)
        return STRIKES
    draft["strikes"] = list(strikes)
    await reply(update, render("add_step", step="qty"),
                _keyboard([[(str(q), f"add:qty:{q}") for q in QTY_CHOICES], _cancel_row()]))
    return QTY


async def on_qty(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    draft = context.user_data.get(DRAFT, {})
    if "strikes" not in draft:
        return await _expired(update, context)
    if update.callback_query:
        raw = (await _callback(update)).removeprefix("add:qty:")
    else:
        raw = (update.effective_message.text or "").strip()
    try:
        qty = parsing.parse_qty(raw, f"a whole number from {parsing.QTY_MIN} to "
                                f"{parsing.QTY_MAX}")
    except ParseError as exc:
        await reply_error(update, exc.message, exc.usage)
        return QTY
    draft["qty"] = qty
    await reply(update, render("add_step", step="credit"), _keyboard([_cancel_row()]))
    return CREDIT


async def on_credit(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    draft = context.user_data.get(DRAFT, {})
    if "qty" not in draft:
        return await _expired(update, context)
    raw = (update.effective_message.text or "").strip()
    usage = "the credit received per condor in points, e.g. 4.35"
    try:
        credit = parsing.parse_price(raw if raw.startswith("@") else "@" + raw, "credit", usage)
    except ParseError as exc:
        await reply_error(update, exc.message, usage)
        return CREDIT
    spec = CondorSpec(draft["root"], date.fromisoformat(draft["expiry"]),
                      tuple(draft["strikes"]), draft["qty"], credit)
    try:
        preview = await services(context).preview_position(user_ref(update), spec)
    except _USER_ERRORS as exc:
        await answer_user_error(update, exc, "type another credit, or /cancel")
        return CREDIT
    draft["credit"] = credit
    await reply(update, render("add_preview", preview=preview),
                _keyboard([[("✅ Confirm", "add:ok"), ("Cancel", "add:cancel")]]))
    return CONFIRM


async def on_confirm(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    data = await _callback(update)
    draft = context.user_data.pop(DRAFT, {})
    if data != "add:ok" or "credit" not in draft:
        return await _expired(update, context)
    spec = CondorSpec(draft["root"], date.fromisoformat(draft["expiry"]),
                      tuple(draft["strikes"]), draft["qty"], draft["credit"])
    try:
        preview = await services(context).add_position(user_ref(update), spec)
    except _USER_ERRORS as exc:
        await answer_user_error(update, exc, parsing.USAGE["add"])
        return ConversationHandler.END
    await reply(update, render("add_done", preview=preview))
    return ConversationHandler.END


async def cancel(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    if update.callback_query:
        await update.callback_query.answer()
    had = context.user_data.pop(DRAFT, None) is not None
    await reply(update, "Cancelled: nothing was saved." if had else "Nothing to cancel.")
    return ConversationHandler.END


async def _expired(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    context.user_data.pop(DRAFT, None)
    await reply_error(update, "this form has expired or was already used", "start again: /add")
    return ConversationHandler.END


async def stale_form(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A button of an /add form that no longer runs (finished, cancelled, bot restarted)."""
    await update.callback_query.answer()
    await reply_error(update, "this form has expired or was already used", "start again: /add")


def add_conversation() -> ConversationHandler:
    text = filters.TEXT & ~filters.COMMAND
    with warnings.catch_warnings():
        # per_message=False on purpose: the form spans several messages of one user and chat.
        warnings.filterwarnings("ignore", category=PTBUserWarning)
        return ConversationHandler(
            entry_points=[CommandHandler("add", add_entry)],
            states={
                ROOT: [CallbackQueryHandler(on_root, pattern=r"^add:root:"),
                       MessageHandler(text, on_root)],
                EXPIRY: [CallbackQueryHandler(on_expiry, pattern=r"^add:exp:"),
                         MessageHandler(text, on_expiry)],
                STRIKES: [MessageHandler(text, on_strikes)],
                QTY: [CallbackQueryHandler(on_qty, pattern=r"^add:qty:"),
                      MessageHandler(text, on_qty)],
                CREDIT: [MessageHandler(text, on_credit)],
                CONFIRM: [CallbackQueryHandler(on_confirm, pattern=r"^add:ok$")],
            },
            fallbacks=[CommandHandler("cancel", cancel),
                       CallbackQueryHandler(cancel, pattern=r"^add:cancel$")],
            allow_reentry=True,
            name="add",
        )


# --- /positions, /close -----------------------------------------------------------------------


@user_errors()
async def list_positions(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    svc = services(context)
    positions = await svc.list_positions(user_ref(update))
    await reply(update, render("positions", positions=positions, asof=svc.now()))


@user_errors(parsing.USAGE["close"])
async def close(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    cmd = parsing.parse_close(command_args(update))
    closed = await services(context).close(user_ref(update), cmd.position_id, cmd.debit)
    await reply(update, render("close", closed=closed))


def handlers() -> list[BaseHandler]:
    return [
        add_conversation(),
        CallbackQueryHandler(stale_form, pattern=r"^add:"),
        CommandHandler("cancel", cancel),  # outside a form: "Nothing to cancel."
        CommandHandler("positions", list_positions),
        CommandHandler("close", close),
    ]
