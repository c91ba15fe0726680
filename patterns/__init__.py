"""Integration patterns built on the FSM runtime and resource actors.

Pattern classes are imported from their modules (``patterns.file_processing`` ...).
"""
