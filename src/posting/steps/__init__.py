"""The workflow's steps. Each takes the batch (one item per SQS record, in order) and returns it enriched.

validate: SQS records -> items with a parsed request, or a rejection (pure, no I/O)
post:     items -> items with an outcome recorded in the ledger, or a transient failure
emit:     items -> result events on the bus, exhausted failures to the DLQ, batchItemFailures for the pipe
"""
