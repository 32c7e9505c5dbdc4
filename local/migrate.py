"""Apply the Alembic migrations programmatically (the local stack and the tests). The code is admin.migrate's, the
same the deploy-time migration function runs on AWS."""

from __future__ import annotations

from admin.migrate import PROJECT_ROOT, alembic_config, downgrade, upgrade

__all__ = ["PROJECT_ROOT", "alembic_config", "downgrade", "upgrade"]
