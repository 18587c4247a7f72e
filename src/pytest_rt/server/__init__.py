"""The pytest-rt receiver: ``pytest-rt serve`` (the ``server`` extra).

Nothing is imported here on purpose: the plugin must not pay for FastAPI,
SQLAlchemy or uvicorn. Import the submodules you need (``config``, ``ingest``,
``store``, ``app``, ``cli``).
"""
