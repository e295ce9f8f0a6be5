"""Conductor's "execute workflow synchronously" API on Step Functions.

Request path: ``app.py`` (HTTP adapter) -> ``parameters`` / ``models`` (validation) ->
``service`` (start, wait, answer) -> ``adapters`` (Step Functions, DynamoDB).
"""
