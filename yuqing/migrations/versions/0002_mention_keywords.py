"""mention keywords, and an index on mention_urls.mention_id

Each analysed mention keeps the keywords it was grouped by.

The event grouper rebuilds its in-memory index of active events from these at the start of
each analysis run, without segmenting the window's texts again. Existing rows get [] (they
were analysed before keywords were kept, so they only group by simhash).

Event measures (sources, URLs beyond the first) join mention_urls to mentions for every event
an analysis run touches; without an index on mention_id each join scans every URL row.

Revision ID: 0002_mention_keywords
Revises: 0001
Create Date: 2026-11-23 10:45:20.231675
"""
from alembic import op
import sqlalchemy as sa


revision = '0002_mention_keywords'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('mentions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('keywords', sa.JSON(), nullable=False, server_default=sa.text("'[]'")))
    with op.batch_alter_table('mention_urls', schema=None) as batch_op:
        batch_op.create_index('ix_mention_urls_mention_id', ['mention_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('mention_urls', schema=None) as batch_op:
        batch_op.drop_index('ix_mention_urls_mention_id')
    with op.batch_alter_table('mentions', schema=None) as batch_op:
        batch_op.drop_column('keywords')
