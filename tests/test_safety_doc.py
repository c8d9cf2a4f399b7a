"""docs/safety.md names a test for each promise: every test and corpus case it names exists."""

from __future__ import annotations

import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from _bad_inputs import CASES  # noqa: E402

DOC = REPO / "docs" / "safety.md"


def _expand(name: str) -> list[str]:
    """``a-{b,c}`` -> ``a-b``, ``a-c``."""
    m = re.search(r"\{([^{}]*)\}", name)
    if not m:
        return [name]
    return [x for alt in m.group(1).split(",") for x in _expand(name[: m.start()] + alt + name[m.end():])]


def _test_names() -> dict[str, set[Path]]:
    names: dict[str, set[Path]] = {}
    for p in (REPO / "tests").rglob("*.py"):
        for n in re.findall(r"^def (test_\w+)", p.read_text(encoding="utf-8"), flags=re.M):
            names.setdefault(n, set()).add(p.relative_to(REPO))
    return names


def test_every_test_and_case_the_safety_doc_names_exists() -> None:
    text = DOC.read_text(encoding="utf-8")
    names = _test_names()
    ids = {c.id for c in CASES}
    missing = []
    path = None
    for ref in re.findall(r"`([^`\n]+)`", text):
        m = re.fullmatch(r"([\w/]+\.py)?(?:::)?(test_\w+)(\[[^\]]*\])?", ref)
        if m:
            path = m.group(1) or path
            fn = m.group(2)
            if fn not in names or (m.group(1) and not any(str(f).endswith(m.group(1)) for f in names[fn])):
                missing.append(ref)
            continue
        m = re.fullmatch(r"(test_\w+)\*", ref)  # a family of tests
        if m and not any(n.startswith(m.group(1)) for n in names):
            missing.append(ref)
    for bracket in re.findall(r"\[([^\[\]]*)\]", text):
        if "corpus" not in bracket:
            continue
        for case in re.findall(r"`([^`\n]+)`", bracket.split("corpus", 1)[1]):
            if "::" in case or case.startswith("test_") or ".py" in case:
                continue  # a test, checked above
            if case.endswith("-*"):
                if not any(i.startswith(case[:-1]) for i in ids):
                    missing.append(case)
                continue
            missing += [c for c in _expand(case) if c not in ids]
    assert not missing, f"docs/safety.md names tests or cases that do not exist: {missing}"
    assert path is not None  # the doc does name tests
