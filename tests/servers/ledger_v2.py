"""The ledger after a change to a tool and to the evaluation."""

from tests.servers.ledger import build

ledger = build(version=2)
