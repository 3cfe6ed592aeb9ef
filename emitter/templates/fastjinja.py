"""Evaluating plain Jinja templates and expressions straight from Jinja's own parse tree.

Most event templates are text with a few expressions such as `{{ service | lower }}` or
`{{ 'error' if code else 'success' }}`, and most `when:` tests are comparisons. For those,
generating Python code and compiling it (what Jinja does, about 0.4 ms a template) costs far
more than the template is ever worth, so a tree of such nodes becomes a tree of closures
that perform exactly the operations Jinja's generated code performs: names looked up in the
context (an undefined name becomes the environment's `undefined`), attributes and items through
the sandbox's `getattr`/`getitem`, filters and tests called as the code generator calls them,
arithmetic as the code generator writes it for this environment (an operator the sandbox
intercepts, `env.intercepted_binops`/`intercepted_unops`, through `env.call_binop`/`call_unop`;
any other from `env.binop_table`/`unop_table`), Python's own comparison, boolean and conditional
operators, `str()` of each output.

Anything else (statements, calls, slices, filters that take the context, names with special
meaning) is left to Jinja: `template_pieces` and `expression` return None for it.
tests/test_fastjinja.py checks the results against Jinja's.
"""

from __future__ import annotations

import contextlib
import copy
import operator
from collections.abc import Callable, Iterable
from typing import Any, TypeAlias

import jinja2
from jinja2 import nodes

Evaluator: TypeAlias = Callable[[dict[str, Any]], Any]
# Literal text, or (template line, evaluator) for an expression whose str() is output.
Piece: TypeAlias = str | tuple[int, Evaluator]

# Names Jinja's code generator treats specially (a template reference, macro arguments).
_SPECIAL_NAMES = frozenset({"self", "loop", "caller", "varargs", "kwargs"})
_IMMUTABLE = (str, int, float, bool, type(None))
# The marker jinja2.pass_environment puts on a filter or test: it takes the environment first.
_PASS_ENVIRONMENT = getattr(jinja2.pass_environment(lambda: None), "jinja_pass_arg", None)

_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq, "ne": operator.ne, "gt": operator.gt, "gteq": operator.ge,
    "lt": operator.lt, "lteq": operator.le,
    "in": lambda a, b: a in b, "notin": lambda a, b: a not in b,
}


class _Unsupported(Exception):
    """The tree holds a node this module leaves to Jinja."""


def template_pieces(ast: nodes.Template,
                    env: jinja2.Environment) -> tuple[tuple[Piece, ...], frozenset[str]] | None:
    """The output pieces of a parsed template and the names it reads, or None when any node
    is outside what this module evaluates."""
    pieces: list[Piece] = []
    builder = _Builder(env)
    try:
        for output in ast.body:
            if not isinstance(output, nodes.Output):
                raise _Unsupported
            for child in output.nodes:
                if isinstance(child, nodes.TemplateData):
                    pieces.append(child.data)
                else:
                    pieces.append((child.lineno, builder.build(child)))
    except Exception:  # noqa: BLE001 - _Unsupported, or folding failed: Jinja says how
        return None
    return tuple(pieces), _names(ast)


def expression(expr: nodes.Expr,
               env: jinja2.Environment) -> tuple[Evaluator, frozenset[str]] | None:
    """An evaluator for a parsed expression and the names it reads, or None (see above)."""
    try:
        return _Builder(env).build(expr), _names(expr)
    except Exception:  # noqa: BLE001 - as above
        return None


def render(pieces: tuple[Piece, ...], scope: dict[str, Any]) -> str:
    parts = []
    for piece in pieces:
        if isinstance(piece, str):
            parts.append(piece)
        else:
            value = piece[1](scope)
            parts.append(value if type(value) is str else str(value))
    return "".join(parts)


