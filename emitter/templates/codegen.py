"""Jinja code generation for the templates fastjinja cannot evaluate: the parse tree metered
first (every `for` iterates through the budget's loop check, every `~` joins through a size
check), then Jinja's own code generator, noting the context names the template reads."""

from __future__ import annotations

import io
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.idtracking import VAR_LOAD_RESOLVE
from jinja2.visitor import NodeTransformer

from emitter.templates.filters import CONCAT_FILTER, LOOP_FILTER
from emitter.templates.sandbox import ENV


class _Metered(NodeTransformer):
    """Loops and `~` routed through the sandbox's filters of the same purpose (filters.py)."""

    def visit_For(self, node: nodes.For) -> nodes.Node:  # noqa: N802 - Jinja's visitor names
        self.generic_visit(node)
        node.iter = nodes.Filter(node.iter, LOOP_FILTER, [], [], None, None,
                                 lineno=node.iter.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:  # noqa: N802
        self.generic_visit(node)
        parts = nodes.List(list(node.nodes), lineno=node.lineno)
        return nodes.Filter(parts, CONCAT_FILTER, [], [], None, None, lineno=node.lineno)


# Nodes that cannot make a render slow or large: looking values up, comparing, choosing,
# arithmetic the sandbox leaves alone. A tree of only these renders without a meter.
_INERT = (nodes.Template, nodes.Output, nodes.TemplateData, nodes.Name, nodes.Const,
          nodes.Compare, nodes.Operand, nodes.CondExpr, nodes.And, nodes.Or, nodes.Not,
          nodes.Neg, nodes.Pos, nodes.List, nodes.Tuple, nodes.Test, nodes.Sub, nodes.Div,
          nodes.FloorDiv, nodes.Getattr, nodes.Getitem)


def can_grow(node: nodes.Node) -> bool:
    """Whether anything in the tree calls, filters, loops or runs an operator the sandbox
    meters (then its render needs a meter)."""
    return not all(isinstance(n, _INERT) for n in (node, *node.find_all(nodes.Node)))


def metered(node: Any) -> Any:
    """The parse tree (a template or an expression) with its loops and `~` metered."""
    return _Metered().visit(node)


class _NameRecorder(CodeGenerator):
    """Jinja's own code generator, also noting every name a frame resolves from the context:
    the analysis jinja2.meta.find_undeclared_variables makes with a second, discarded code
    generation, here made during the one that builds the template."""

    def __init__(self) -> None:
        self.code = io.StringIO()
        super().__init__(ENV, None, FILENAME, self.code, optimized=ENV.optimized)
        self.names: set[str] = set()

    def enter_frame(self, frame: Frame) -> None:
        super().enter_frame(frame)
        self.names.update(name for action, name in frame.symbols.loads.values()
                          if action == VAR_LOAD_RESOLVE)


FILENAME = "<template>"  # JinjaTemplate.template_line looks for frames of this file


def build(ast: nodes.Template) -> tuple[jinja2.Template, frozenset[str]]:
    """A parsed template's code and the context names it reads. Code generation raises
    TemplateAssertionError (a TemplateSyntaxError) for what parsing cannot see, such as an
    unknown filter or test, so compiling still finds those at load."""
    ast.set_environment(ENV)
    recorder = _NameRecorder()
    recorder.visit(ast)
    code = compile(recorder.code.getvalue(), FILENAME, "exec")
    template = ENV.template_class.from_code(ENV, code, ENV.make_globals(None))
    return template, frozenset(recorder.names)


