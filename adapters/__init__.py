"""Adapters: every backend behind one interface, a registry to find them, a dispatcher to run them."""
