"""`calculator`: arithmetic over an explicit AST whitelist.

No eval, no attribute access, no names beyond a few constants and functions. Every operation that
could explode (powers, products, huge roundings) is bounded before it is computed, so a hostile
expression such as `9**9**9` is refused instantly instead of hanging the server.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import Any

from llmmesh.tools.base import BUILTIN, ToolError, ToolExample

MAX_EXPRESSION_CHARS = 500
# What the tool's schema admits: enough for any real expression, and under constrained decoding it
# keeps a small model from rambling on inside the argument ("1234 + 5678 = 6912.5678 * …"): no `=`,
# braces or prose, only what an arithmetic expression is made of.
EXPRESSION_CHARS = 200
EXPRESSION_PATTERN = "^[-+*/%()., 0-9a-z]+$"
MAX_NODES = 200
# Integers beyond this many bits (about 1,200 decimal digits) are refused.
MAX_INT_BITS = 4096

Number = int | float

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e, "tau": math.tau}


def _round(x: Number, ndigits: Number | None = None) -> Number:
    if ndigits is None:
        return round(x)
    if not isinstance(ndigits, int) or abs(ndigits) > 100:
        raise ToolError("INVALID_ARGUMENT", "round: ndigits must be an integer between -100 and 100")
    return round(x, ndigits)


def _log(x: Number, base: Number | None = None) -> float:
    return math.log(x) if base is None else math.log(x, base)


# name → (function, min args, max args)
_FUNCTIONS: dict[str, tuple[Callable[..., Number], int, int]] = {
    "sqrt": (math.sqrt, 1, 1),
    "sin": (math.sin, 1, 1),
    "cos": (math.cos, 1, 1),
    "tan": (math.tan, 1, 1),
    "asin": (math.asin, 1, 1),
    "acos": (math.acos, 1, 1),
    "atan": (math.atan, 1, 1),
    "exp": (math.exp, 1, 1),
    "log": (_log, 1, 2),
    "log10": (math.log10, 1, 1),
    "log2": (math.log2, 1, 1),
    "abs": (abs, 1, 1),
    "round": (_round, 1, 2),
    "floor": (math.floor, 1, 1),
    "ceil": (math.ceil, 1, 1),
    "min": (min, 1, 16),
    "max": (max, 1, 16),
}


def _refuse(message: str) -> ToolError:
    return ToolError("INVALID_ARGUMENT", message)


def _check_size(value: Number) -> Number:
    if isinstance(value, bool) or not isinstance(value, int | float):  # e.g. (-8) ** 0.5 is complex
        raise _refuse("the result is not a real number")
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise _refuse(f"an intermediate result exceeds {MAX_INT_BITS} bits")
    return value


def _bits(x: Number) -> float:
    return math.log2(abs(x)) if x else 0.0


def _guard_binary(op: type[ast.operator], left: Number, right: Number) -> None:
    """Refuse operations whose integer result would be too large, before computing them."""
    if op is ast.Pow:
        if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
            if right * _bits(left) > MAX_INT_BITS:
                raise _refuse(f"power too large: the result would exceed {MAX_INT_BITS} bits")
        elif abs(right) > 10_000 and abs(left) > 1:
            raise _refuse("exponent too large")
    elif op is ast.Mult and isinstance(left, int) and isinstance(right, int):
        if _bits(left) + _bits(right) > MAX_INT_BITS:
            raise _refuse(f"product too large: the result would exceed {MAX_INT_BITS} bits")


class _Evaluator:
    def __init__(self) -> None:
        self.nodes = 0

    def eval(self, node: ast.AST) -> Number:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _refuse(f"expression too complex (more than {MAX_NODES} elements)")
        if isinstance(node, ast.Expression):
            return self.eval(node.body)
        if isinstance(node, ast.Constant):
            # bool is an int subclass; complex and str are not numbers here.
            if isinstance(node.value, bool) or not isinstance(node.value, int | float):
                raise _refuse(f"unsupported literal {node.value!r}")
            return _check_size(node.value)
        if isinstance(node, ast.Name):
            if node.id in _CONSTANTS:
                return _CONSTANTS[node.id]
            raise _refuse(f"unknown name {node.id!r}")
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            return _UNARY[type(node.op)](self.eval(node.operand))
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            left, right = self.eval(node.left), self.eval(node.right)
            _guard_binary(type(node.op), left, right)
            return _check_size(_BINARY[type(node.op)](left, right))
        if isinstance(node, ast.Call):
            return self._call(node)
        raise _refuse(f"unsupported syntax: {type(node).__name__}")

    def _call(self, node: ast.Call) -> Number:
        if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCTIONS:
            what = node.func.id if isinstance(node.func, ast.Name) else type(node.func).__name__
            raise _refuse(f"unknown function {what!r}; known: {', '.join(sorted(_FUNCTIONS))}")
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            raise _refuse("functions take positional arguments only")
        fn, lo, hi = _FUNCTIONS[node.func.id]
        if not lo <= len(node.args) <= hi:
            raise _refuse(f"{node.func.id} takes {lo} to {hi} arguments")
        args = [self.eval(a) for a in node.args]
        return _check_size(fn(*args))


def evaluate(expression: str) -> Number:
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise _refuse(f"expression longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise _refuse(f"not an arithmetic expression: {exc.__class__.__name__}") from None
    try:
        result = _Evaluator().eval(tree)
    except ZeroDivisionError:
        raise _refuse("division by zero") from None
    except (OverflowError, ValueError, TypeError) as exc:
        raise _refuse(f"math error: {exc}") from None
    if isinstance(result, float) and not math.isfinite(result):
        raise _refuse("the result is not a finite number")
    return result


class Calculator:
    name = "calculator"
    description = (
        "Evaluate an arithmetic expression exactly. Supports + - * / // % ** and parentheses, "
        "the constants pi, e, tau and the functions " + ", ".join(sorted(_FUNCTIONS)) + "."
    )
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": {
            "expression": {"type": "string", "minLength": 1, "maxLength": EXPRESSION_CHARS,
                           "pattern": EXPRESSION_PATTERN, "description": "e.g. (2 + 3) * sqrt(16)"},
        },
        "required": ["expression"],
        "additionalProperties": False,
    }
    source = BUILTIN
    # Shown to small models as earlier turns: an expression copied as written, then questions in
    # words with each word turned into its operator ("squared", "%", "add … and …", "square root").
    # Small models copy the figures of a question well, its words hardly without these.
    examples = (ToolExample("Calculate (2 + 3) * 4.", {"expression": "(2 + 3) * 4"}, "20", "(2 + 3) * 4 = 20"),
                ToolExample("What is 4 squared plus 10% of 50?", {"expression": "4 ** 2 + 10 / 100 * 50"}, "21.0",
                            "4 ** 2 + 10 / 100 * 50 = 21.0"),
                ToolExample("Add 12, 7 and 30, then take the square root.", {"expression": "sqrt(12 + 7 + 30)"},
                            "7.0", "sqrt(12 + 7 + 30) = 7.0"))

    async def call(self, arguments: dict[str, Any]) -> str:
        return str(evaluate(arguments["expression"]))
