"""Realism of the synthetic scenes: how close they are to real ISPRS Vaihingen pixels.

``reference`` loads synthetic and real samples into one structure, ``measures`` compares
them (band distributions, texture, eroded boundaries, object sizes, shadows) and
``report`` writes the yardstick's tables and figure.
"""
