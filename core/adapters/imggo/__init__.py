"""The ImgGo adapter: `ImggoClient` (the ImageApi port over httpx) and `RateLimit`.

Nothing heavy is imported here: httpx and tenacity load only when `ImggoClient` is
first touched, so a cold start that never talks to ImgGo (a webhook, a store sweep) skips
them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.adapters.imggo.client import ImggoClient
    from core.adapters.imggo.headers import RateLimit

__all__ = ["ImggoClient", "RateLimit"]


def __getattr__(name: str) -> Any:
    if name == "ImggoClient":
        from core.adapters.imggo.client import ImggoClient

        return ImggoClient
    if name == "RateLimit":
        from core.adapters.imggo.headers import RateLimit

        return RateLimit
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
