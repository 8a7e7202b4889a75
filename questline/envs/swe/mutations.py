"""Bug injection: mutation operators over a module's AST, applied as minimal text edits.

Each operator finds sites in a module and proposes one edit per site. An edit
replaces a span of the source text, so the bug looks like a human's typo and the
gold patch (the inverse edit) touches only the lines it broke.

  comparison         `<` <-> `<=`, `>` <-> `>=`, `==` <-> `!=`
  off_by_one         an integer constant n -> n + 1 (and n - 1 for n > 0)
  arithmetic         `+` <-> `-`, `*` -> `+`, `/` -> `*`, `//` -> `/`, `%` -> `//`
  boolean            `and` <-> `or`
  wrong_default      a default argument value changed
  swapped_args       the first two positional arguments of a call to a project function
  wrong_variable     a variable read replaced by another variable of the same function
  missing_edge_case  a guard clause (`if ...: return/raise`) removed
  negated_condition  `if c:` -> `if not c:`
  removed_branch     an `elif` or `else` branch removed
"""

from __future__ import annotations

import ast
from dataclasses import asdict, dataclass

OPERATORS = ("comparison", "off_by_one", "arithmetic", "boolean", "wrong_default", "swapped_args",
             "wrong_variable", "missing_edge_case", "negated_condition", "removed_branch")
_COMPARE = {ast.Lt: ("<", "<="), ast.LtE: ("<=", "<"), ast.Gt: (">", ">="), ast.GtE: (">=", ">"),
            ast.Eq: ("==", "!="), ast.NotEq: ("!=", "==")}
_ARITH = {ast.Add: ("+", "-"), ast.Sub: ("-", "+"), ast.Mult: ("*", "+"), ast.Div: ("/", "*"),
          ast.FloorDiv: ("//", "/"), ast.Mod: ("%", "//")}


@dataclass(frozen=True)
class Mutation:
    """Replace text[start:end] (== original) of `file` with `replacement`."""

    file: str
    start: int
    end: int
    original: str
    replacement: str
    operator: str
    line: int
    function: str

    def apply(self, text: str) -> str:
        if text[self.start:self.end] != self.original:
            raise ValueError(f"{self.file}:{self.line}: source does not match the mutation site")
        return text[:self.start] + self.replacement + text[self.end:]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Mutation:
        return cls(**d)

    @property
    def key(self) -> str:
        return f"{self.file}:{self.start}:{self.end}:{self.replacement}"


class _Source:
    """Character offsets of AST positions (col_offset counts UTF-8 bytes)."""

    def __init__(self, text: str):
        self.text = text
        self.lines = text.splitlines(keepends=True)
        self.starts = [0]
        for line in self.lines:
            self.starts.append(self.starts[-1] + len(line))

    def offset(self, lineno: int, col: int) -> int:
        line = self.lines[lineno - 1].encode()
        return self.starts[lineno - 1] + len(line[:col].decode(errors="replace"))

    def span(self, node: ast.AST) -> tuple[int, int]:
        return (self.offset(node.lineno, node.col_offset),
                self.offset(node.end_lineno, node.end_col_offset))

    def between(self, a: ast.AST, b: ast.AST) -> tuple[int, int]:
        return self.span(a)[1], self.span(b)[0]

    def line_span(self, first: int, last: int) -> tuple[int, int]:
        return self.starts[first - 1], self.starts[last]


