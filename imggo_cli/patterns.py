"""ImgGo's patterns as the CLI shows and accepts them: by id, short name or title.

ImgGo knows patterns by id (a UUID). The simulator's built-in patterns also answer to a
short alias (`invoice`, `image-facts`), which is what people type; a pattern's title
(`Invoice Extraction`) is accepted too. `--pattern` is resolved here, before any work,
so a typo stops with the valid names instead of making one rejected job per image.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from imggo_cli.errors import UserError


@dataclass(frozen=True)
class PatternInfo:
    id: str
    title: str
    format: str
    alias: str | None = None

    @property
    def short_name(self) -> str:
        """What to type after --pattern."""
        return self.alias or self.id


def _simulator_aliases() -> dict[str, str]:
    """id -> alias of the simulator's built-in patterns (their ids are fixed UUIDs, so
    they are recognised at a standalone simulator too)."""
    from imggo_simulator import BUILTIN_PATTERN_IDS

    return {pattern_id: alias for alias, pattern_id in BUILTIN_PATTERN_IDS.items()}


def catalog(listed: Sequence[dict[str, Any]]) -> list[PatternInfo]:
    """ImgGo's pattern list (`GET /api/patterns` items), sorted by what people type."""
    aliases = _simulator_aliases()
    patterns = [
        PatternInfo(
            id=str(item["id"]),
            title=str(item.get("name") or ""),
            format=str(item.get("format") or ""),
            alias=aliases.get(str(item["id"])),
        )
        for item in listed
        if item.get("id")
    ]
    return sorted(patterns, key=lambda p: (p.alias is None, p.short_name.lower()))


def resolve(patterns: Sequence[PatternInfo], wanted: str) -> PatternInfo:
    """The pattern `wanted` names (id, alias, or title in any case), or a UserError that
    lists the valid names and suggests the closest one."""
    for pattern in patterns:
        if wanted in (pattern.id, pattern.alias):
            return pattern
    by_title = [p for p in patterns if p.title and p.title.lower() == wanted.lower()]
    if len(by_title) == 1:
        return by_title[0]
    names = [p.short_name for p in patterns]
    candidates = {name.lower(): name for name in names}
    candidates.update({p.title.lower(): p.short_name for p in patterns if p.title})
    close = difflib.get_close_matches(wanted.lower(), list(candidates), n=1, cutoff=0.6)
    if len(by_title) > 1:
        problem = f"{len(by_title)} ImgGo patterns are titled {wanted!r}: give the id"
    else:
        problem = f"ImgGo has no pattern {wanted!r}"
        if close:
            problem += f"; did you mean {candidates[close[0]]!r}?"
    valid = ", ".join(names) if names else "(none)"
    raise UserError(f"{problem} (patterns: {valid}; see imggo-fn patterns list)")