def failing_line(pieces: tuple[Piece, ...], scope: dict[str, Any]) -> int:
    """The template line of the first piece that raises with `scope` (1 when none does):
    only asked after a render failed, so the pieces are evaluated again."""
    for piece in pieces:
        if not isinstance(piece, str):
            line, evaluate = piece
            try:
                str(evaluate(scope))
            except Exception:  # noqa: BLE001 - finding which piece fails is the point
                return line
    return 1


def _names(node: nodes.Node) -> frozenset[str]:
    # Within this subset nothing declares a name, so every name loaded comes from the context.
    # As for Jinja (whose name analysis runs before its constant folding), a name in a part
    # that folds away (`true or x`) still counts.
    found = [node, *node.find_all(nodes.Name)]  # find_all leaves out the node itself
    return frozenset(n.name for n in found if isinstance(n, nodes.Name) and n.ctx == "load")


class _Builder:
    """Turns supported nodes into closures, noting the names they read; raises _Unsupported
    for any other node.

    Jinja's code generator first folds constants (its Optimizer): every expression whose value
    `as_const` can compute becomes that constant, when it has a safe repr. `build` does the
    same, from the top down, so a folded part is a constant here as it is there, and whatever
    folding raises is raised here too (then Jinja's compile raises it).
    """

    def __init__(self, env: jinja2.Environment) -> None:
        self.env = env
        self.eval_ctx = nodes.EvalContext(env)

    def build(self, node: nodes.Node) -> Evaluator:
        if isinstance(node, nodes.Expr) and not isinstance(node, nodes.Const):
            with contextlib.suppress(nodes.Impossible):
                node = nodes.Const.from_untrusted(node.as_const(self.eval_ctx))
        method = getattr(self, "_" + type(node).__name__, None)
        if method is not None:
            result: Evaluator = method(node)
            return result
        if isinstance(node, nodes.BinExpr):
            return self._binary(node)
        if isinstance(node, nodes.UnaryExpr):
            return self._unary(node)
        raise _Unsupported

    def _all(self, items: Iterable[nodes.Node]) -> tuple[Evaluator, ...]:
        return tuple(self.build(item) for item in items)

    def _Const(self, node: nodes.Const) -> Evaluator:
        value = node.value
        if isinstance(value, _IMMUTABLE):
            return lambda scope: value
        # A folded list or dict: Jinja's code writes it as a literal, a new one each time.
        return lambda scope: copy.deepcopy(value)

    def _Name(self, node: nodes.Name) -> Evaluator:
        if node.ctx != "load" or node.name in _SPECIAL_NAMES:
            raise _Unsupported
        name, undefined = node.name, self.env.undefined

        def lookup(scope: dict[str, Any]) -> Any:
            try:
                return scope[name]
            except KeyError:
                return undefined(name=name)

        return lookup

    def _List(self, node: nodes.List) -> Evaluator:
        items = self._all(node.items)
        return lambda scope: [item(scope) for item in items]

    def _Tuple(self, node: nodes.Tuple) -> Evaluator:
        if node.ctx != "load":
            raise _Unsupported
        items = self._all(node.items)
        return lambda scope: tuple(item(scope) for item in items)

    def _Getattr(self, node: nodes.Getattr) -> Evaluator:
        inner, attr, getattr_ = self.build(node.node), node.attr, self.env.getattr
        return lambda scope: getattr_(inner(scope), attr)

    def _Getitem(self, node: nodes.Getitem) -> Evaluator:
        if isinstance(node.arg, nodes.Slice):
            raise _Unsupported
        inner, key, getitem = self.build(node.node), self.build(node.arg), self.env.getitem
        return lambda scope: getitem(inner(scope), key(scope))

    def _Filter(self, node: nodes.Filter) -> Evaluator:
        if node.node is None:  # a {% filter %} block, not an expression
            raise _Unsupported
        return self._call(node, self.env.filters.get(node.name))

    def _Test(self, node: nodes.Test) -> Evaluator:
        return self._call(node, self.env.tests.get(node.name))

    def _call(self, node: nodes.Filter | nodes.Test, func: Any) -> Evaluator:
        """`func(value, *args, **kwargs)`, the environment first for a pass_environment one,
        evaluated in the generated code's order: the value, then the arguments."""
        if func is None or node.dyn_args is not None or node.dyn_kwargs is not None:
            raise _Unsupported
        passes = getattr(func, "jinja_pass_arg", None)
        if passes is not None and passes is not _PASS_ENVIRONMENT:
            raise _Unsupported
        assert node.node is not None
        value, args = self.build(node.node), self._all(node.args)
        kwargs = tuple((str(kw.key), self.build(kw.value)) for kw in node.kwargs)
        lead = (self.env,) if passes is not None else ()

        def call(scope: dict[str, Any]) -> Any:
            first = value(scope)
            return func(*lead, first, *(a(scope) for a in args),
                        **{key: kw(scope) for key, kw in kwargs})

        return call

    def _Compare(self, node: nodes.Compare) -> Evaluator:
        first = self.build(node.expr)
        ops = tuple((_COMPARE[op.op], self.build(op.expr)) for op in node.ops
                    if op.op in _COMPARE)
        if len(ops) != len(node.ops):
            raise _Unsupported

        def compare(scope: dict[str, Any]) -> Any:  # Python's chained comparison
            left = first(scope)
            result: Any = True
            for test, operand in ops:
                right = operand(scope)
                result = test(left, right)
                if not result:
                    return result
                left = right
            return result

        return compare

    def _And(self, node: nodes.And) -> Evaluator:
        left, right = self.build(node.left), self.build(node.right)
        return lambda scope: left(scope) and right(scope)

    def _Or(self, node: nodes.Or) -> Evaluator:
        left, right = self.build(node.left), self.build(node.right)
        return lambda scope: left(scope) or right(scope)

    def _CondExpr(self, node: nodes.CondExpr) -> Evaluator:
        if node.expr2 is None:  # Jinja gives a special undefined here
            raise _Unsupported
        test, yes, no = self.build(node.test), self.build(node.expr1), self.build(node.expr2)
        return lambda scope: yes(scope) if test(scope) else no(scope)

    def _Concat(self, node: nodes.Concat) -> Evaluator:
        parts = self._all(node.nodes)
        # Jinja's str_join: every part is evaluated before any is turned into text.
        return lambda scope: "".join(map(str, [part(scope) for part in parts]))

    def _binary(self, node: nodes.BinExpr) -> Evaluator:
        """As jinja2.compiler writes a binary operator: through the sandbox's `call_binop`
        when the environment intercepts it, else the plain operator."""
        symbol, env = node.operator, self.env
        left, right = self.build(node.left), self.build(node.right)
        if symbol in getattr(env, "intercepted_binops", ()):
            call = getattr(env, "call_binop")  # noqa: B009 - a sandbox's method
            return lambda scope: call(None, symbol, left(scope), right(scope))
        table = getattr(env, "binop_table", {})  # only a sandbox has one: else left to Jinja
        if symbol not in table:
            raise _Unsupported
        op = table[symbol]
        return lambda scope: op(left(scope), right(scope))

    def _unary(self, node: nodes.UnaryExpr) -> Evaluator:
        symbol, env, inner = node.operator, self.env, self.build(node.node)
        if symbol in getattr(env, "intercepted_unops", ()):
            call = getattr(env, "call_unop")  # noqa: B009 - a sandbox's method
            return lambda scope: call(None, symbol, inner(scope))
        table = getattr(env, "unop_table", {})
        if symbol not in table:
            raise _Unsupported
        op = table[symbol]
        return lambda scope: op(inner(scope))

    def _Not(self, node: nodes.Not) -> Evaluator:
        inner = self.build(node.node)  # Jinja writes Python's `not`: never intercepted
        return lambda scope: not inner(scope)
