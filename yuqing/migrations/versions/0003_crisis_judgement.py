"""crisis judgement: risk score, relevance, corrections, false alarms

Mentions keep P(crisis) from the crisis judgement (`risk_score`), whether they are about the
hospital at all (`about_us`, false once someone says a mention is another hospital's), and who
corrected their judgement (`corrected_by`; analysis never overwrites a person's verdict).
`corrections` records each correction with who, when, the verdict and the text as judged: the
hospital's own labels, which `yuqing retrain` folds into the model and which survive upgrades.
Incidents get `resolution`, so an incident closed as a false alarm stays distinguishable from one
the team resolved.

Revision ID: 0003_crisis_judgement
Revises: 0002_mention_keywords
Create Date: 2026-12-05 21:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0003_crisis_judgement'
down_revision = '0002_mention_keywords'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('mentions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('risk_score', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('about_us', sa.Boolean(), nullable=False, server_default=sa.true()))
        batch_op.add_column(sa.Column('corrected_by', sa.String(length=200), nullable=True))
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('resolution', sa.String(length=20), nullable=True))
    op.create_table(
        'corrections',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('mention_id', sa.Integer(), nullable=False),
        sa.Column('at', sa.DateTime(), nullable=False),
        sa.Column('by', sa.String(length=200), nullable=False),
        sa.Column('verdict', sa.String(length=20), nullable=False),
        sa.Column('category', sa.String(length=40), nullable=True),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('before', sa.JSON(), nullable=False),
        sa.Column('note', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['mention_id'], ['mentions.id'], ),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('corrections', schema=None) as batch_op:
        batch_op.create_index('ix_corrections_mention_id', ['mention_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('corrections', schema=None) as batch_op:
        batch_op.drop_index('ix_corrections_mention_id')
    op.drop_table('corrections')
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.drop_column('resolution')
    with op.batch_alter_table('mentions', schema=None) as batch_op:
        batch_op.drop_column('corrected_by')
        batch_op.drop_column('about_us')
        batch_op.drop_column('risk_score')
