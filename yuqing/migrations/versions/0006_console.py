"""console: accounts, failed logins, the incident checklist, and the public statement's link

`yuqing serve` lets the crisis group act from a phone and the publicity office work in a console.
Accounts are tied to recipients in channels.yaml (Argon2id hashes, a role); failed logins are counted
to pause guessing; each incident's checklist steps are ticked with who and when; an incident keeps the
link to the hospital's public statement.

Revision ID: 0006_console
Revises: 0005_outbox_inline_images
Create Date: 2026-12-05 23:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0006_console'
down_revision = '0005_outbox_inline_images'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'users',
        sa.Column('recipient_id', sa.String(length=200), nullable=False),
        sa.Column('password_hash', sa.Text(), nullable=False),
        sa.Column('role', sa.String(length=20), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('password_set_at', sa.DateTime(), nullable=False),
        sa.Column('session_key', sa.String(length=64), nullable=False),
        sa.Column('disabled', sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint('recipient_id'),
    )
    op.create_table(
        'login_failures',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('at', sa.DateTime(), nullable=False),
        sa.Column('username', sa.String(length=200), nullable=False),
        sa.Column('address', sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_login_failures_at', 'login_failures', ['at'])
    op.create_table(
        'incident_checklist',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('incident_id', sa.Integer(), nullable=False),
        sa.Column('item', sa.String(length=200), nullable=False),
        sa.Column('done_at', sa.DateTime(), nullable=False),
        sa.Column('done_by', sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('incident_id', 'item', name='uq_incident_checklist_item'),
    )
    with op.batch_alter_table('incidents') as batch:
        batch.add_column(sa.Column('response_url', sa.Text(), nullable=True))
    # the console's mention filters and its per-source page
    op.create_index('ix_mentions_source_id', 'mentions', ['source_id'])


def downgrade() -> None:
    op.drop_index('ix_mentions_source_id', table_name='mentions')
    with op.batch_alter_table('incidents') as batch:
        batch.drop_column('response_url')
    op.drop_table('incident_checklist')
    op.drop_index('ix_login_failures_at', table_name='login_failures')
    op.drop_table('login_failures')
    op.drop_table('users')
