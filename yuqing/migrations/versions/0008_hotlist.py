"""hot lists and social platforms: a mention's platform, its time on a hot list, an event's best rank

A hot-list entry naming the hospital is stored once as a mention; every later poll updates its row in
hot_list_entries (rank, heat, last seen) instead of storing it again. Events keep the best rank and
peak heat their mentions reached, which the plan's on_hot_list / hot_list_top rules read.

Revision ID: 0008_hotlist
Revises: 0006_console
Create Date: 2026-12-06 00:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0008_hotlist'
down_revision = '0006_console'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('mentions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('platform', sa.String(length=20), nullable=True))
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('hot_rank', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('hot_heat', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('hot_platforms', sa.JSON(), nullable=False, server_default=sa.text("'[]'")))
    op.create_table(
        'hot_list_entries',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('mention_id', sa.Integer(), nullable=False),
        sa.Column('source_id', sa.String(length=100), nullable=False),
        sa.Column('platform', sa.String(length=20), nullable=False),
        sa.Column('title', sa.Text(), nullable=False),
        sa.Column('url_key', sa.String(length=64), nullable=False),
        sa.Column('rank', sa.Integer(), nullable=False),
        sa.Column('best_rank', sa.Integer(), nullable=False),
        sa.Column('heat', sa.BigInteger(), nullable=True),
        sa.Column('peak_heat', sa.BigInteger(), nullable=True),
        sa.Column('first_seen_at', sa.DateTime(), nullable=False),
        sa.Column('last_seen_at', sa.DateTime(), nullable=False),
        sa.Column('polls', sa.Integer(), nullable=False),
        sa.Column('rose_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['mention_id'], ['mentions.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['source_id'], ['sources.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('source_id', 'url_key', name='uq_hot_list_entries_source_url'),
    )
    op.create_index('ix_hot_list_entries_mention_id', 'hot_list_entries', ['mention_id'])
    op.create_index('ix_hot_list_entries_rose_at', 'hot_list_entries', ['rose_at'])


def downgrade() -> None:
    op.drop_index('ix_hot_list_entries_rose_at', table_name='hot_list_entries')
    op.drop_index('ix_hot_list_entries_mention_id', table_name='hot_list_entries')
    op.drop_table('hot_list_entries')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_column('hot_platforms')
        batch_op.drop_column('hot_heat')
        batch_op.drop_column('hot_rank')
    with op.batch_alter_table('mentions', schema=None) as batch_op:
        batch_op.drop_column('platform')
