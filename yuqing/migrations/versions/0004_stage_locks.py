"""stage leases: one analysis or escalation at a time

Two `yuqing analyze` started together, or one by hand while the daemon runs, each opened events and
incidents for the same stories and queued every alert twice. A stage is now held through a row of
`stage_locks` (yuqing/locks.py): claimed by one conditional UPDATE, renewed while it runs, expiring
if its holder dies.

Revision ID: 0004_stage_locks
Revises: 0003_crisis_judgement
Create Date: 2026-12-05 23:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0004_stage_locks'
down_revision = '0003_crisis_judgement'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'stage_locks',
        sa.Column('name', sa.String(length=40), nullable=False),
        sa.Column('holder', sa.String(length=200), nullable=True),
        sa.Column('acquired_at', sa.DateTime(), nullable=True),
        sa.Column('expires_at', sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint('name'),
    )


def downgrade() -> None:
    op.drop_table('stage_locks')
