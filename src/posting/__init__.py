"""The posting pipeline's one shared package: every Lambda function ships it and differs only by handler.

Layout (imports point downwards only):
  handlers/  thin Lambda entry points: parse the event, call one step, return a plain dict
  steps/     the workflow's three steps (validate, post, emit) over a batch of items
  adapters/  the only modules that talk to AWS (DynamoDB ledger table, EventBridge bus, SQS DLQ)
  domain/    pure ledger rules and models: standard library and pydantic only
"""