def find_mutations(file: str, text: str, project_functions: frozenset[str] = frozenset(),
                   operators: tuple[str, ...] = OPERATORS) -> list[Mutation]:
    """Every mutation the operators propose for one module, in source order; each
    one still parses."""
    src, tree = _Source(text), ast.parse(text)
    out: list[Mutation] = []

    def add(op: str, start: int, end: int, replacement: str, line: int, func: str):
        if op not in operators or text[start:end] == replacement:
            return
        m = Mutation(file, start, end, text[start:end], replacement, op, line, func)
        try:
            ast.parse(m.apply(text))
        except SyntaxError:
            return
        out.append(m)

    def op_token(start: int, end: int, symbol: str) -> tuple[int, int] | None:
        """The span of `symbol` between two operands (parentheses allowed around it)."""
        gap = text[start:end]
        if gap.strip(" ()\n\t\\") != symbol:
            return None
        i = start + gap.index(symbol)
        return i, i + len(symbol)

    for func in [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]:
        name = func.name
        _defaults(func, src, add, name)
        local_names = _assigned_names(func)
        for node in _body_nodes(func):
            line = getattr(node, "lineno", func.lineno)
            if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _COMPARE:
                sym, new = _COMPARE[type(node.ops[0])]
                if span := op_token(*src.between(node.left, node.comparators[0]), sym):
                    add("comparison", *span, new, line, name)
            elif isinstance(node, ast.BinOp) and type(node.op) in _ARITH:
                sym, new = _ARITH[type(node.op)]
                if span := op_token(*src.between(node.left, node.right), sym):
                    add("arithmetic", *span, new, line, name)
            elif isinstance(node, ast.BoolOp):
                sym, new = ("and", "or") if isinstance(node.op, ast.And) else ("or", "and")
                if span := op_token(*src.between(node.values[0], node.values[1]), sym):
                    add("boolean", *span, new, line, name)
            elif isinstance(node, ast.Constant) and type(node.value) is int:
                start, end = src.span(node)
                add("off_by_one", start, end, str(node.value + 1), line, name)
                if node.value > 0:
                    add("off_by_one", start, end, str(node.value - 1), line, name)
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                    and node.func.id in project_functions and len(node.args) >= 2 \
                    and not any(isinstance(a, ast.Starred) for a in node.args[:2]):
                a, b = node.args[0], node.args[1]
                (sa, ea), (sb, eb) = src.span(a), src.span(b)
                if text[sa:ea] != text[sb:eb]:
                    add("swapped_args", sa, eb, text[sb:eb] + text[ea:sb] + text[sa:ea], line, name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id in local_names:
                other = _nearest_other(local_names, node)
                if other:
                    add("wrong_variable", *src.span(node), other, line, name)
            elif isinstance(node, ast.If):
                _if_mutations(node, src, add, name)
        _guards(func, src, add, name)
    out.sort(key=lambda m: (m.start, m.operator, m.replacement))
    return out


def _body_nodes(func: ast.FunctionDef):
    """Nodes of a function's body (not its signature or docstring)."""
    body = func.body
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
        body = body[1:]
    for stmt in body:
        yield from ast.walk(stmt)


def _defaults(func, src: _Source, add, name: str) -> None:
    for node in func.args.defaults + [d for d in func.args.kw_defaults if d is not None]:
        if not isinstance(node, ast.Constant):
            continue
        v = node.value
        if type(v) is bool:
            new = repr(not v)
        elif type(v) in (int, float):
            new = repr(v + 1)
        elif isinstance(v, str) and v:
            new = '""'
        else:
            continue
        add("wrong_default", *src.span(node), new, node.lineno, name)


def _assigned_names(func) -> dict[str, int]:
    """Parameters (bound at the `def` line) and local variables -> the line where
    each is first bound."""
    names = {a.arg: func.lineno for a in func.args.posonlyargs + func.args.args + func.args.kwonlyargs}
    for node in ast.walk(func):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.setdefault(node.id, node.lineno)
        elif isinstance(node, ast.arg) and node.arg not in names:
            names[node.arg] = node.lineno
    return {k: v for k, v in names.items() if k not in ("self", "cls", "_")}


def _nearest_other(names: dict[str, int], node: ast.Name) -> str | None:
    """The variable bound most recently before this read, other than the one read."""
    before = [(line, n) for n, line in names.items() if n != node.id and line < node.lineno]
    return max(before)[1] if before else None


def _if_mutations(node: ast.If, src: _Source, add, name: str) -> None:
    text = src.text
    start, end = src.span(node.test)
    cond = text[start:end]
    if isinstance(node.test, ast.UnaryOp) and isinstance(node.test.op, ast.Not):
        inner = src.span(node.test.operand)
        add("negated_condition", start, end, text[inner[0]:inner[1]], node.lineno, name)
    else:
        simple = isinstance(node.test, (ast.Name, ast.Attribute, ast.Call, ast.Compare, ast.Subscript))
        add("negated_condition", start, end, f"not {cond}" if simple else f"not ({cond})", node.lineno, name)
    if not node.orelse or not node.body:
        return
    first = node.orelse[0]
    first_line = src.lines[first.lineno - 1].lstrip()
    if len(node.orelse) == 1 and isinstance(first, ast.If) and first_line.startswith("elif"):
        add("removed_branch", *src.line_span(first.lineno, first.body[-1].end_lineno), "", first.lineno, name)
        return
    for k in range(node.body[-1].end_lineno + 1, first.lineno):  # the `else:` line
        if src.lines[k - 1].strip().startswith("else"):
            add("removed_branch", *src.line_span(k, node.orelse[-1].end_lineno), "", k, name)
            return


def _guards(func, src: _Source, add, name: str) -> None:
    """Guard clauses: an `if` with a single return/raise and no else, in a block of
    two or more statements."""
    for node in ast.walk(func):
        for field in ("body", "orelse"):
            block = getattr(node, field, None)
            if not isinstance(block, list) or len(block) < 2:
                continue
            for stmt in block:
                if isinstance(stmt, ast.If) and not stmt.orelse and len(stmt.body) == 1 \
                        and isinstance(stmt.body[0], (ast.Return, ast.Raise)):
                    add("missing_edge_case", *src.line_span(stmt.lineno, stmt.end_lineno), "",
                        stmt.lineno, name)


def project_function_names(modules: dict[str, str]) -> frozenset[str]:
    names = set()
    for text in modules.values():
        names |= {n.name for n in ast.walk(ast.parse(text)) if isinstance(n, ast.FunctionDef)}
    return frozenset(names)
