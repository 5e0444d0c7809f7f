"""Delivery: claiming due work, sending it through a sink, and recording what happened."""
