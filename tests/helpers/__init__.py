"""Helpers shared by the test packages (importable by Ray workers as ``tests.helpers``)."""
