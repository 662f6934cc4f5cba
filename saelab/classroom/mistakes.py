"""The mistakes a check recognises, read from the check's own code, so the teacher's guide cannot drift from it.

A check names a mistake by returning (or keying a table by) a hint string. `mistakes("check_topk")` parses the
module in `saelab/checks/` that defines the check, follows the module's own functions and tables that the check
reaches, and returns every hint text in them, with each f-string's values shown as "…":

    >>> mistakes("check_l0")[0]
    'got …: the total number of non-zeros. L0 is per input: divide by the number of rows.'
"""
from __future__ import annotations

import ast
import re
from functools import lru_cache
from pathlib import Path

import saelab.checks

CHECKS_DIR = Path(saelab.checks.__file__).parent
MIN_WORDS = 5  # shorter literals are names and labels ("correct", "the latents"), not hints
PLACEHOLDER = "…"


@lru_cache(maxsize=None)
def _module(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def check_module(check: str) -> Path:
    """The file in saelab/checks/ that defines `check` (a KeyError says where to look when none does)."""
    for path in sorted(CHECKS_DIR.glob("*.py")):
        if any(isinstance(n, ast.FunctionDef) and n.name == check for n in _module(path).body):
            return path
    raise KeyError(f"no function {check!r} in {CHECKS_DIR}; the notebook calls a check that does not exist")


def _top_level(tree: ast.Module) -> dict[str, ast.AST]:
    """The module's functions and assigned names (tables of hints, constants) by name."""
    names: dict[str, ast.AST] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            names[node.name] = node
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    names[target.id] = node
    return names


def reachable(check: str, path: Path | None = None) -> list[ast.AST]:
    """The check's function and every module-level function or table it reaches, by name."""
    tree = _module(path or check_module(check))
    table = _top_level(tree)
    seen, todo = [], [check]
    while todo:
        name = todo.pop()
        node = table.get(name)
        if node is None or node in seen:
            continue
        seen.append(node)
        todo += [n.id for n in ast.walk(node) if isinstance(n, ast.Name) and n.id in table]
    return seen


def _docstrings(node: ast.AST) -> set[int]:
    """ids of the docstring nodes inside `node` (they describe, they are not hints)."""
    found = set()
    for n in ast.walk(node):
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)) and n.body:
            first = n.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value,
                                                                                                     str):
                found.add(id(first.value))
    return found


def _text(node: ast.AST) -> str | None:
    """A string literal, f-string or concatenation of them as text (values shown as …); None for anything else."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else PLACEHOLDER for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _text(node.left), _text(node.right)
        if left is not None and right is not None:
            return left + right
    return None


def _case_names(node: ast.AST) -> list[ast.AST]:
    """The first string of each tuple in a list literal: the names of the cases a check tries ("a batch of one")."""
    return [elt.elts[0] for lst in ast.walk(node) if isinstance(lst, ast.List)
            for elt in lst.elts if isinstance(elt, ast.Tuple) and elt.elts and _text(elt.elts[0]) is not None]


def _is_hint(text: str) -> bool:
    words = re.sub(re.escape(PLACEHOLDER), " ", text).split()
    return len(words) >= MIN_WORDS


def hints_in(nodes: list[ast.AST]) -> list[str]:
    """Every hint-sized text literal in the nodes, outermost expression first (parts of a concatenation are not
    listed again), docstrings left out, in source order, without repeats."""
    found: list[tuple[int, int, str]] = []
    for node in nodes:
        skip = _docstrings(node) | {id(n) for n in _case_names(node)}
        for n in ast.walk(node):
            if id(n) in skip:
                continue
            text = _text(n)
            if text is None:
                continue
            for part in ast.walk(n):  # a concatenation's pieces are covered by the whole
                skip.add(id(part))
            text = re.sub(r"^[\s….:;,]+", "", " ".join(text.split()))  # a suffix's lead-in (". Did you ...")
            if _is_hint(text):
                found.append((n.lineno, n.col_offset, text))
    return list(dict.fromkeys(text for _, _, text in sorted(found)))


def mistakes(check: str) -> list[str]:
    """The hints `check` can print, read from its module's code (see the module docstring)."""
    path = check_module(check)
    return hints_in(reachable(check, path))


def cases(check: str) -> list[str]:
    """The names of the cases `check` tries ("a batch of one", "an all-zero input"), read from its code."""
    nodes = reachable(check)
    names = [" ".join(_text(n).split()) for node in nodes for n in _case_names(node)]
    return list(dict.fromkeys(n for n in names if n.strip(PLACEHOLDER + " ")))


def in_source(hint: str, check: str) -> bool:
    """Whether every literal piece of `hint` appears in the check's module source (the test that they match)."""
    source = " ".join(check_module(check).read_text().split())
    pieces = [p.strip() for p in hint.split(PLACEHOLDER) if len(p.strip()) > 3]
    return all(piece in source or _joined_in(piece, source) for piece in pieces)


def _joined_in(piece: str, source: str) -> bool:
    """A piece that the source writes as implicitly concatenated literals ("abc " "def") still counts as present."""
    flat = re.sub(r'"\s+f?"|\'\s+f?\'', "", source)
    return piece in flat
