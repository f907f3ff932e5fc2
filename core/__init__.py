"""imggo-functions core: domain, use cases, one HTTP surface and the ports adapters fill.

Importing this package is deliberately cheap: nothing heavy (httpx, SDKs) is
imported until an adapter is built, so a cold function only pays for what it uses.
"""

__version__ = "0.1.0"
