"""Each function's declared tables (`functions.<name>.tables` in infra/resources.json, which
its IAM role is rendered from) are the tables its code can reach, read from the code itself.

The derivation, at module granularity: a function's handler in app.py imports its entry
modules (the API: app.py's own imports); everything those import, transitively (an import
inside a function too), is what it can run. Where that reaches core/reactions, the
reactions app.py subscribes (pipeline/wiring.py) can run as well. The repositories of
store/ are the only users of DynamoDB, each table a module-level `Table("<name>")`: a table
is written where a module that can run calls a write on it (put, update, delete,
batch_write, the raw put_item/update_item/delete_item/batch_write_item, or a put_op,
update_op or delete_op of a transaction), read where it is only referred to. A table a
module names through `settings.table("<name>")` is read. So a missing permission (which
only real AWS would show) fails here, and so does a table a function can no longer reach.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

from infra.provision import declaration

ROOT = Path(__file__).resolve().parents[2]
REACTIONS = "chalicelib.core.reactions"
WIRING = "chalicelib.pipeline.wiring"
WRITES = {"put", "update", "delete", "batch_write"}
RAW_WRITES = {"put_item", "update_item", "delete_item", "batch_write_item"}
WRITE_OPS = {"put_op", "update_op", "delete_op"}


def source_of(module: str) -> Path | None:
    path = ROOT.joinpath(*module.split("."))
    if (path / "__init__.py").exists():
        return path / "__init__.py"
    if path.with_suffix(".py").exists():
        return path.with_suffix(".py")
    return None


@cache
def tree_of(module: str) -> ast.Module:
    return ast.parse(source_of(module).read_text())


def imported_names(module: str) -> dict[str, str]:
    """Every name the module imports anywhere (a module, or a module's attribute), to the
    module it comes from, for chalicelib only."""
    package = module if source_of(module).name == "__init__.py" else module.rpartition(".")[0]
    found: dict[str, str] = {}
    for node in ast.walk(tree_of(module)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found[alias.asname or alias.name] = submodule if source_of(submodule) else base
    return {name: m for name, m in found.items() if m.startswith("chalicelib")}


def imports_of(module: str) -> set[str]:
    """The chalicelib modules (and their packages, whose __init__ runs first) it imports."""
    found = set()
    for target in imported_names(module).values():
        parts = target.split(".")
        found |= {".".join(parts[:i]) for i in range(2, len(parts) + 1)}
    return {m for m in found if source_of(m)}


def closure(entries: set[str]) -> set[str]:
    seen: set[str] = set()
    todo = list(entries)
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo += imports_of(module)
    if REACTIONS in seen and WIRING not in seen:
        return closure(seen | {WIRING})
    return seen


@cache
def store_tables(module: str) -> dict[str, str]:
    """The tables a store module declares or imports: variable name -> table name."""
    tables = {}
    for node in tree_of(module).body:
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Call)
            and getattr(node.value.func, "id", None) == "Table"
        ):
            tables[node.targets[0].id] = node.value.args[0].value
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("chalicelib.store."):
            for alias in node.names:
                table = store_tables(node.module).get(alias.name)
                if table:
                    tables[alias.asname or alias.name] = table
    return tables


def _table_written(call: ast.Call, tables: dict[str, str]) -> str | None:
    func = call.func
    if isinstance(func, ast.Attribute):
        owner = func.value
        if func.attr in WRITES and isinstance(owner, ast.Name) and owner.id in tables:
            return tables[owner.id]
        if (
            func.attr in RAW_WRITES
            and isinstance(owner, ast.Attribute)
            and owner.attr == "ddb"
            and isinstance(owner.value, ast.Name)
            and owner.value.id in tables
        ):
            return tables[owner.value.id]
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if name in WRITE_OPS and call.args and isinstance(call.args[0], ast.Name):
        return tables.get(call.args[0].id)
    return None


@cache
def table_use(module: str) -> dict[str, str]:
    """table name -> "write" or "read", for what one module does."""
    use: dict[str, str] = {}
    tables = store_tables(module) if module.startswith("chalicelib.store.") else {}
    for node in ast.walk(tree_of(module)):
        if isinstance(node, ast.Name) and node.id in tables:
            use.setdefault(tables[node.id], "read")
        if isinstance(node, ast.Call):
            written = _table_written(node, tables)
            if written:
                use[written] = "write"
            func = node.func
            if (
                isinstance(func, ast.Attribute)
                and func.attr == "table"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                use.setdefault(node.args[0].value, "read")
    return use


def entry_modules() -> dict[str, set[str]]:
    """Each function of app.py (by chalice's resource name) -> the modules it starts from."""
    app = ast.parse((ROOT / "app.py").read_text())
    top = {
        f"{node.module}.{alias.name}" if source_of(f"{node.module}.{alias.name}") else node.module
        for node in app.body
        if isinstance(node, ast.ImportFrom) and node.module.startswith("chalicelib")
        for alias in node.names
    }
    entries = {"APIHandler": top}
    for node in app.body:
        if isinstance(node, ast.FunctionDef) and node.decorator_list:
            name = "".join(part.capitalize() for part in node.name.split("_"))
            entries[name] = {
                f"{inner.module}.{alias.name}"
                for inner in ast.walk(node)
                if isinstance(inner, ast.ImportFrom)
                for alias in inner.names
            }
    return entries


def reachable_tables(entries: set[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for module in closure(entries):
        for table, level in table_use(module).items():
            if found.get(table) != "write":
                found[table] = level
    return found


def test_the_analysis_sees_the_writes_and_reads_of_the_store():
    # A transaction's update_op on another module's table is a write of it; a bare
    # reference to a table is a read of it.
    assert table_use("chalicelib.store.keys") == {"api_keys": "write", "workspaces": "write"}
    assert table_use("chalicelib.store.rate_limits") == {"rate_limits": "write"}
    assert table_use("chalicelib.api.health") == {"projects": "read"}
    # The pipeline's reactions run wherever a deployment's status changes.
    assert WIRING in closure({"chalicelib.pipeline.sweeper"})


def test_each_function_declares_exactly_the_tables_its_code_can_reach():
    functions = declaration()["functions"]
    entries = entry_modules()
    assert set(entries) == set(functions)
    for function, modules in entries.items():
        declared = functions[function]["tables"]
        reachable = reachable_tables(modules)
        assert set(declared) == set(reachable), (function, sorted(set(declared) ^ set(reachable)))
        for table, level in reachable.items():
            assert declared[table] == level, (function, table)
    # Workers get fewer than the API: the webhook workers reach only their three tables.
    assert set(functions["OnWebhookDelivery"]["tables"]) == {
        "events",
        "webhooks",
        "webhook_deliveries",
    }
    assert len(functions["APIHandler"]["tables"]) == len(declaration()["tables"])
