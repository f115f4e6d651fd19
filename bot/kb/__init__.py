"""The runbook knowledge base: ingest Markdown/text/HTML, hybrid retrieval, answers with sources.

Nothing here is imported by a bot that has no knowledge base: ``fastembed`` and ``qdrant_client``
cost about 250 MB and a second or two, so they are imported on first use only.
"""
