"""The authorization servers MCP servers ship with, each with its MCP server, as real components on loopback.

Every harness yields a :class:`~tests.integration.shipped.base.ShippedServer`; ``test_shipped_servers`` runs the
same steps against each of them.
"""
