"""A kernel's source: the ``def`` of a Python function as kern text.

`function_source` finds the function's lines in its file (``inspect``), cuts
the ``def`` out with Python's own parser (decorators, however many lines they
span, are dropped), and dedents it (functions nested in other functions or in
``if`` blocks), remembering where it came from so that every diagnostic names
the real ``.py`` file, line and column.
"""

from __future__ import annotations

import ast
import inspect
import linecache
import types
from typing import Any, NamedTuple

from ._errors import CompileError

__all__ = ["FunctionSource", "function_source", "source_from_text"]


class FunctionSource(NamedTuple):
    """One ``def`` ready to be a segment of a program."""

    filename: str  # the file diagnostics name (``co_filename``)
    text: str  # the def, decorators removed, dedented, ending in a newline
    first_line: int  # the 1-based line of the ``def`` in ``filename``
    indent: int  # the columns removed from every line
    name: str  # the name the ``def`` gives the function
    node: ast.FunctionDef  # ``text`` parsed (lines relative to ``text``)


def _describe(func: object) -> str:
    name = getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or repr(func)
    return repr(name)


def function_source(func: Any) -> FunctionSource:
    """The source of a plain Python function as kern text (CompileError if
    it has none, or is a lambda or a coroutine)."""
    code = getattr(func, "__code__", None)
    if not isinstance(func, types.FunctionType) or code is None:
        raise TypeError(f"kernjit compiles Python functions (def), not {type(func).__name__} objects")
    if code.co_name == "<lambda>":
        raise CompileError(
            f"a lambda cannot be a kernel ({code.co_filename}:{code.co_firstlineno}); write it as a def"
        )
    if code.co_flags & (inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR | inspect.CO_ITERABLE_COROUTINE):
        raise CompileError(
            f"{_describe(func)} is an async def ({code.co_filename}:{code.co_firstlineno}); kernels are plain defs"
        )
    if code.co_flags & inspect.CO_GENERATOR:
        raise CompileError(
            f"{_describe(func)} is a generator ({code.co_filename}:{code.co_firstlineno}); "
            "kernels return values, they do not yield them"
        )
    try:
        lines, start = _source_lines(func)
    except (OSError, TypeError) as error:
        raise CompileError(
            f"cannot get the source of {_describe(func)} (file {code.co_filename!r}, line "
            f"{code.co_firstlineno}): {error}. kernjit compiles a kernel from its source text: "
            "define kernels in a file (a module, a script or a notebook cell), not at the "
            "interactive prompt or with exec()"
        ) from None
    return source_from_text(
        "".join(lines), code.co_filename, max(start, 1), expected_name=code.co_name
    )


def _source_lines(func: Any) -> "tuple[list[str], int]":
    """The lines of the function's block and the line it starts at, as
    ``inspect.getsourcelines`` gives them, without its first-call cost
    (``inspect.getmodule`` maps every loaded module's file)."""
    code = func.__code__
    filename = code.co_filename
    linecache.checkcache(filename)  # a module reloaded after an edit
    lines = linecache.getlines(filename, func.__globals__)
    start = code.co_firstlineno - 1
    if not lines or not 0 <= start < len(lines):
        return inspect.getsourcelines(func)  # raises OSError, as inspect would
    end = _block_end(lines, start, code.co_name)
    if end is None:
        return inspect.getsourcelines(func)
    return lines[start:end], start + 1


def _indent_of(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def _block_end(lines: "list[str]", start: int, name: str) -> "int | None":
    """Where the decorated ``def`` starting at ``lines[start]`` ends: the
    first line at or left of its indentation after which the block parses
    (tokenize, which ``inspect.getblock`` uses, costs milliseconds to
    start)."""
    base = _indent_of(lines[start])
    for end in range(start + 1, len(lines) + 1):
        if end < len(lines):
            line = lines[end]
            stripped = line.strip()
            if not stripped or stripped.startswith("#") or _indent_of(line) > base:
                continue
        block = [line[base:] if line[:base].strip() == "" else line.lstrip(" \t") for line in lines[start:end]]
        try:
            module = ast.parse("".join(block))
        except SyntaxError:
            continue
        if module.body and isinstance(module.body[0], (ast.FunctionDef, ast.AsyncFunctionDef)):
            if module.body[0].name == name:
                return end
        return None
    return None


def source_from_text(
    text: str, filename: str, start: int = 1, expected_name: str | None = None
) -> FunctionSource:
    """Cuts the first ``def`` out of ``text`` (lines of ``filename`` starting
    at line ``start``): decorators removed, dedented."""
    lines = text.splitlines(keepends=True)
    if not lines:
        raise CompileError(f"no source for a function in {filename}:{start}")
    first = lines[0]
    indent = len(first) - len(first.lstrip(" \t"))
    prefix = first[:indent]
    dedented = []
    for line in lines:
        if line.startswith(prefix):
            dedented.append(line[indent:])
        else:  # a blank line, or a string's continuation less indented
            dedented.append(line.lstrip(" \t"))
    body = "".join(dedented)
    try:
        module = ast.parse(body)
    except SyntaxError as error:
        raise CompileError(
            f"{filename}:{start + (error.lineno or 1) - 1}: cannot parse the source of "
            f"{expected_name or 'the kernel'}: {error.msg}"
        ) from None
    node = next(
        (
            stmt
            for stmt in module.body
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef))
            and (expected_name is None or stmt.name == expected_name)
        ),
        None,
    )
    if node is None:
        node = next((s for s in module.body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))), None)
    if node is None:
        raise CompileError(f"{filename}:{start}: no def found in the source of {expected_name or 'the kernel'}")
    if isinstance(node, ast.AsyncFunctionDef):
        raise CompileError(f"{filename}:{start + node.lineno - 1}: {node.name} is an async def; kernels are plain defs")
    offset = node.lineno - 1
    def_text = "".join(dedented[offset : node.end_lineno])
    if not def_text.endswith("\n"):
        def_text += "\n"
    # Parse the cut text again so that the node's lines are relative to it.
    parsed = ast.parse(def_text).body[0]
    assert isinstance(parsed, ast.FunctionDef)
    return FunctionSource(filename, def_text, start + offset, indent, parsed.name, parsed)
