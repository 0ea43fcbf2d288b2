"""`make bench`: how fast, how big and how costly the posting pipeline is (`python -m posting_cli.bench`).

One module per measurement (domain, ledger, pipeline, cold_start, memory, cost), the pure cost model
(cost_model, item_sizes) they feed, and the report; `__main__` runs them in order.
"""
