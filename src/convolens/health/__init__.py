"""Is the data still what it was? Label drift (`drift`) and intake data health
(`intake`, `intake_checks`, `store`): figures from the warehouse, alerts through webhooks.
"""
