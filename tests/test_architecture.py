"""The house rules of docs/architecture.md, read from the source with `ast` (nothing imported).

- `core/` imports nothing from `bot/`;
- only `bot/telegram/` and `bot/cli/` import `bot.telegram`;
- no import cycles among `bot/` modules. Imports inside functions COUNT here: a deferred import
  hides a cycle from the interpreter, not from the reader (the two cycles this test was written
  against, provider <-> cboe/offline and store service <-> transfer, were both deferred).
  Alembic migration scripts are not modules of the package and are left out;
- each room of `bot/` imports only the rooms docs/architecture.md lets it (`MAY_IMPORT`);
- a `bot/` module over `MAX_LINES` lines says in its docstring why it stays whole, in a
  paragraph starting with `KEPT_WHOLE` (`core/` is held to its own charter, not checked here).

Each rule is also run on small hand-made trees, so a rule that can never fail is caught too.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 500
KEPT_WHOLE = "Kept whole:"

# The rooms of bot/ and what each may import from bot/ (docs/architecture.md); core is always
# allowed. bot.telegram may import every room but the CLI; bot.cli, the outermost, anything.
MAY_IMPORT: dict[str, set[str]] = {
    "bot.parsing": set(), "bot.render": set(), "bot.charts": set(),
    "bot.paths": set(), "bot.environment": set(), "bot.config": {"bot.paths", "bot.environment"},
    "bot.store": {"bot.paths"},
    "bot.marketdata": {"bot.environment"},
    "bot.backtest": {"bot.marketdata", "bot.charts"},
    "bot.data": {"bot.marketdata"},  # the script that made the offline sample
    "bot.services": {"bot.parsing", "bot.store", "bot.marketdata", "bot.charts"},
    "bot.engine_files": {"bot.marketdata"},
    "bot.scheduler": {"bot.services", "bot.render", "bot.charts", "bot.marketdata",
                      "bot.environment"},
}


# --- reading the tree ----------------------------------------------------------------------


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(root: Path, package: str) -> dict[str, Path]:
    """Every module of `package` under `root` (migration scripts excluded)."""
    return {module_name(root, p): p for p in sorted((root / package).rglob("*.py"))
            if "migrations" not in p.relative_to(root).parts}


def imported_names(path: Path) -> Iterator[str]:
    """Every absolute import anywhere in the file (module level and inside functions); for
    `from a.b import c` both `a.b` and `a.b.c` (c may be a submodule)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.level:
                raise AssertionError(f"{path}: relative import (the house uses absolute ones)")
            yield node.module
            yield from (f"{node.module}.{a.name}" for a in node.names)


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    mods = modules(root, package)
    return {m: {n for n in imported_names(p) if n in mods and n != m} for m, p in mods.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            v, children = work[-1]
            for w in children:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    component = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        component.append(w)
                        if w == v:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def imports_of(root: Path, package: str, target: str) -> dict[str, list[str]]:
    """Modules of `package` importing `target` or anything under it."""
    out = {}
    for m, p in modules(root, package).items():
        hits = sorted({n for n in imported_names(p) if n == target or n.startswith(target + ".")})
        if hits:
            out[m] = hits
    return out


def telegram_importers_outside(root: Path) -> dict[str, list[str]]:
    allowed = ("bot.telegram", "bot.cli")
    return {m: hits for m, hits in imports_of(root, "bot", "bot.telegram").items()
            if not any(m == a or m.startswith(a + ".") for a in allowed)}


def room(module: str) -> str:
    """`bot.x.y...` -> `bot.x` (a package or a top-level module of bot/); `core...` -> `core`."""
    parts = module.split(".")
    return "core" if parts[0] == "core" else ".".join(parts[:2])


def doors_not_allowed(root: Path) -> dict[str, list[str]]:
    """Imports from one room of bot/ into another that `MAY_IMPORT` does not allow."""
    mods = modules(root, "bot")
    rooms = {room(m) for m in mods if m != "bot"}
    allowed = {**MAY_IMPORT, "bot.telegram": rooms - {"bot.cli"}, "bot.cli": rooms}
    out: dict[str, list[str]] = {}
    for m, p in mods.items():
        src = room(m)
        for n in imported_names(p):
            dst = room(n)
            if n not in mods or dst in ("core", src) or n == "bot":
                continue
            if dst not in allowed.get(src, set()):
                out.setdefault(m, []).append(n)
    return {m: sorted(set(v)) for m, v in out.items()}


def long_modules_without_reason(root: Path, package: str) -> list[str]:
    out = []
    for m, p in modules(root, package).items():
        text = p.read_text(encoding="utf-8")
        n = len(text.splitlines())
        if n > MAX_LINES and KEPT_WHOLE not in (ast.get_docstring(ast.parse(text)) or ""):
            out.append(f"{m} ({n} lines)")
    return out


# --- the rules, on this repository ---------------------------------------------------------


def test_core_imports_nothing_from_bot():
    assert imports_of(ROOT, "core", "bot") == {}


def test_only_the_adapter_and_the_cli_import_bot_telegram():
    assert telegram_importers_outside(ROOT) == {}
    # and the rule is not vacuous: the CLI does start the adapter
    assert "bot.cli.start" in imports_of(ROOT, "bot", "bot.telegram")


def test_each_room_imports_only_what_it_may():
    rooms = {room(m) for m in modules(ROOT, "bot") if m != "bot"}
    assert rooms <= set(MAY_IMPORT) | {"bot.telegram", "bot.cli"}, "a new room: give it its doors"
    assert doors_not_allowed(ROOT) == {}


def test_no_import_cycles_in_bot():
    graph = import_graph(ROOT, "bot")
    assert len(graph) > 50 and sum(map(len, graph.values())) > 100  # the graph was read
    assert cycles(graph) == []


def test_long_modules_say_why_they_stay_whole():
    assert long_modules_without_reason(ROOT, "bot") == []
    assert long_modules_without_reason(ROOT, "core") == []


# --- the rules catch what they are for (hand-made trees) ---------------------------------


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def test_a_deferred_import_cycle_is_found(tmp_path):
    # the shape of main before issue 17: the factory in the interface module
    root = write(tmp_path, {
        "bot/__init__.py": "",
        "bot/md/__init__.py": "",
        "bot/md/provider.py": "def make():\n    from bot.md.cboe import Cboe\n    return Cboe()\n",
        "bot/md/cboe.py": "from bot.md.provider import make\n",
        "bot/md/errors.py": "",
        "bot/md/cache.py": "from bot.md import errors\n",
    })
    assert cycles(import_graph(root, "bot")) == [["bot.md.cboe", "bot.md.provider"]]


def test_the_cycle_finder_on_known_graphs():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert sorted(cycles({"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"c"}})) == [
        ["a", "b"], ["c", "d"]]


def test_the_telegram_and_core_rules_catch_a_stray_import(tmp_path):
    root = write(tmp_path, {
        "bot/__init__.py": "",
        "bot/telegram/__init__.py": "",
        "bot/telegram/app.py": "",
        "bot/cli/__init__.py": "from bot.telegram import app\n",
        "bot/services.py": "def f():\n    from bot.telegram.app import build\n",
        "core/__init__.py": "",
        "core/evaluate.py": "import bot.services\n",
    })
    assert telegram_importers_outside(root) == {"bot.services": ["bot.telegram.app",
                                                                 "bot.telegram.app.build"]}
    assert imports_of(root, "core", "bot") == {"core.evaluate": ["bot.services"]}


def test_a_door_the_plan_does_not_allow_is_found(tmp_path):
    root = write(tmp_path, {
        "bot/__init__.py": "",
        "bot/render.py": "",
        "bot/services.py": "from bot import render\n",  # services format text: not allowed
        "bot/store/__init__.py": "",
        "bot/store/service.py": "import bot.store\n",  # within its own room: fine
    })
    assert doors_not_allowed(root) == {"bot.services": ["bot.render"]}


def test_a_long_module_needs_its_reason(tmp_path):
    body = "x = 1\n" * MAX_LINES
    root = write(tmp_path, {
        "bot/__init__.py": "",
        "bot/long.py": '"""Long."""\n' + body,
        "bot/reasoned.py": f'"""Long.\n\n{KEPT_WHOLE} one state machine."""\n' + body,
        "bot/short.py": '"""Short."""\n' + "x = 1\n" * (MAX_LINES - 1),
    })
    assert long_modules_without_reason(root, "bot") == [f"bot.long ({MAX_LINES + 1} lines)"]


if __name__ == "__main__":  # `python tests/test_architecture.py [ROOT]`: the findings, printed
    root = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else ROOT
    print("cycles:", cycles(import_graph(root, "bot")))
    print("bot.telegram imported outside:", telegram_importers_outside(root))
    print("core -> bot:", imports_of(root, "core", "bot"))
    print("doors not allowed:", doors_not_allowed(root))
    print("long without reason:", long_modules_without_reason(root, "bot"))
