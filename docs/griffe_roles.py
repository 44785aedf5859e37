"""A griffe extension for the API reference: minirai's docstrings, laid out as written.

minirai's docstrings are written for ``help()`` and an editor's hover: plain text, Google-style ``Args:`` /
``Returns:`` sections where a function has them, and Sphinx roles (``:func:`fit```) to name other objects.
Rendered as Markdown they would lose their layout, so before mkdocstrings renders them this extension

* turns each role into a link to the object's entry in the API reference (``[`fit`][minirai.train.fit]``),
  or into code when the object has no entry (a private helper, a module the reference does not show);
* keeps an indented block that follows a line of text (formulas, tables of options, a ``::`` example) as a
  preformatted block instead of letting Markdown run its lines into the paragraph above;
* starts a list where a docstring starts one, even without a blank line above it;
* turns a reST section title (``Conventions`` underlined with dashes) into a bold line.

The docstrings themselves are not changed: ``help(minirai.Linear)`` shows the same text.
"""
from __future__ import annotations

import re
from pathlib import Path

import griffe

ROLE = re.compile(r":(?:py:)?(mod|func|class|meth|attr|data|exc|obj):`~?\.?([\w.]+)(?:\(\))?`")
UNDERLINE = re.compile(r"^\s*(-{3,}|={3,})\s*$")
LITERAL = re.compile(r"``([^`]+)``")
LIST_ITEM = re.compile(r"^\s*(?:[*+-]|\d+\.)\s+\S")
#: section titles griffe's Google parser reads itself (left alone here)
SECTIONS = re.compile(r"^\s*(Args|Arguments|Parameters|Params|Returns|Return|Yields|Raises|Exceptions|Warns|"
                      r"Warnings|Attributes|Examples?|Notes?|Other Parameters|Receives|Methods|Functions|Classes|"
                      r"Modules|Type Aliases|Type Parameters)\s*:\s*$")
#: the modules the API reference shows (the ``::: module`` lines of docs/api.md)
SHOWN = re.findall(r"^::: ([\w.]+)\s*$", (Path(__file__).parent / "api.md").read_text(encoding="utf-8"), re.M)


def find(root: griffe.Module, path: str) -> griffe.Object | griffe.Alias | None:
    """The object at the dotted ``path`` under ``root`` (``root``'s own name first), or None."""
    parts = path.split(".")
    if parts[0] != root.name:
        return None
    found: griffe.Object | griffe.Alias = root
    for part in parts[1:]:
        try:
            found = found.members[part]
        except (KeyError, griffe.AliasResolutionError, griffe.CyclicAliasError):
            return None
    return found


def shown(path: str) -> bool:
    """Whether the API reference has an entry for ``path``: in a module it shows, and public."""
    module = max((m for m in SHOWN if path == m or path.startswith(m + ".")), key=len, default=None)
    if module is None:
        return False
    rest = path[len(module):].lstrip(".")
    return not any(part.startswith("_") for part in rest.split(".") if part)


def documented(obj: griffe.Object) -> bool:
    """Whether mkdocstrings gives ``obj`` an entry: it and the classes holding it have docstrings."""
    while obj is not None and not obj.is_module:
        if not obj.docstring:
            return False
        obj = obj.parent
    return True


def resolve(root: griffe.Module, obj: griffe.Object, name: str) -> str | None:
    """The path of the entry ``name`` means, seen from ``obj``'s docstring, if the reference shows it."""
    scopes = [obj.path]
    scope = obj.parent
    while scope is not None:
        scopes.append(scope.path)
        scope = scope.parent
    for candidate in [name, *(f"{scope}.{name}" for scope in scopes)]:
        target = find(root, candidate)
        if target is None:
            continue
        try:
            path = target.final_target.path if target.is_alias else target.path
        except (griffe.AliasResolutionError, griffe.CyclicAliasError):
            continue
        if shown(path) and documented(target.final_target if target.is_alias else target):
            return path
    return None


def markdown_layout(text: str) -> str:
    """Blank lines where Markdown needs them to keep the docstring's indented blocks, lists and titles."""
    lines = text.splitlines()
    out: list[str] = []
    k = 0
    while k < len(lines):
        line = lines[k]
        indent = len(line) - len(line.lstrip())
        previous = out[-1] if out else ""
        if line.rstrip().endswith("::"):                        # reST's "the block below is code"
            line = line.rstrip()[:-1]
        if k + 1 < len(lines) and UNDERLINE.match(lines[k + 1]) and line.strip() and not UNDERLINE.match(line):
            out.extend(["", f"**{line.strip()}**", ""])        # a reST section title
            k += 2
            continue
        if (indent > 0 and previous.strip() and not previous.startswith(" ") and not LIST_ITEM.match(previous)
                and not SECTIONS.match(previous) and not LIST_ITEM.match(line)):
            block = []                                          # an indented block right under a line of text
            while k < len(lines) and (not lines[k].strip() or lines[k].startswith(" ")):
                block.append(lines[k])
                k += 1
            while block and not block[-1].strip():
                block.pop()
            margin = min(len(b) - len(b.lstrip()) for b in block if b.strip())
            # (a preformatted block shows reST's ``literal`` marks as they are: drop them)
            out.extend(["", *("    " + LITERAL.sub(r"\1", b[margin:]) if b.strip() else "" for b in block), ""])
            continue
        if LIST_ITEM.match(line) and indent == 0 and previous.strip() and not LIST_ITEM.match(previous) \
                and not previous.startswith(" "):
            out.append("")
        out.append(line)
        k += 1
    return "\n".join(out)


class SphinxRoles(griffe.Extension):
    """Roles to links, and the docstrings' layout kept (see the module's docstring)."""

    def on_package(self, *, pkg: griffe.Module, **kwargs) -> None:
        pending: list[griffe.Object] = [pkg]
        while pending:
            obj = pending.pop()
            for member in obj.members.values():
                if not member.is_alias:
                    pending.append(member)
            if obj.docstring is None:
                continue

            def link(match: re.Match, obj: griffe.Object = obj) -> str:
                name = match.group(2)
                path = resolve(pkg, obj, name)
                return f"[`{name}`][{path}]" if path else f"`{name}`"

            obj.docstring.value = ROLE.sub(link, markdown_layout(obj.docstring.value))
