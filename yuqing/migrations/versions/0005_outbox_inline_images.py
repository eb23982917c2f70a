"""outbox: pictures an e-mail shows by Content-ID

The weekly digest's chart went out as inline SVG, which many mail clients drop. It now goes as a PNG
part of the message (multipart/related), referenced from the HTML as cid:daily-chart; the outbox row
carries it (base64) so a retry sends the same message.

Revision ID: 0005_outbox_inline_images
Revises: 0004_stage_locks
Create Date: 2026-12-06 01:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0005_outbox_inline_images'
down_revision = '0004_stage_locks'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('inline_images', sa.JSON(), nullable=False, server_default=sa.text("'[]'")))


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_column('inline_images')
