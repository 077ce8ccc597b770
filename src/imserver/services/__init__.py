"""Use cases: load state, ask policy, commit through store, then fan out.

No FastAPI or SQLAlchemy imports here; transactions come from ``store.db.Database``.
"""
