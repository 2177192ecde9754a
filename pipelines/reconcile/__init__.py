"""Reconciliation: what the town cannot see today.

Plain Python over the town's core tables (no Dagster here). ``data`` reads a town's
tables once; each module holds the rules of one family (identity, bookings, billing,
payments, documents, procedures); ``rules`` is the registry they fill; ``run`` applies
every rule, writes the crosswalk and the allocations and refreshes the flags;
``evaluate`` measures the result against a simulated town's ground truth.
"""
