"""The ledger as first deployed."""

from tests.servers.ledger import build

ledger = build(version=1)
