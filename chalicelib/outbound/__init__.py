"""Connections Shipyard makes to addresses its users give (webhook deliveries): where a
name is resolved, each address checked, and the socket connected to the address that was
checked."""
