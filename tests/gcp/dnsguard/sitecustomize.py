"""Loaded by every Python process the GCP tests start (PYTHONPATH): name lookups of
anything but an IP literal or `localhost` fail loudly, so a test can never leak a DNS
query (of a made-up name, or of a Google endpoint) without failing."""

from dns_guard import install

install()
